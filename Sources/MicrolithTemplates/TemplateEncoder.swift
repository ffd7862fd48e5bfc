import Foundation

/// Encodes an `Encodable` view straight into the ``TemplateValue`` a template reads, with no JSON
/// in between.
///
/// Keyed containers become objects, unkeyed ones lists; strings, booleans and numbers keep their
/// type (every integer width becomes ``TemplateValue/int(_:)`` when it fits; a `UInt64` past
/// `Int.max` becomes its decimal digits as a string, so it renders exactly). A `Float` renders in
/// its own shortest form (`0.1`, not the `Double` it widens to). A `Decimal` becomes its
/// description (`12.5`) and a `URL` its absolute string, as a page would show them. An optional
/// that is `nil` is left out (the synthesized `encodeIfPresent`), so a tag naming it finds nothing
/// there and looks further down the context; an explicit `encodeNil` is ``TemplateValue/null``.
/// Other types with an encoding of their own keep it (a `Date` becomes its seconds since 2001, as
/// with `JSONEncoder`'s default; `Data` a list of byte values): give a view the text a page
/// should show, such as a formatted date or price.
public enum TemplateEncoder {
    /// `value` as a template reads it.
    public static func encode(_ value: some Encodable) throws -> TemplateValue {
        let root = Box()
        try encode(value, into: root, codingPath: [])
        return root.resolved
    }

    /// Encodes `value` into `box`: the types a page shows as text directly, the rest through
    /// their own `encode(to:)`. (Comparing the type is a pointer comparison, not a dynamic cast.)
    static func encode<T: Encodable>(_ value: T, into box: Box, codingPath: [any CodingKey]) throws {
        if T.self == Decimal.self, let decimal = value as? Decimal {
            box.value = .string(decimal.description)
        } else if T.self == URL.self, let url = value as? URL {
            box.value = .string(url.absoluteString)
        } else {
            try value.encode(to: Node(box: box, codingPath: codingPath))
        }
    }

    /// A `Float` as the `Double` whose shortest form is the `Float`'s own (`0.1`, not
    /// `0.10000000149011612`).
    static func float(_ f: Float) -> TemplateValue {
        .double(Double(String(f)) ?? Double(f))
    }

    /// Where one encoded value goes; containers fill it in place.
    final class Box {
        var value: TemplateValue = .null
        var object: [String: Box]?
        var list: [Box]?

        var resolved: TemplateValue {
            if let object { return .object(object.mapValues(\.resolved)) }
            if let list { return .list(list.map(\.resolved)) }
            return value
        }
    }

