import EmberAlign
import EmberModel

/// A small problem with the structure `ember align` exists for: what users engage with
/// (a topic) is a weak direction of the base vectors, and a strong "style" direction
/// unrelated to engagement dominates raw cosine similarity. Users watch mostly their
/// topic. A head trained on the signals should find the topic direction.
struct SyntheticSignals {
    var data = AlignData()
    var items: ItemVectors
    let topicOf: [String: Int]

    init(seed: UInt64, dim: Int = 32, topics: Int = 6, styles: Int = 6, itemCount: Int = 300, users: Int = 80) {
        var g = SeededGenerator(seed: seed)
        func unitVector() -> [Float] {
            var v = (0..<dim).map { _ in Float(g.unit() * 2 - 1) }
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in v.indices { v[i] /= n }
            return v
        }
        let topicDirections = (0..<topics).map { _ in unitVector() }
        let styleDirections = (0..<styles).map { _ in unitVector() }
        items = ItemVectors(dim: dim, modelID: "synthetic@000000000000")
        var topicOf: [String: Int] = [:]
        var byTopic = [[String]](repeating: [], count: topics), coldByTopic = [[String]](repeating: [], count: topics)
        for i in 0..<itemCount {
            let id = "item-\(i)"
            let topic = i % topics, style = g.index(below: styles)
            let noise = unitVector()
            let vector = (0..<dim).map { 0.45 * topicDirections[topic][$0] + 1.0 * styleDirections[style][$0] + 0.35 * noise[$0] }
            items.set(id, vector)
            topicOf[id] = topic
            let split: AlignSplit = i >= itemCount * 4 / 5 ? .cold : (i % 5 == 0 ? .validation : .train)
            data.items.append(.init(itemID: id, topic: "t\(topic)", split: split))
            if split == .cold { coldByTopic[topic].append(id) } else { byTopic[topic].append(id) }
        }
        self.topicOf = topicOf
        for u in 0..<users {
            let topic = u % topics
            let watched = (0..<12).map { _ in
                g.unit() < 0.9 ? byTopic[topic][g.index(below: byTopic[topic].count)] : byTopic[g.index(below: topics)].first!
            }
            let split: AlignSplit = u % 5 == 0 ? .validation : .train
            data.sequences.append(.init(userID: "u\(u)", items: watched, split: split))
            for t in 1..<watched.count { data.coEngagements.append(.init(a: watched[t - 1], b: watched[t], weight: 1, split: split)) }
            let target = coldByTopic[topic][g.index(below: coldByTopic[topic].count)]
            data.nextItems.append(.init(userID: "u\(u)", history: watched, target: target))
        }
    }
}

extension AlignData.Sequence {
    init(userID: String, items: [String], split: AlignSplit) {
        self = try! JSONDecoder().decode(Self.self, from: Data(#"{"user_id":"\#(userID)","items":[\#(items.map { "\"\($0)\"" }.joined(separator: ","))],"split":"\#(split.rawValue)"}"#.utf8))
    }
}

extension AlignData.CoEngagement {
    init(a: String, b: String, weight: Double, split: AlignSplit) {
        self = try! JSONDecoder().decode(Self.self, from: Data(#"{"a":"\#(a)","b":"\#(b)","weight":\#(weight),"split":"\#(split.rawValue)"}"#.utf8))
    }
}

extension AlignData.NextItem {
    init(userID: String, history: [String], target: String) {
        self = try! JSONDecoder().decode(Self.self, from: Data(#"{"user_id":"\#(userID)","history":[\#(history.map { "\"\($0)\"" }.joined(separator: ","))],"target":"\#(target)"}"#.utf8))
    }
}

import Foundation
