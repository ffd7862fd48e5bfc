/// One level of a topic or filter, as a dictionary key that hashes and compares its UTF-8 bytes
/// (MQTT compares topics byte by byte, while `String` compares by canonical equivalence).
struct MQTTTopicLevel: Hashable, Sendable {
    var text: Substring

    init(_ text: Substring) {
        self.text = text
    }

    static func == (lhs: MQTTTopicLevel, rhs: MQTTTopicLevel) -> Bool {
        let left = lhs.text.utf8
        let right = rhs.text.utf8
        guard left.count == right.count else { return false }
        let fast = left.withContiguousStorageIfAvailable { leftBytes in
            right.withContiguousStorageIfAvailable { rightBytes in leftBytes.elementsEqual(rightBytes) }
        }
        if let fast, let equal = fast { return equal }
        return left.elementsEqual(right)
    }

    func hash(into hasher: inout Hasher) {
        let utf8 = text.utf8
        let hashed: Void? = utf8.withContiguousStorageIfAvailable { bytes in
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
        if hashed == nil {
            Array(utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }
}