    struct Node: Encoder {
        let box: Box
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if box.object == nil { box.object = [:] }
            return KeyedEncodingContainer(Keyed<Key>(box: box, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if box.list == nil { box.list = [] }
            return Unkeyed(box: box, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(box: box, codingPath: codingPath) }
    }

    static func integer(_ i: some BinaryInteger) -> TemplateValue {
        if let exact = Int(exactly: i) { return .int(exact) }
        return .string(String(i))
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let box: Box
        var codingPath: [any CodingKey]

        private func set(_ key: Key, _ value: TemplateValue) {
            let child = Box()
            child.value = value
            box.object?[key.stringValue] = child
        }

        private func child(_ key: Key) -> Box {
            let child = Box()
            box.object?[key.stringValue] = child
            return child
        }

        mutating func encodeNil(forKey key: Key) { set(key, .null) }
        mutating func encode(_ value: Bool, forKey key: Key) { set(key, .bool(value)) }
        mutating func encode(_ value: String, forKey key: Key) { set(key, .string(value)) }
        mutating func encode(_ value: Double, forKey key: Key) { set(key, .double(value)) }
        mutating func encode(_ value: Float, forKey key: Key) { set(key, TemplateEncoder.float(value)) }
        mutating func encode(_ value: Int, forKey key: Key) { set(key, .int(value)) }
        mutating func encode(_ value: Int8, forKey key: Key) { set(key, .int(Int(value))) }
        mutating func encode(_ value: Int16, forKey key: Key) { set(key, .int(Int(value))) }
        mutating func encode(_ value: Int32, forKey key: Key) { set(key, .int(Int(value))) }
        mutating func encode(_ value: Int64, forKey key: Key) { set(key, TemplateEncoder.integer(value)) }
        mutating func encode(_ value: UInt, forKey key: Key) { set(key, TemplateEncoder.integer(value)) }
        mutating func encode(_ value: UInt8, forKey key: Key) { set(key, .int(Int(value))) }
        mutating func encode(_ value: UInt16, forKey key: Key) { set(key, .int(Int(value))) }
        mutating func encode(_ value: UInt32, forKey key: Key) { set(key, .int(Int(value))) }
        mutating func encode(_ value: UInt64, forKey key: Key) { set(key, TemplateEncoder.integer(value)) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try TemplateEncoder.encode(value, into: child(key), codingPath: codingPath + [key])
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            Node(box: child(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            Node(box: child(key), codingPath: codingPath + [key]).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { Node(box: box, codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { Node(box: child(key), codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let box: Box
        var codingPath: [any CodingKey]
        var count: Int { box.list?.count ?? 0 }

        private func append(_ value: TemplateValue) {
            let child = Box()
            child.value = value
            box.list?.append(child)
        }

        private func next() -> Box {
            let child = Box()
            box.list?.append(child)
            return child
        }

        mutating func encodeNil() { append(.null) }
        mutating func encode(_ value: Bool) { append(.bool(value)) }
        mutating func encode(_ value: String) { append(.string(value)) }
        mutating func encode(_ value: Double) { append(.double(value)) }
        mutating func encode(_ value: Float) { append(TemplateEncoder.float(value)) }
        mutating func encode(_ value: Int) { append(.int(value)) }
        mutating func encode(_ value: Int8) { append(.int(Int(value))) }
        mutating func encode(_ value: Int16) { append(.int(Int(value))) }
        mutating func encode(_ value: Int32) { append(.int(Int(value))) }
        mutating func encode(_ value: Int64) { append(TemplateEncoder.integer(value)) }
        mutating func encode(_ value: UInt) { append(TemplateEncoder.integer(value)) }
        mutating func encode(_ value: UInt8) { append(.int(Int(value))) }
        mutating func encode(_ value: UInt16) { append(.int(Int(value))) }
        mutating func encode(_ value: UInt32) { append(.int(Int(value))) }
        mutating func encode(_ value: UInt64) { append(TemplateEncoder.integer(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws { try TemplateEncoder.encode(value, into: next(), codingPath: codingPath) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            Node(box: next(), codingPath: codingPath).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { Node(box: next(), codingPath: codingPath).unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { Node(box: next(), codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let box: Box
        var codingPath: [any CodingKey]

        mutating func encodeNil() { box.value = .null }
        mutating func encode(_ value: Bool) { box.value = .bool(value) }
        mutating func encode(_ value: String) { box.value = .string(value) }
        mutating func encode(_ value: Double) { box.value = .double(value) }
        mutating func encode(_ value: Float) { box.value = TemplateEncoder.float(value) }
        mutating func encode(_ value: Int) { box.value = .int(value) }
        mutating func encode(_ value: Int8) { box.value = .int(Int(value)) }
        mutating func encode(_ value: Int16) { box.value = .int(Int(value)) }
        mutating func encode(_ value: Int32) { box.value = .int(Int(value)) }
        mutating func encode(_ value: Int64) { box.value = TemplateEncoder.integer(value) }
        mutating func encode(_ value: UInt) { box.value = TemplateEncoder.integer(value) }
        mutating func encode(_ value: UInt8) { box.value = .int(Int(value)) }
        mutating func encode(_ value: UInt16) { box.value = .int(Int(value)) }
        mutating func encode(_ value: UInt32) { box.value = .int(Int(value)) }
        mutating func encode(_ value: UInt64) { box.value = TemplateEncoder.integer(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { try TemplateEncoder.encode(value, into: box, codingPath: codingPath) }
    }
}
