import ArgumentParser
import EmberAlign
import EmberModel
import EmberPipeline
import Foundation

/// Where `ember align` reads its inputs: the platform's signal files and the items' base
/// embeddings (Ember output records from a file or a topic, read as `ember codebook
/// train` reads them).
struct AlignInputOptions: ParsableArguments {
    @Option(help: "Directory of signal files (items.jsonl, id_vectors.jsonl, sequences.jsonl, i2i.jsonl, q2i.jsonl, eval/).") var data: String
    @Option(help: "Ember output records of the items, JSONL (what ember embed prints, one per line).") var embeddings: String?
    @Option(help: "Read the items' output records from this topic (e.g. after ember replay).") var topic: String?
    @Option(help: "Kafka bootstrap servers (default: EMBER_KAFKA_BROKERS or 127.0.0.1:9092).") var brokers: String?
    @Option(name: .customLong("property"), help: "librdkafka property name=value for the reader (repeatable).") var properties: [String] = []
    @Option(help: "Stop reading a topic after this many seconds.") var maxSeconds: Double?
    @Option(help: "OpenBLAS threads (the same data, seed and threads give the same head byte for byte).") var threads = 2

    func validate() throws {
        guard (embeddings == nil) != (topic == nil) else { throw ValidationError("give exactly one of --embeddings and --topic") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256") }
    }

    func load() throws -> (AlignData, ItemVectors) {
        BLASThreads.count = threads
        let signals: AlignData
        do { signals = try AlignData(directory: URL(fileURLWithPath: data)) } catch { throw ValidationError("\(error)") }
        let vectors: TrainingVectors
        if let topic {
            let environment = ProcessInfo.processInfo.environment
            var parsed: [String: String] = [:]
            for property in properties {
                guard let eq = property.firstIndex(of: "=") else { throw ValidationError("--property \(property) is not name=value") }
                parsed[String(property[..<eq])] = String(property[property.index(after: eq)...])
            }
            vectors = try TrainingVectors.topic(
                topic, brokers: brokers ?? environment["EMBER_KAFKA_BROKERS"] ?? "127.0.0.1:9092", properties: parsed, limit: nil,
                maxSeconds: maxSeconds)
        } else {
            vectors = try TrainingVectors.jsonLines(URL(fileURLWithPath: embeddings!), limit: nil)
        }
        guard let modelID = vectors.modelID, vectors.count > 0 else { throw ValidationError("no embeddings to align") }
        guard !modelID.contains("+") else {
            throw ValidationError("the records are \(modelID), a head's output; a head is trained on the raw fused vectors (embed without model.head)")
        }
        var items = ItemVectors(dim: vectors.dim, modelID: modelID)
        let known = signals.splitOf
        var unknown = 0
        for (row, id) in vectors.itemIDs.enumerated() {
            guard let id, known[id] != nil else {
                unknown += 1
                continue
            }
            items.set(id, Array(vectors.values[(row * vectors.dim)..<((row + 1) * vectors.dim)]))
        }
        let missing = signals.items.count - items.count
        say("\(items.count) items with \(vectors.dim)-dim embeddings of \(modelID)"
            + (missing > 0 ? "; \(missing) items of items.jsonl have no record" : "")
            + (unknown > 0 ? "; \(unknown) records of items not in items.jsonl ignored" : ""))
        return (signals, items)
    }
}

extension ColdStartEvaluation.Figures {
    static func table(_ rows: [(String, [ColdStartEvaluation.Figures])], k: Int) -> String {
        var lines = [
            "| configuration | vector | dims | next item (all) recall@\(k) | next item (cold) recall@\(k) | ID-neighbour recall@\(k) |",
            "|---|---|---|---|---|---|",
        ]
        for (name, figures) in rows {
            for f in figures {
                lines.append(
                    "| \(name) | \(f.representation == "raw" ? "raw fused" : "head") | \(f.dims) | \(String(format: "%.3f", f.nextItemAll)) | "
                        + "\(String(format: "%.3f", f.nextItem)) | \(String(format: "%.3f", f.idNeighbours)) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}
