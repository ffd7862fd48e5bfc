import Foundation
import MicrolithJSON
import MicrolithSchema

/// Encodes `Encodable` values straight into a ``JSONValue`` tree (no JSON text in between), with
/// the conventions of ``RecordCoder``: a `Date` becomes an ISO 8601 text with milliseconds.
///
/// The tree is the one `JSONEncoder`'s text would parse to: whole `Double`s become integers
/// (`5.0` is written `5`), a `Float` keeps its shortest decimal form, `Data` is Base64 text, a
/// `URL` its absolute string, a `Decimal` its number; infinities and NaN are refused. Members
/// keep the order they were encoded in.
final class JSONValueEncoder: Encoder {
    /// One value under construction: containers hand out references so that nested containers
    /// and super encoders write into their parent.
    final class Node {
        enum Content {
            case empty
            case value(JSONValue)
            case object([(key: String, node: Node)])
            case array([Node])
        }

        var content: Content = .empty

        init(_ content: Content = .empty) { self.content = content }

        var json: JSONValue {
            switch content {
            case .empty: return .object(JSONObject())
            case .value(let v): return v
            case .object(let members):
                var o = JSONObject()
                for (k, n) in members { o[k] = n.json }
                return .object(o)
            case .array(let nodes): return .array(nodes.map(\.json))
            }
        }

        func set(_ key: String, _ node: Node) {
            guard case .object(var members) = content else {
                content = .object([(key, node)])
                return
            }
            content = .empty
            if let i = members.firstIndex(where: { $0.key == key }) {
                members[i].node = node
            } else {
                members.append((key, node))
            }
            content = .object(members)
        }

        func append(_ node: Node) {
            guard case .array(var nodes) = content else {
                content = .array([node])
                return
            }
            content = .empty
            nodes.append(node)
            content = .array(nodes)
        }

        var count: Int {
            if case .array(let nodes) = content { return nodes.count }
            return 0
        }
    }

    let node: Node
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(node: Node, codingPath: [any CodingKey]) {
        self.node = node
        self.codingPath = codingPath
    }

