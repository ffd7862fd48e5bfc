import MicrolithJSON
import MicrolithMQTT
import Testing

@Suite("MQTTTopicTree")
struct MQTTTopicTreeTests {
    static func matches<Value>(_ tree: MQTTTopicTree<Int, Value>, _ topic: String) -> [Int] {
        var keys: [Int] = []
        tree.forEachMatch(topic: topic) { key, _ in keys.append(key) }
        return keys.sorted()
    }

    @Test func basicMatching() {
        var tree = MQTTTopicTree<Int, String>()
        #expect(tree.isEmpty)
        tree.insert(filter: "a/b", key: 1, value: "exact")
        tree.insert(filter: "a/+", key: 2, value: "plus")
        tree.insert(filter: "a/#", key: 3, value: "hash")
        tree.insert(filter: "#", key: 4, value: "all")
        tree.insert(filter: "+/+", key: 5, value: "two levels")
        tree.insert(filter: "$SYS/#", key: 6, value: "system")
        #expect(!tree.isEmpty)
        #expect(Self.matches(tree, "a/b") == [1, 2, 3, 4, 5])
        #expect(Self.matches(tree, "a") == [3, 4])
        #expect(Self.matches(tree, "a/c/d") == [3, 4])
        #expect(Self.matches(tree, "b/c") == [4, 5])
        #expect(Self.matches(tree, "$SYS/load") == [6])
        #expect(Self.matches(tree, "$SYS") == [6])
        #expect(Self.matches(tree, "a/+") == [])
        #expect(Self.matches(tree, "") == [])
    }

    @Test func valuesAreReportedAndReplaced() {
        var tree = MQTTTopicTree<Int, String>()
        tree.insert(filter: "a/+", key: 1, value: "first")
        tree.insert(filter: "a/+", key: 1, value: "second")
        var seen: [String] = []
        tree.forEachMatch(topic: "a/x") { _, value in seen.append(value) }
        #expect(seen == ["second"])
    }

    @Test func aKeyWithTwoMatchingFiltersAppearsTwice() {
        var tree = MQTTTopicTree<Int, String>()
        tree.insert(filter: "a/+", key: 1, value: "plus")
        tree.insert(filter: "a/#", key: 1, value: "hash")
        tree.insert(filter: "a/b", key: 1, value: "exact")
        var seen: [String] = []
        tree.forEachMatch(topic: "a/b") { _, value in seen.append(value) }
        #expect(seen.sorted() == ["exact", "hash", "plus"])
    }

    @Test func emptyLevels() {
        var tree = MQTTTopicTree<Int, Int>()
        tree.insert(filter: "a//b", key: 1, value: 0)
        tree.insert(filter: "a/+/b", key: 2, value: 0)
        tree.insert(filter: "/#", key: 3, value: 0)
        tree.insert(filter: "+", key: 4, value: 0)
        #expect(Self.matches(tree, "a//b") == [1, 2])
        #expect(Self.matches(tree, "/") == [3])
        #expect(Self.matches(tree, "/x") == [3])
        #expect(Self.matches(tree, "x") == [4])
    }

    @Test func levelsCompareAsBytes() {
        var tree = MQTTTopicTree<Int, Int>()
        tree.insert(filter: "\u{E9}", key: 1, value: 0)
        #expect(Self.matches(tree, "\u{E9}") == [1])
        #expect(Self.matches(tree, "e\u{301}") == [])
    }

