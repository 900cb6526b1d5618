import Foundation

/// Short-video titles made from topics, templates and details with a seeded generator:
/// items of one topic are near each other, so codebooks and neighbour searches have
/// structure to find. For tests and benchmarks that need real model embeddings of many
/// distinct items without media files.
public enum GeneratedCatalog {
    static let topics: [(subject: String, tags: [String])] = [
        ("easy pasta recipe", ["cooking", "food", "dinner"]), ("street food tour", ["food", "travel", "market"]),
        ("football skills", ["soccer", "sports", "training"]), ("basketball highlights", ["nba", "sports", "dunk"]),
        ("cute kitten", ["cats", "pets", "funny"]), ("puppy training", ["dogs", "pets", "tips"]),
        ("guitar lesson", ["music", "guitar", "chords"]), ("piano cover", ["music", "piano", "song"]),
        ("makeup tutorial", ["beauty", "makeup", "look"]), ("skincare routine", ["beauty", "skin", "routine"]),
        ("car review", ["cars", "driving", "review"]), ("motorcycle ride", ["bikes", "road", "speed"]),
        ("mountain hike", ["hiking", "nature", "outdoors"]), ("beach sunset", ["travel", "ocean", "summer"]),
        ("python coding tips", ["programming", "code", "tech"]), ("smartphone unboxing", ["tech", "phone", "gadget"]),
        ("dance challenge", ["dance", "trend", "music"]), ("home workout", ["fitness", "gym", "exercise"]),
        ("diy room decor", ["diy", "home", "craft"]), ("gardening hacks", ["garden", "plants", "home"]),
        ("stand-up comedy", ["comedy", "funny", "jokes"]), ("magic trick revealed", ["magic", "trick", "illusion"]),
        ("chess opening", ["chess", "strategy", "game"]), ("video game speedrun", ["gaming", "speedrun", "game"]),
    ]
    static let templates = [
        "%@ in under a minute", "my favourite %@", "the best %@ you will see today", "%@ for beginners",
        "watch this %@", "%@, part two", "trying a %@ for the first time", "%@ that went wrong",
    ]
    static let details = ["at night", "in the rain", "with friends", "at home", "in Tokyo", "in Paris", "on a budget", "step by step", "", ""]

    /// `count` item texts (title and tags joined the way the worker joins them), and the
    /// topic index of each.
    public static func items(count: Int, seed: UInt64) -> [(text: String, topic: Int)] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let topic = generator.index(below: topics.count)
            let template = templates[generator.index(below: templates.count)]
            let detail = details[generator.index(below: details.count)]
            let title = template.replacingOccurrences(of: "%@", with: topics[topic].subject) + (detail.isEmpty ? "" : " " + detail)
            let tags = topics[topic].tags.filter { _ in generator.index(below: 3) > 0 }.map { "#" + $0 }
            return (([title] + tags).joined(separator: " "), topic)
        }
    }
}
