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
        try encode(value, into: root, path: nil)
        return root.resolved
    }

    /// Encodes `value` into `box`: the types a page shows as text directly, the rest through
    /// their own `encode(to:)`. (Comparing the type is a pointer comparison, not a dynamic cast.)
    static func encode<T: Encodable>(_ value: T, into box: Box, path: PathLink?) throws {
        if T.self == Decimal.self, let decimal = value as? Decimal {
            box.value = .string(decimal.description)
        } else if T.self == URL.self, let url = value as? URL {
            box.value = .string(url.absoluteString)
        } else {
            try value.encode(to: Node(box: box, path: path))
        }
    }

    /// The value of a nested `Encodable`, whole: its containers are filled when its
    /// `encode(to:)` returns.
    static func child<T: Encodable>(_ value: T, path: PathLink?) throws -> TemplateValue {
        let box = Box()
        try encode(value, into: box, path: path)
        return box.resolved
    }

    /// A `Float` as the `Double` whose shortest form is the `Float`'s own (`0.1`, not
    /// `0.10000000149011612`).
    static func float(_ f: Float) -> TemplateValue {
        .double(Double(String(f)) ?? Double(f))
    }

    static func integer(_ i: some BinaryInteger) -> TemplateValue {
        if let exact = Int(exactly: i) { return .int(exact) }
        return .string(String(i))
    }

    /// Where one encoded value goes; containers fill it in place.
    ///
    /// Members and elements are kept as the values they are, so a view's objects are built once.
    /// Only a nested container handed out (`nestedContainer`, `superEncoder`) may still be filled
    /// after the call that made it returns: its box waits in ``pendingMembers`` or
    /// ``pendingElements`` and is read when this box is.
    final class Box {
        var value: TemplateValue = .null
        var object: [String: TemplateValue]?
        var list: [TemplateValue]?
        var pendingMembers: [(key: String, box: Box)] = []
        var pendingElements: [(index: Int, box: Box)] = []

        var resolved: TemplateValue {
            if var object {
                for (key, box) in pendingMembers { object[key] = box.resolved }
                return .object(object)
            }
            if var list {
                for (index, box) in pendingElements { list[index] = box.resolved }
                return .list(list)
            }
            return value
        }

        /// Sets member `key`; a later value replaces an earlier one, as in a dictionary.
        func set(_ key: String, _ value: TemplateValue) {
            if !pendingMembers.isEmpty { pendingMembers.removeAll { $0.key == key } }
            object?[key] = value
        }

        /// A box for member `key`, read when this box is.
        func pendingMember(_ key: String) -> Box {
            let child = Box()
            set(key, .null)
            pendingMembers.append((key, child))
            return child
        }

        /// A box for the next element, read when this box is.
        func pendingElement() -> Box {
            let child = Box()
            guard let index = list?.count else { return child }
            pendingElements.append((index, child))
            list?.append(.null)
            return child
        }
    }

    /// The coding path, one link per nested container, made into an array only when asked for.
    final class PathLink {
        let key: any CodingKey
        let parent: PathLink?

        init(_ key: any CodingKey, parent: PathLink?) {
            self.key = key
            self.parent = parent
        }

        static func path(_ link: PathLink?) -> [any CodingKey] {
            var keys: [any CodingKey] = []
            var link = link
            while let l = link {
                keys.append(l.key)
                link = l.parent
            }
            return keys.reversed()
        }
    }

    struct Node: Encoder {
        let box: Box
        let path: PathLink?
        var codingPath: [any CodingKey] { PathLink.path(path) }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if box.object == nil { box.object = [:] }
            return KeyedEncodingContainer(Keyed<Key>(box: box, path: path))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if box.list == nil { box.list = [] }
            return Unkeyed(box: box, path: path)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(box: box, path: path) }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let box: Box
        let path: PathLink?
        var codingPath: [any CodingKey] { PathLink.path(path) }

        private func set(_ key: Key, _ value: TemplateValue) {
            box.set(key.stringValue, value)
        }

        private func child(_ key: Key) -> Box {
            box.pendingMember(key.stringValue)
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
            box.set(key.stringValue, try TemplateEncoder.child(value, path: PathLink(key, parent: path)))
        }
        // The optionals views hold most, without the generic path (a `nil` is left out).
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) { if let value { set(key, .string(value)) } }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) { if let value { set(key, .int(value)) } }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) { if let value { set(key, .bool(value)) } }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) { if let value { set(key, .double(value)) } }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            Node(box: child(key), path: PathLink(key, parent: path)).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            Node(box: child(key), path: PathLink(key, parent: path)).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { Node(box: box, path: path) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { Node(box: child(key), path: PathLink(key, parent: path)) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let box: Box
        let path: PathLink?
        var codingPath: [any CodingKey] { PathLink.path(path) }
        var count: Int { box.list?.count ?? 0 }

        private func append(_ value: TemplateValue) {
            box.list?.append(value)
        }

        private func next() -> Box {
            box.pendingElement()
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
        mutating func encode<T: Encodable>(_ value: T) throws { box.list?.append(try TemplateEncoder.child(value, path: path)) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            Node(box: next(), path: path).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { Node(box: next(), path: path).unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { Node(box: next(), path: path) }
    }

    struct Single: SingleValueEncodingContainer {
        let box: Box
        let path: PathLink?
        var codingPath: [any CodingKey] { PathLink.path(path) }

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
        mutating func encode<T: Encodable>(_ value: T) throws { try TemplateEncoder.encode(value, into: box, path: path) }
    }
}
