/// One level of a topic or filter as a dictionary key that hashes and compares its UTF-8 bytes
/// (MQTT compares topics byte by byte, while `String` compares by canonical equivalence).
///
/// A key stored in a tree owns a copy of its bytes. A probe made with ``init(borrowing:)`` points into the
/// topic being matched, so it only lives for the lookup it is made for and is never stored; that is what makes
/// the `@unchecked Sendable` sound (stored keys are immutable and own their memory).
@usableFromInline
struct MQTTTopicLevel: Hashable, @unchecked Sendable {
    @usableFromInline let bytes: UnsafeBufferPointer<UInt8>
    /// Keeps `bytes` alive for stored keys; nil for probes.
    @usableFromInline let storage: MQTTTopicLevelStorage?

    /// A probe for one lookup, pointing at bytes owned by the caller.
    @inlinable
    init(borrowing bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        storage = nil
    }

    /// A key to store, owning a copy of `bytes`.
    @inlinable
    init(copying bytes: UnsafeBufferPointer<UInt8>) {
        let storage = MQTTTopicLevelStorage(copying: bytes)
        self.bytes = storage.bytes
        self.storage = storage
    }

    @inlinable
    static func == (lhs: MQTTTopicLevel, rhs: MQTTTopicLevel) -> Bool {
        let count = lhs.bytes.count
        guard count == rhs.bytes.count else { return false }
        var index = 0
        while index < count {
            if lhs.bytes[index] != rhs.bytes[index] { return false }
            index += 1
        }
        return true
    }

    @inlinable
    func hash(into hasher: inout Hasher) {
        hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
    }
}

/// The immutable heap copy of a stored level's bytes.
@usableFromInline
final class MQTTTopicLevelStorage: @unchecked Sendable {
    @usableFromInline let bytes: UnsafeBufferPointer<UInt8>

    @usableFromInline
    init(copying source: UnsafeBufferPointer<UInt8>) {
        let memory = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: Swift.max(source.count, 1))
        _ = memory.initialize(from: source)
        bytes = UnsafeBufferPointer(rebasing: memory[0..<source.count])
    }

    deinit {
        if let base = bytes.baseAddress { UnsafeMutablePointer(mutating: base).deallocate() }
    }
}
