/// A doubly linked list of keys in recency order, in one array: O(1) insertion at the front,
/// move to the front, removal, and access to the least recently used key.
struct LRUList {
    private struct Node {
        var key: String
        var previous: Int
        var next: Int
    }

    private var nodes: [Node] = []
    private var free: [Int] = []
    private var head = -1
    private var tail = -1
    private(set) var count = 0

    /// Adds `key` as the most recently used; returns its handle.
    mutating func pushFront(_ key: String) -> Int {
        let node = Node(key: key, previous: -1, next: head)
        let index: Int
        if let reused = free.popLast() {
            nodes[reused] = node
            index = reused
        } else {
            nodes.append(node)
            index = nodes.count - 1
        }
        if head >= 0 { nodes[head].previous = index }
        head = index
        if tail < 0 { tail = index }
        count += 1
        return index
    }

    /// Marks the key at `index` as the most recently used.
    mutating func touch(_ index: Int) {
        guard index != head else { return }
        unlink(index)
        nodes[index].previous = -1
        nodes[index].next = head
        if head >= 0 { nodes[head].previous = index }
        head = index
        if tail < 0 { tail = index }
    }

    /// Removes the key at `index`.
    mutating func remove(_ index: Int) {
        unlink(index)
        nodes[index].key = ""
        free.append(index)
        count -= 1
    }

    /// The least recently used key.
    var leastRecent: String? { tail >= 0 ? nodes[tail].key : nil }

    private mutating func unlink(_ index: Int) {
        let node = nodes[index]
        if node.previous >= 0 { nodes[node.previous].next = node.next } else { head = node.next }
        if node.next >= 0 { nodes[node.next].previous = node.previous } else { tail = node.previous }
    }
}
