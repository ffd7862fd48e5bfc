import Foundation

/// Encodes a view straight into what templates read: dictionaries, arrays, strings, numbers and
/// booleans (`nil` becomes `false`, so `{{#x}}` sections skip it), with no JSON in between.
enum MustacheEncoder {
    static func encode(_ value: some Encodable) throws -> Any {
        let root = Slot()
        try value.encode(to: Node(slot: root, codingPath: []))
        return root.resolved
    }

    /// Where one encoded value goes; containers fill it in place.
    final class Slot {
        var value: Any = false
        var object: [String: Slot]?
        var array: [Slot]?

        var resolved: Any {
            if let object { return object.mapValues(\.resolved) }
            if let array { return array.map(\.resolved) }
            return value
        }
    }

    struct Node: Encoder {
        let slot: Slot
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if slot.object == nil { slot.object = [:] }
            return KeyedEncodingContainer(Keyed<Key>(slot: slot, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if slot.array == nil { slot.array = [] }
            return Unkeyed(slot: slot, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(slot: slot, codingPath: codingPath) }
    }

    static func put(_ value: some Encodable, into slot: Slot, codingPath: [any CodingKey]) throws {
        switch value {
        case let s as String: slot.value = s
        case let b as Bool: slot.value = b
        case let i as Int: slot.value = i
        case let d as Double: slot.value = d
        // Other widths too: their own `encode(to:)` would come straight back here.
        case let i as any BinaryInteger: slot.value = Int(truncatingIfNeeded: i)
        case let f as any BinaryFloatingPoint: slot.value = Double(f)
        default: try value.encode(to: Node(slot: slot, codingPath: codingPath))
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let slot: Slot
        var codingPath: [any CodingKey]

        private func child(_ key: Key) -> Slot {
            let child = Slot()
            slot.object?[key.stringValue] = child
            return child
        }

        mutating func encodeNil(forKey key: Key) { child(key).value = false }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try MustacheEncoder.put(value, into: child(key), codingPath: codingPath + [key])
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            Node(slot: child(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            Node(slot: child(key), codingPath: codingPath + [key]).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { Node(slot: slot, codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { Node(slot: child(key), codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let slot: Slot
        var codingPath: [any CodingKey]
        var count: Int { slot.array?.count ?? 0 }

        private func next() -> Slot {
            let child = Slot()
            slot.array?.append(child)
            return child
        }

        mutating func encodeNil() { next().value = false }
        mutating func encode<T: Encodable>(_ value: T) throws { try MustacheEncoder.put(value, into: next(), codingPath: codingPath) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            Node(slot: next(), codingPath: codingPath).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { Node(slot: next(), codingPath: codingPath).unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { Node(slot: next(), codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let slot: Slot
        var codingPath: [any CodingKey]

        mutating func encodeNil() { slot.value = false }
        mutating func encode<T: Encodable>(_ value: T) throws { try MustacheEncoder.put(value, into: slot, codingPath: codingPath) }
    }
}
