/// Subscriptions indexed by topic filter, for finding quickly who a published message goes to.
///
/// A trie over topic levels: each node has children by exact level, a separate child for `+`, and the
/// subscriptions whose filter ends in `#` at that node. Matching a topic visits only the branches the topic
/// can reach. Levels compare as UTF-8 bytes. `Key` identifies a subscriber, `Value` is what it subscribed with
/// (for example its options); a key holds at most one value per filter.
public struct MQTTTopicTree<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    struct Node: Sendable {
        /// Children by exact level (never "+"; a "#" here is a literal from an invalid filter and is never matched).
        var children: [MQTTTopicLevel: Node] = [:]
        /// The "+" child: zero or one element (an array gives the recursion its indirection).
        var plusChild: [Node] = []
        /// Subscriptions whose filter is this node's path followed by "/#" (or just "#" at the root).
        var hashEntries: [Key: Value] = [:]
        /// Subscriptions whose filter ends at this node.
        var entries: [Key: Value] = [:]

        var isEmpty: Bool {
            entries.isEmpty && hashEntries.isEmpty && children.isEmpty && plusChild.isEmpty
        }
    }

    private var root = Node()

    /// Creates an empty tree.
    public init() {}

    /// Whether the tree holds no subscription.
    public var isEmpty: Bool { root.isEmpty }

    /// Adds `key`'s subscription to `filter`, replacing the value `key` had for that filter.
    /// Validate filters first (``MQTTTopic/isValidFilter(_:)``): an invalid one is stored but matches nothing.
    public mutating func insert(filter: String, key: Key, value: Value) {
        let levels = Self.levels(of: filter)
        Self.insert(into: &root, levels: levels[...], key: key, value: value)
    }

    /// Removes `key`'s subscription to `filter`, pruning nodes left empty. Returns whether there was one.
    @discardableResult
    public mutating func remove(filter: String, key: Key) -> Bool {
        let levels = Self.levels(of: filter)
        return Self.remove(from: &root, levels: levels[...], key: key)
    }

    /// Calls `body` with every subscription whose filter matches `topic` (see ``MQTTTopic/matches(filter:topic:)``).
    /// A key subscribed with several matching filters is reported once for each. An invalid topic matches nothing.
    public func forEachMatch(topic: String, _ body: (Key, Value) -> Void) {
        var levels: [Substring] = []
        let utf8 = topic.utf8
        guard !utf8.isEmpty else { return }
        var levelStart = utf8.startIndex
        var index = levelStart
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == MQTTTopic.slash {
                levels.append(topic[levelStart..<index])
                levelStart = utf8.index(after: index)
            } else if byte == MQTTTopic.plus || byte == MQTTTopic.hash {
                return
            }
            index = utf8.index(after: index)
        }
        levels.append(topic[levelStart..<index])
        let isSystemTopic = utf8.first == MQTTTopic.dollar
        Self.visit(root, levels: levels, depth: 0, isSystemTopic: isSystemTopic, body)
    }

    private static func visit(
        _ node: Node,
        levels: [Substring],
        depth: Int,
        isSystemTopic: Bool,
        _ body: (Key, Value) -> Void
    ) {
        // Wildcards at the first level do not match topics starting with "$".
        let wildcardsMatch = depth > 0 || !isSystemTopic
        if wildcardsMatch {
            for (key, value) in node.hashEntries { body(key, value) }
        }
        guard depth < levels.count else {
            for (key, value) in node.entries { body(key, value) }
            return
        }
        if let child = node.children[MQTTTopicLevel(levels[depth])] {
            visit(child, levels: levels, depth: depth + 1, isSystemTopic: isSystemTopic, body)
        }
        if wildcardsMatch, let plus = node.plusChild.first {
            visit(plus, levels: levels, depth: depth + 1, isSystemTopic: isSystemTopic, body)
        }
    }

    /// Splits on "/" by bytes, keeping empty levels.
    private static func levels(of filter: String) -> [Substring] {
        var levels: [Substring] = []
        let utf8 = filter.utf8
        var levelStart = utf8.startIndex
        var index = levelStart
        while index != utf8.endIndex {
            if utf8[index] == MQTTTopic.slash {
                levels.append(filter[levelStart..<index])
                levelStart = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        levels.append(filter[levelStart..<index])
        return levels
    }

    private static func isWildcard(_ level: Substring, _ wildcard: UInt8) -> Bool {
        level.utf8.count == 1 && level.utf8.first == wildcard
    }

    private static func insert(into node: inout Node, levels: ArraySlice<Substring>, key: Key, value: Value) {
        guard let level = levels.first else {
            node.entries[key] = value
            return
        }
        let rest = levels.dropFirst()
        if rest.isEmpty && isWildcard(level, MQTTTopic.hash) {
            node.hashEntries[key] = value
        } else if isWildcard(level, MQTTTopic.plus) {
            if node.plusChild.isEmpty { node.plusChild.append(Node()) }
            insert(into: &node.plusChild[0], levels: rest, key: key, value: value)
        } else {
            // Store a copy, so the key does not keep the whole filter string alive.
            insert(into: &node.children[MQTTTopicLevel(Substring(String(level))), default: Node()], levels: rest, key: key, value: value)
        }
    }

    private static func remove(from node: inout Node, levels: ArraySlice<Substring>, key: Key) -> Bool {
        guard let level = levels.first else {
            return node.entries.removeValue(forKey: key) != nil
        }
        let rest = levels.dropFirst()
        if rest.isEmpty && isWildcard(level, MQTTTopic.hash) {
            return node.hashEntries.removeValue(forKey: key) != nil
        }
        if isWildcard(level, MQTTTopic.plus) {
            guard var child = node.plusChild.popLast() else { return false }
            let removed = remove(from: &child, levels: rest, key: key)
            if !child.isEmpty { node.plusChild.append(child) }
            return removed
        }
        let levelKey = MQTTTopicLevel(level)
        guard var child = node.children.removeValue(forKey: levelKey) else { return false }
        let removed = remove(from: &child, levels: rest, key: key)
        if !child.isEmpty { node.children[levelKey] = child }
        return removed
    }
}
