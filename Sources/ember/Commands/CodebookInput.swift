import EmberKafka
import EmberModel
import EmberPipeline
import Foundation

/// Training vectors for `ember codebook train`, with the model they came from.
struct TrainingVectors {
    var values: [Float] = []
    var count = 0
    var dim = 0
    var modelID: String?
    /// Records of an item seen before (at-least-once delivery, replays): the later one is kept.
    var duplicates = 0
    /// The item of each row (nil for rows of a float32 matrix); `ember align` joins by it.
    private(set) var itemIDs: [String?] = []
    private var rowOfItem: [String: Int] = [:]

    /// Adds a record's vector; records of another model or size are an error naming them.
    mutating func add(_ record: EmbeddingRecord, origin: String) throws {
        guard record.dtype != .bits else {
            throw CodebookInputError("\(origin): binary (sign-bit) records cannot train a codebook; replay with output.encoding f16 or f32")
        }
        guard let vector = record.vector else { throw CodebookInputError("\(origin): the embedding of item \(record.itemID) does not decode") }
        if let modelID, !ModelIdentity.sameWeights(modelID, record.model) {
            throw CodebookInputError("\(origin): records of two models, \(modelID) and \(record.model); a codebook is for one model")
        }
        modelID = record.model
        try add(vector, itemID: record.itemID, origin: origin)
    }

    mutating func add(_ vector: [Float], itemID: String?, origin: String) throws {
        if dim == 0 { dim = vector.count }
        guard vector.count == dim, dim > 0 else { throw CodebookInputError("\(origin): a \(vector.count)-dim vector among \(dim)-dim ones") }
        if let itemID, let row = rowOfItem[itemID] {
            values.replaceSubrange((row * dim)..<((row + 1) * dim), with: vector)
            duplicates += 1
            return
        }
        if let itemID { rowOfItem[itemID] = count }
        itemIDs.append(itemID)
        values += vector
        count += 1
    }

    /// Ember output records, one JSON object per line (`ember inspect --json` prints them,
    /// then a summary line).
    static func jsonLines(_ url: URL, limit: Int?) throws -> TrainingVectors {
        var vectors = TrainingVectors()
        let text = try String(contentsOf: url, encoding: .utf8)
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            if let limit, vectors.count >= limit { break }
            let record: EmbeddingRecord
            do {
                record = try JSONDecoder().decode(EmbeddingRecord.self, from: Data(line.utf8))
            } catch {
                throw CodebookInputError("\(url.path):\(number + 1): not an Ember output record: \(error)")
            }
            try vectors.add(record, origin: "\(url.path):\(number + 1)")
        }
        return vectors
    }

    /// A raw little-endian float32 matrix, `dim` values per row.
    static func float32Matrix(_ url: URL, dim: Int, modelID: String, limit: Int?) throws -> TrainingVectors {
        let data = try Data(contentsOf: url)
        guard dim > 0, data.count % (4 * dim) == 0 else {
            throw CodebookInputError("\(url.path): \(data.count) bytes are not whole rows of \(dim) float32 values")
        }
        var vectors = TrainingVectors()
        vectors.dim = dim
        vectors.modelID = modelID
        vectors.count = min(data.count / (4 * dim), limit ?? .max)
        vectors.values = [Float](repeating: 0, count: vectors.count * dim)
        vectors.values.withUnsafeMutableBytes { target in
            data.withUnsafeBytes { source in target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<target.count])) }
        }
        for i in vectors.values.indices { vectors.values[i] = Float(bitPattern: UInt32(littleEndian: vectors.values[i].bitPattern)) }
        return vectors
    }

    /// Output records of a topic, from its beginning to its end when reading starts,
    /// or until `limit` records or `maxSeconds` have passed. Progress goes to stderr.
    static func topic(
        _ topic: String, brokers: String, properties: [String: String], limit: Int?, maxSeconds: Double?
    ) throws -> TrainingVectors {
        var configuration = KafkaReplayConfiguration(bootstrapServers: brokers, topic: topic, start: .beginning)
        configuration.clientID = "ember-codebook"
        configuration.properties = properties
        let reader = try KafkaReplay(configuration: configuration)
        var vectors = TrainingVectors()
        let progress = ProgressLine(total: Int(reader.ranges.reduce(0) { $0 + $1.count }), unit: "records")
        let started = ContinuousClock.now
        var skipped = 0
        reading: while !reader.isFinished {
            for message in try reader.poll(timeout: .milliseconds(500)) {
                // Dead letters or foreign records on the topic are skipped, not fatal.
                let contentType = message.header("content-type").map { String(decoding: $0, as: UTF8.self) }
                guard let format = RecordFormat(contentType: contentType), let record = try? format.decode(message.value) else {
                    skipped += 1
                    continue
                }
                try vectors.add(record, origin: "\(topic) \(message.partition):\(message.offset)")
                if let limit, vectors.count >= limit { break reading }
            }
            progress.update(reader.progress.messages)
            if let maxSeconds, ContinuousClock.now - started >= .seconds(maxSeconds) { break }
        }
        progress.finish(reader.progress.messages, note: skipped > 0 ? "\(skipped) records that are not embeddings skipped" : nil)
        return vectors
    }
}

struct CodebookInputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A progress bar on stderr, redrawn at most twice a second.
final class ProgressLine {
    let total: Int
    let unit: String
    private let started = ContinuousClock.now
    private var drawn = ContinuousClock.now - .seconds(1)

    init(total: Int, unit: String) {
        self.total = total
        self.unit = unit
    }

    func update(_ done: Int, force: Bool = false) {
        let now = ContinuousClock.now
        guard force || now - drawn >= .milliseconds(500) else { return }
        drawn = now
        let seconds = max(1e-3, Double((now - started).components.attoseconds) / 1e18 + Double((now - started).components.seconds))
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\r[\(bar)] \(done)/\(total) \(unit) \(String(format: "%.0f", Double(done) / seconds))/s"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish(_ done: Int, note: String?) {
        update(done, force: true)
        FileHandle.standardError.write(Data(("\n" + (note.map { $0 + "\n" } ?? "")).utf8))
    }
}