    /// The JSON value of `value`.
    static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        try node(value, codingPath: []).json
    }

    /// A node holding `value`, for the types `JSONEncoder` writes in its own way.
    static func node<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws -> Node {
        if let special = try special(value, codingPath: codingPath) { return Node(.value(special)) }
        let node = Node()
        try value.encode(to: JSONValueEncoder(node: node, codingPath: codingPath))
        return node
    }

    private static func special<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws -> JSONValue? {
        // Type comparisons first: they are cheap, and most values are none of these.
        if T.self == Date.self, let date = value as? Date {
            return .string(DateValue.format(Int64((date.timeIntervalSince1970 * 1000).rounded(.down))))
        }
        if T.self == Data.self, let data = value as? Data { return .string(data.base64EncodedString()) }
        if T.self == URL.self, let url = value as? URL { return .string(url.absoluteString) }
        if T.self == Decimal.self, let decimal = value as? Decimal {
            return (try? JSONParser.parse(decimal.description)) ?? .string(decimal.description)
        }
        if T.self == Double.self, let d = value as? Double { return try number(d, codingPath: codingPath) }
        if T.self == Float.self, let f = value as? Float {
            guard f.isFinite else { throw nonFinite(f, codingPath: codingPath) }
            return try number(Double(f.description) ?? Double(f), codingPath: codingPath)
        }
        return nil
    }

    /// A double as `JSONEncoder`'s text reads back: a whole number is an integer.
    static func number(_ d: Double, codingPath: [any CodingKey]) throws -> JSONValue {
        guard d.isFinite else { throw nonFinite(d, codingPath: codingPath) }
        if d == d.rounded(), abs(d) < 1e16, let i = Int64(exactly: d) { return .int(i) }
        return .double(d)
    }

    static func nonFinite(_ value: Any, codingPath: [any CodingKey]) -> EncodingError {
        .invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) cannot be written as JSON"))
    }

    static func integer<I: BinaryInteger>(_ value: I, codingPath: [any CodingKey]) throws -> JSONValue {
        guard let i = Int64(exactly: value) else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is outside the 64-bit range"))
        }
        return .int(i)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.content {} else { node.content = .object([]) }
        return KeyedEncodingContainer(Keyed<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.content {} else { node.content = .array([]) }
        return Unkeyed(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: node, codingPath: codingPath) }

    struct PathKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) {
            self.stringValue = "Index \(intValue)"
            self.intValue = intValue
        }
    }

    struct Keyed<K: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        private func put(_ value: JSONValue, _ key: K) { node.set(key.stringValue, Node(.value(value))) }

        mutating func encodeNil(forKey key: K) { put(.null, key) }
        mutating func encode(_ value: Bool, forKey key: K) { put(.bool(value), key) }
        mutating func encode(_ value: String, forKey key: K) { put(.string(value), key) }
        mutating func encode(_ value: Double, forKey key: K) throws { put(try number(value, codingPath: codingPath + [key]), key) }
        mutating func encode(_ value: Float, forKey key: K) throws {
            node.set(key.stringValue, try JSONValueEncoder.node(value, codingPath: codingPath + [key]))
        }
        mutating func encode(_ value: Int, forKey key: K) { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int8, forKey key: K) { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int16, forKey key: K) { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int32, forKey key: K) { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int64, forKey key: K) { put(.int(value), key) }
        mutating func encode(_ value: UInt, forKey key: K) throws { put(try integer(value, codingPath: codingPath + [key]), key) }
        mutating func encode(_ value: UInt8, forKey key: K) { put(.int(Int64(value)), key) }
        mutating func encode(_ value: UInt16, forKey key: K) { put(.int(Int64(value)), key) }
        mutating func encode(_ value: UInt32, forKey key: K) { put(.int(Int64(value)), key) }
        mutating func encode(_ value: UInt64, forKey key: K) throws { put(try integer(value, codingPath: codingPath + [key]), key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: K) throws {
            node.set(key.stringValue, try JSONValueEncoder.node(value, codingPath: codingPath + [key]))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: K) -> KeyedEncodingContainer<NestedKey> {
            let child = Node(.object([]))
            node.set(key.stringValue, child)
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child, codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer(forKey key: K) -> any UnkeyedEncodingContainer {
            let child = Node(.array([]))
            node.set(key.stringValue, child)
            return Unkeyed(node: child, codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder { superEncoder(key: "super") }
        mutating func superEncoder(forKey key: K) -> any Encoder { superEncoder(key: key.stringValue) }

        private func superEncoder(key: String) -> any Encoder {
            let child = Node()
            node.set(key, child)
            return JSONValueEncoder(node: child, codingPath: codingPath + [PathKey(stringValue: key)])
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int { node.count }

        private var nextKey: PathKey { PathKey(intValue: count) }
        private func add(_ value: JSONValue) { node.append(Node(.value(value))) }

        mutating func encodeNil() { add(.null) }
        mutating func encode(_ value: Bool) { add(.bool(value)) }
        mutating func encode(_ value: String) { add(.string(value)) }
        mutating func encode(_ value: Double) throws { add(try number(value, codingPath: codingPath + [nextKey])) }
        mutating func encode(_ value: Float) throws { node.append(try JSONValueEncoder.node(value, codingPath: codingPath + [nextKey])) }
        mutating func encode(_ value: Int) { add(.int(Int64(value))) }
        mutating func encode(_ value: Int8) { add(.int(Int64(value))) }
        mutating func encode(_ value: Int16) { add(.int(Int64(value))) }
        mutating func encode(_ value: Int32) { add(.int(Int64(value))) }
        mutating func encode(_ value: Int64) { add(.int(value)) }
        mutating func encode(_ value: UInt) throws { add(try integer(value, codingPath: codingPath + [nextKey])) }
        mutating func encode(_ value: UInt8) { add(.int(Int64(value))) }
        mutating func encode(_ value: UInt16) { add(.int(Int64(value))) }
        mutating func encode(_ value: UInt32) { add(.int(Int64(value))) }
        mutating func encode(_ value: UInt64) throws { add(try integer(value, codingPath: codingPath + [nextKey])) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            node.append(try JSONValueEncoder.node(value, codingPath: codingPath + [nextKey]))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let key = nextKey
            let child = Node(.object([]))
            node.append(child)
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child, codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let key = nextKey
            let child = Node(.array([]))
            node.append(child)
            return Unkeyed(node: child, codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder {
            let key = nextKey
            let child = Node()
            node.append(child)
            return JSONValueEncoder(node: child, codingPath: codingPath + [key])
        }
    }

    struct Single: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]

        private func set(_ value: JSONValue) { node.content = .value(value) }

        mutating func encodeNil() { set(.null) }
        mutating func encode(_ value: Bool) { set(.bool(value)) }
        mutating func encode(_ value: String) { set(.string(value)) }
        mutating func encode(_ value: Double) throws { set(try number(value, codingPath: codingPath)) }
        mutating func encode(_ value: Float) throws { node.content = try JSONValueEncoder.node(value, codingPath: codingPath).content }
        mutating func encode(_ value: Int) { set(.int(Int64(value))) }
        mutating func encode(_ value: Int8) { set(.int(Int64(value))) }
        mutating func encode(_ value: Int16) { set(.int(Int64(value))) }
        mutating func encode(_ value: Int32) { set(.int(Int64(value))) }
        mutating func encode(_ value: Int64) { set(.int(value)) }
        mutating func encode(_ value: UInt) throws { set(try integer(value, codingPath: codingPath)) }
        mutating func encode(_ value: UInt8) { set(.int(Int64(value))) }
        mutating func encode(_ value: UInt16) { set(.int(Int64(value))) }
        mutating func encode(_ value: UInt32) { set(.int(Int64(value))) }
        mutating func encode(_ value: UInt64) throws { set(try integer(value, codingPath: codingPath)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            node.content = try JSONValueEncoder.node(value, codingPath: codingPath).content
        }
    }
}
