/// Subscriptions indexed by topic filter, for finding quickly who a published message goes to.
///
/// A trie over topic levels: each node has children by exact level, a separate child for `+`, and the
/// subscriptions whose filter ends in `#` at that node. Matching a topic visits only the branches the topic
/// can reach, reading its levels straight from its UTF-8 bytes; levels compare as bytes. `Key` identifies a
/// subscriber, `Value` is what it subscribed with (for example its options); a key holds at most one value
/// per filter. Nodes live in one array and refer to each other by index, and removal prunes (and reuses)
/// nodes left empty. The public methods are inlinable so that callers get code specialized for their types.
package struct MQTTTopicTree<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    @usableFromInline
    struct Node: Sendable {
        /// Children by exact level (never a "+" level; a "#" here is a literal from an invalid filter, never matched).
        @usableFromInline var children: [MQTTTopicLevel: Int] = [:]
        /// The index of the "+" child, or -1.
        @usableFromInline var plusChild = -1
        /// Subscriptions whose filter is this node's path followed by "/#" (or just "#" at the root).
        @usableFromInline var hashEntries: [Key: Value] = [:]
        /// Subscriptions whose filter ends at this node.
        @usableFromInline var entries: [Key: Value] = [:]

        @inlinable
        init() {}

        @inlinable
        var isEmpty: Bool {
            entries.isEmpty && hashEntries.isEmpty && children.isEmpty && plusChild < 0
        }
    }

    /// All nodes; `nodes[0]` is the root. Unused slots are listed in `freeNodes`.
    @usableFromInline var nodes: [Node]
    @usableFromInline var freeNodes: [Int]

    /// Creates an empty tree.
    @inlinable
    package init() {
        nodes = [Node()]
        freeNodes = []
    }

    /// Whether the tree holds no subscription.
    @inlinable
    package var isEmpty: Bool { nodes[0].isEmpty }

    /// Adds `key`'s subscription to `filter`, replacing the value `key` had for that filter.
    /// Validate filters first (``MQTTTopic/isValidFilter(_:)``): an invalid one is stored but matches nothing.
    @inlinable
    package mutating func insert(filter: String, key: Key, value: Value) {
        var filter = filter
        filter.withUTF8 { bytes in
            var index = 0
            var start = 0
            while true {
                let end = Self.levelEnd(bytes, from: start)
                let level = UnsafeBufferPointer(rebasing: bytes[start..<end])
                let isLast = end == bytes.count
                if isLast && Self.isWildcard(level, MQTTTopic.hash) {
                    nodes[index].hashEntries[key] = value
                    return
                }
                index = Self.isWildcard(level, MQTTTopic.plus) ? plusChild(of: index) : child(of: index, level: level)
                if isLast {
                    nodes[index].entries[key] = value
                    return
                }
                start = end + 1
            }
        }
    }

    /// Removes `key`'s subscription to `filter`, pruning nodes left empty. Returns whether there was one.
    @inlinable
    @discardableResult
    package mutating func remove(filter: String, key: Key) -> Bool {
        var filter = filter
        return filter.withUTF8 { bytes in
            // The nodes walked through: parent, child, and the child's level in `bytes` (nil for "+").
            var path: [(parent: Int, child: Int, level: Range<Int>?)] = []
            var index = 0
            var start = 0
            var removed = false
            while true {
                let end = Self.levelEnd(bytes, from: start)
                let level = UnsafeBufferPointer(rebasing: bytes[start..<end])
                let isLast = end == bytes.count
                if isLast && Self.isWildcard(level, MQTTTopic.hash) {
                    removed = nodes[index].hashEntries.removeValue(forKey: key) != nil
                    break
                }
                let next: Int?
                if Self.isWildcard(level, MQTTTopic.plus) {
                    next = nodes[index].plusChild < 0 ? nil : nodes[index].plusChild
                    if let next { path.append((index, next, nil)) }
                } else {
                    next = nodes[index].children[MQTTTopicLevel(borrowing: level)]
                    if let next { path.append((index, next, start..<end)) }
                }
                guard let next else { return false }
                index = next
                if isLast {
                    removed = nodes[index].entries.removeValue(forKey: key) != nil
                    break
                }
                start = end + 1
            }
            guard removed else { return false }
            for step in path.reversed() {
                guard nodes[step.child].isEmpty else { break }
                if let level = step.level {
                    nodes[step.parent].children.removeValue(forKey: MQTTTopicLevel(borrowing: UnsafeBufferPointer(rebasing: bytes[level])))
                } else {
                    nodes[step.parent].plusChild = -1
                }
                nodes[step.child] = Node()
                freeNodes.append(step.child)
            }
            if nodes[0].isEmpty {
                nodes = [Node()]
                freeNodes = []
            }
            return true
        }
    }

    /// Calls `body` with every subscription whose filter matches `topic` (see ``MQTTTopic/matches(filter:topic:)``).
    /// A key subscribed with several matching filters is reported once for each. An invalid topic matches nothing.
    @inlinable
    package func forEachMatch(topic: String, _ body: (Key, Value) -> Void) {
        var topic = topic
        topic.withUTF8 { bytes in
            guard !bytes.isEmpty else { return }
            for byte in bytes where byte == MQTTTopic.plus || byte == MQTTTopic.hash { return }
            visit(0, topic: bytes, levelStart: 0, isSystemTopic: bytes[0] == MQTTTopic.dollar, body)
        }
    }

    /// Reports the matches under `index` for the topic's levels from `levelStart` on (past the end: none left).
    @inlinable
    func visit(
        _ index: Int,
        topic: UnsafeBufferPointer<UInt8>,
        levelStart: Int,
        isSystemTopic: Bool,
        _ body: (Key, Value) -> Void
    ) {
        // Wildcards at the first level do not match topics starting with "$".
        let wildcardsMatch = levelStart > 0 || !isSystemTopic
        if wildcardsMatch && !nodes[index].hashEntries.isEmpty {
            for (key, value) in nodes[index].hashEntries { body(key, value) }
        }
        guard levelStart <= topic.count else {
            for (key, value) in nodes[index].entries { body(key, value) }
            return
        }
        let end = Self.levelEnd(topic, from: levelStart)
        if !nodes[index].children.isEmpty,
            let child = nodes[index].children[MQTTTopicLevel(borrowing: UnsafeBufferPointer(rebasing: topic[levelStart..<end]))]
        {
            visit(child, topic: topic, levelStart: end + 1, isSystemTopic: isSystemTopic, body)
        }
        let plusChild = nodes[index].plusChild
        if wildcardsMatch && plusChild >= 0 {
            visit(plusChild, topic: topic, levelStart: end + 1, isSystemTopic: isSystemTopic, body)
        }
    }

    /// The child of `index` for an exact level, created if missing.
    @inlinable
    mutating func child(of index: Int, level: UnsafeBufferPointer<UInt8>) -> Int {
        if let existing = nodes[index].children[MQTTTopicLevel(borrowing: level)] { return existing }
        let new = makeNode()
        nodes[index].children[MQTTTopicLevel(copying: level)] = new
        return new
    }

    /// The "+" child of `index`, created if missing.
    @inlinable
    mutating func plusChild(of index: Int) -> Int {
        if nodes[index].plusChild >= 0 { return nodes[index].plusChild }
        let new = makeNode()
        nodes[index].plusChild = new
        return new
    }

    @inlinable
    mutating func makeNode() -> Int {
        if let free = freeNodes.popLast() { return free }
        nodes.append(Node())
        return nodes.count - 1
    }

    /// Where the level starting at `start` ends: the next "/" or the end.
    @inlinable
    static func levelEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var end = start
        while end < bytes.count && bytes[end] != MQTTTopic.slash { end += 1 }
        return end
    }

    @inlinable
    static func isWildcard(_ level: UnsafeBufferPointer<UInt8>, _ wildcard: UInt8) -> Bool {
        level.count == 1 && level[0] == wildcard
    }
}
