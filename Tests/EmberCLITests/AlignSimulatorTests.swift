import Foundation
import Testing

/// Ops/align-sim, the seeded simulator `ember align` is evaluated on: the CI-sized
/// world (`--tiny`: 60 items, real ffmpeg media) has the documented shapes, keeps cold
/// items out of every training and validation signal, and is a function of the seed.
/// The checks here read the files themselves rather than trusting `align-sim check`;
/// that checker is tested separately on a planted violation.
@Suite("Alignment simulator", .serialized)
struct AlignSimulatorTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The signal files in which no cold item may appear.
    static let signalFiles = ["id_vectors.jsonl", "sequences.jsonl", "i2i.jsonl", "q2i.jsonl"]
    static let comparedFiles = signalFiles + [
        "items.jsonl", "manifest.json", "eval/next_item.jsonl", "eval/id_neighbours.jsonl", "eval/oracle.jsonl",
    ]

    @discardableResult
    static func alignSim(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProgram(repository.appendingPathComponent("Ops/align-sim"), arguments)
    }

    static func freshDirectory(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("ember-align-sim-\(name)-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    static func generate(_ directory: String, _ extra: [String] = []) throws {
        let result = try alignSim(["generate", directory, "--tiny"] + extra)
        try #require(result.status == 0, "Ops/align-sim generate failed:\n\(result.output)")
    }

    static func rows(_ directory: String, _ file: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(file): \(line)")
        }
    }

    /// The tiny world, generated once for the suite.
    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var shared: String?
    static func tinyWorld() throws -> String {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let shared { return shared }
        let directory = freshDirectory("a")
        try generate(directory)
        shared = directory
        return directory
    }

    @Test("the tiny world has the documented files, sizes and splits")
    func shapes() throws {
        let dir = try Self.tinyWorld()
        let items = try Self.rows(dir, "items.jsonl")
        let split = Dictionary(uniqueKeysWithValues: items.map { ($0["item_id"] as! String, $0["split"] as! String) })
        #expect(items.count == 60 && split.count == 60)
        #expect(split.values.filter { $0 == "cold" }.count == 12)
        #expect(split.values.filter { $0 == "validation" }.count == 6)
        #expect(split.values.filter { $0 == "train" }.count == 42)

        let events = try Self.rows(dir, "events.jsonl")
        #expect(events.map { $0["item_id"] as? String } == items.map { $0["item_id"] as? String })
        for event in events {
            for key in ["video_uri", "cover_uri"] {
                let uri = try #require(event[key] as? String)
                #expect(uri.hasPrefix("file://" + dir + "/media/"))
                let size = try FileManager.default.attributesOfItem(atPath: String(uri.dropFirst(7)))[.size] as? Int
                #expect((size ?? 0) > 1000, "\(uri) is \(size ?? 0) bytes")
            }
            #expect(!((event["title"] as? String) ?? "").isEmpty)
            #expect(!((event["tags"] as? [String]) ?? []).isEmpty)
        }

        let vectors = try Self.rows(dir, "id_vectors.jsonl")
        #expect(vectors.count >= 45 && vectors.count <= 48)   // warm items someone watched
        #expect(Set(vectors.map { ($0["vector"] as? [Double])?.count ?? 0 }) == [32])

        let nextItem = try Self.rows(dir, "eval/next_item.jsonl")
        #expect(nextItem.count == 60)
        for row in nextItem {
            #expect(split[row["target"] as! String] == "cold")
            #expect((1...10).contains((row["history"] as! [String]).count))
        }
        let neighbours = try Self.rows(dir, "eval/id_neighbours.jsonl")
        #expect(neighbours.count == 12)
        for row in neighbours {
            let ids = row["neighbours"] as! [String]
            #expect(split[row["item_id"] as! String] == "cold")
            #expect(ids.count == 48 && Set(ids).count == 48)   // all 48 warm items, ranked
        }

        let manifest = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as? [String: Any])
        #expect(manifest["seed"] as? Int == 0)
        let counts = try #require(manifest["counts"] as? [String: Int])
        #expect(counts["id_vectors"] == vectors.count)
        #expect(counts["q2i"] == (try Self.rows(dir, "q2i.jsonl")).count)
    }

    @Test("cold items are in no training or validation signal, and splits match the items'")
    func coldItemsHeldOut() throws {
        let dir = try Self.tinyWorld()
        let split = Dictionary(uniqueKeysWithValues: try Self.rows(dir, "items.jsonl").map {
            ($0["item_id"] as! String, $0["split"] as! String)
        })
        var mentioned = 0
        for row in try Self.rows(dir, "id_vectors.jsonl") + Self.rows(dir, "q2i.jsonl") {
            let item = row["item_id"] as! String
            #expect(split[item] != "cold", "\(item) is cold")
            mentioned += 1
        }
        var validationSequences = 0
        for row in try Self.rows(dir, "sequences.jsonl") {
            let items = row["items"] as! [String]
            #expect(items.count >= 2)
            if row["split"] as? String == "train" {
                #expect(items.allSatisfy { split[$0] == "train" }, "\(items)")
            } else {
                validationSequences += 1
                #expect(split[items.last!] == "validation" && items.dropLast().allSatisfy { split[$0] == "train" })
            }
        }
        for row in try Self.rows(dir, "i2i.jsonl") {
            let a = row["a"] as! String, b = row["b"] as! String
            #expect(split[a] != "cold" && split[b] != "cold" && a < b)
            let bothTrain = split[a] == "train" && split[b] == "train"
            #expect(row["split"] as? String == (bothTrain ? "train" : "validation"))
        }
        #expect(mentioned > 100)
        #expect(validationSequences > 0)
        let check = try Self.alignSim(["check", dir])
        #expect(check.status == 0, "\(check.output)")
    }

    @Test("align-sim check reports a cold item planted in a training sequence")
    func checkerCatchesLeak() throws {
        let dir = try Self.tinyWorld()
        let planted = Self.freshDirectory("planted")
        try FileManager.default.copyItem(atPath: dir, toPath: planted)
        defer { try? FileManager.default.removeItem(atPath: planted) }
        let cold = try #require(try Self.rows(dir, "items.jsonl").first { $0["split"] as? String == "cold" }?["item_id"] as? String)
        // The copy's events must name its own media, so that the leak is the only problem.
        let events = planted + "/events.jsonl"
        try String(contentsOfFile: events, encoding: .utf8).replacingOccurrences(of: dir + "/", with: planted + "/")
            .write(toFile: events, atomically: true, encoding: .utf8)
        let clean = try Self.alignSim(["check", planted])
        #expect(clean.status == 0, "\(clean.output)")
        let path = planted + "/sequences.jsonl"
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[0] = lines[0].replacingOccurrences(of: "\"items\":[", with: "\"items\":[\"\(cold)\",")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Self.alignSim(["check", planted])
        #expect(result.status == 1)
        let problems = result.output.split(separator: "\n").filter { $0.hasPrefix("align-sim check: ") }
        #expect(problems == ["align-sim check: sequences.jsonl: train sequence of user-00000 holds a non-train item"],
                "\(result.output)")
    }

    @Test("the same seed writes identical files and media; another seed a different world")
    func determinism() throws {
        let a = try Self.tinyWorld()
        let b = Self.freshDirectory("b")
        defer { try? FileManager.default.removeItem(atPath: b) }
        try Self.generate(b)
        for file in Self.comparedFiles {
            let left = try Data(contentsOf: URL(fileURLWithPath: a + "/" + file))
            let right = try Data(contentsOf: URL(fileURLWithPath: b + "/" + file))
            #expect(left == right, "\(file) differs between two runs with seed 0")
        }
        // Events name their media by absolute path: equal once the directory is factored out.
        let eventsA = try String(contentsOfFile: a + "/events.jsonl", encoding: .utf8).replacingOccurrences(of: a, with: "DIR")
        let eventsB = try String(contentsOfFile: b + "/events.jsonl", encoding: .utf8).replacingOccurrences(of: b, with: "DIR")
        #expect(eventsA == eventsB)
        let media = try FileManager.default.contentsOfDirectory(atPath: a + "/media").sorted()
        #expect(media.count == 120)
        #expect(try FileManager.default.contentsOfDirectory(atPath: b + "/media").sorted() == media)
        for name in media {
            let left = try Data(contentsOf: URL(fileURLWithPath: a + "/media/" + name))
            let right = try Data(contentsOf: URL(fileURLWithPath: b + "/media/" + name))
            #expect(left == right, "media/\(name) differs between two runs with seed 0")
        }

        let c = Self.freshDirectory("c")
        defer { try? FileManager.default.removeItem(atPath: c) }
        try Self.generate(c, ["--seed", "1", "--no-media"])
        for file in ["items.jsonl", "sequences.jsonl", "id_vectors.jsonl"] {
            let left = try Data(contentsOf: URL(fileURLWithPath: a + "/" + file))
            let right = try Data(contentsOf: URL(fileURLWithPath: c + "/" + file))
            #expect(left != right, "\(file) is the same for seeds 0 and 1")
        }
    }
}