    @Test func removeReportsAndPrunes() {
        var tree = MQTTTopicTree<Int, Int>()
        tree.insert(filter: "a/b/c", key: 1, value: 0)
        tree.insert(filter: "a/+/c", key: 2, value: 0)
        tree.insert(filter: "a/#", key: 3, value: 0)
        tree.insert(filter: "#", key: 4, value: 0)
        let removed1 = tree.remove(filter: "a/b/c", key: 2)
        #expect(!removed1)
        let removed2 = tree.remove(filter: "a/b", key: 1)
        #expect(!removed2)
        let removed3 = tree.remove(filter: "x/y", key: 1)
        #expect(!removed3)
        let removed4 = tree.remove(filter: "a/b/c", key: 1)
        #expect(removed4)
        let removed5 = tree.remove(filter: "a/b/c", key: 1)
        #expect(!removed5)
        #expect(Self.matches(tree, "a/b/c") == [2, 3, 4])
        let removed6 = tree.remove(filter: "a/+/c", key: 2)
        #expect(removed6)
        let removed7 = tree.remove(filter: "a/#", key: 3)
        #expect(removed7)
        #expect(!tree.isEmpty)
        let removed8 = tree.remove(filter: "#", key: 4)
        #expect(removed8)
        #expect(tree.isEmpty)
    }

    @Test func valueSemantics() {
        var tree = MQTTTopicTree<Int, Int>()
        tree.insert(filter: "a/+", key: 1, value: 0)
        let copy = tree
        tree.insert(filter: "a/+", key: 2, value: 0)
        tree.remove(filter: "a/+", key: 1)
        #expect(Self.matches(copy, "a/b") == [1])
        #expect(Self.matches(tree, "a/b") == [2])
    }

    static let levels = ["a", "b", "c", "", "é", "$SYS", "$x"]

    /// Invalid filters are stored but match nothing, as `MQTTTopic.matches` says.
    static let invalidFilters = ["a/#/b", "a+", "#/", "+a/b", "a/b#", ""]

    static func randomFilter(using random: inout SplitMix64) -> String {
        if Int.random(in: 0..<10, using: &random) == 0 { return invalidFilters.randomElement(using: &random)! }
        var parts: [String] = []
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            parts.append(Int.random(in: 0..<4, using: &random) == 0 ? "+" : levels.randomElement(using: &random)!)
        }
        if Int.random(in: 0..<4, using: &random) == 0 {
            if Bool.random(using: &random) { parts = ["#"] } else { parts.append("#") }
        }
        return parts.joined(separator: "/")
    }

    static func randomTopic(using random: inout SplitMix64) -> String {
        (0..<Int.random(in: 1...5, using: &random)).map { _ in levels.randomElement(using: &random)! }.joined(separator: "/")
    }

    /// The tree agrees with `MQTTTopic.matches` over random subscriptions, topics and removals.
    @Test func equivalentToMatchesOverRandomFilters() {
        var random = SplitMix64(seed: 7)
        for round in 0..<20 {
            var tree = MQTTTopicTree<Int, String>()
            var subscriptions: [String: [Int: String]] = [:]  // filter → key → value
            for index in 0..<Int.random(in: 1...80, using: &random) {
                let filter = Self.randomFilter(using: &random)
                let key = Int.random(in: 0..<10, using: &random)
                let value = "\(round)-\(index)"
                tree.insert(filter: filter, key: key, value: value)
                subscriptions[filter, default: [:]][key] = value
            }
            var removals: [(String, Int)] = []
            for filter in subscriptions.keys.sorted() {
                for key in subscriptions[filter, default: [:]].keys.sorted() where Bool.random(using: &random) {
                    removals.append((filter, key))
                }
            }
            for (filter, key) in removals {
                let removed = tree.remove(filter: filter, key: key)
                #expect(removed)
                subscriptions[filter]?[key] = nil
            }
            for _ in 0..<100 {
                let topic = Self.randomTopic(using: &random)
                var fromTree: [String] = []
                tree.forEachMatch(topic: topic) { key, value in fromTree.append("\(key):\(value)") }
                var expected: [String] = []
                for (filter, keys) in subscriptions where MQTTTopic.matches(filter: filter, topic: topic) {
                    for (key, value) in keys { expected.append("\(key):\(value)") }
                }
                #expect(fromTree.sorted() == expected.sorted(), "topic \(topic)")
            }
            for (filter, keys) in subscriptions {
                for key in keys.keys {
                    let removed = tree.remove(filter: filter, key: key)
                    #expect(removed)
                }
            }
            #expect(tree.isEmpty)
        }
    }
}
