import Foundation
import MicrolithJSON
import MicrolithSchema

/// Decodes `Decodable` values straight from a ``JSONValue`` tree (no bytes in between), with the
/// conventions of ``RecordCoder``: a `Date` is an ISO 8601 text or milliseconds since 1970, `Data`
/// Base64 text (or an array of bytes).
struct JSONValueDecoder: Decoder {
    let value: JSONValue
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ value: JSONValue, codingPath: [any CodingKey] = []) {
        self.value = value
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else { throw mismatch([String: Any].self) }
        return KeyedDecodingContainer(Keyed<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let array) = value else { throw mismatch([Any].self) }
        return Unkeyed(array: array, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(value: value, codingPath: codingPath) }

    func mismatch(_ type: Any.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "found \(value.typeName)"))
    }

    /// Decodes a `T` from `value` at `path`.
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, path: [any CodingKey]) throws -> T {
        if T.self == Date.self {
            switch value {
            case .int(let ms): return Date(timeIntervalSince1970: Double(ms) / 1000) as! T
            case .double(let ms): return Date(timeIntervalSince1970: ms / 1000) as! T
            case .string(let text):
                guard let ms = DateValue.parse(text) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "'\(text)' is not an ISO 8601 date"))
                }
                return Date(timeIntervalSince1970: Double(ms) / 1000) as! T
            default:
                throw DecodingError.typeMismatch(Date.self, .init(codingPath: path, debugDescription: "found \(value.typeName)"))
            }
        }
        if T.self == Data.self, case .string(let text) = value {
            // Base64 text, as the encoder writes `Data`; an array of bytes still decodes the default way.
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "'\(text.prefix(40))' is not Base64 text"))
            }
            return data as! T
        }
        return try T(from: JSONValueDecoder(value, codingPath: path))
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let object: JSONObject
        let codingPath: [any CodingKey]
        var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

        func value(_ key: Key) throws -> JSONValue {
            guard let v = object[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no '\(key.stringValue)'"))
            }
            return v
        }

        func decodeNil(forKey key: Key) throws -> Bool {
            guard let v = object[key.stringValue] else { return true }
            return v.isNull
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let v = try value(key)
            if v.isNull, !(T.self is any OptionalProtocol.Type) {
                throw DecodingError.valueNotFound(T.self, .init(codingPath: codingPath + [key], debugDescription: "null"))
            }
            return try JSONValueDecoder.decode(T.self, from: v, path: codingPath + [key])
        }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            guard let v = object[key.stringValue], !v.isNull else { return nil }
            return try JSONValueDecoder.decode(T.self, from: v, path: codingPath + [key])
        }

        // Scalars are read in place: no generic dispatch, no coding path built unless it fails.

        private func single(_ key: Key, _ type: Any.Type) throws -> Single {
            let v = try value(key)
            if v.isNull { throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [key], debugDescription: "null")) }
            return Single(value: v, parentPath: codingPath, key: key)
        }

        private func singleIfPresent(_ key: Key) -> Single? {
            guard let v = object[key.stringValue], !v.isNull else { return nil }
            return Single(value: v, parentPath: codingPath, key: key)
        }

        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try single(key, type).decode(type) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try single(key, type).decode(type) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try single(key, type).decode(type) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try single(key, type).decode(type) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try single(key, type).decode(type) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try single(key, type).decode(type) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try single(key, type).decode(type) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try single(key, type).decode(type) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try single(key, type).decode(type) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try single(key, type).decode(type) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try single(key, type).decode(type) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try single(key, type).decode(type) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try single(key, type).decode(type) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try single(key, type).decode(type) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try singleIfPresent(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try singleIfPresent(key)?.decode(type) }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try JSONValueDecoder(try value(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try JSONValueDecoder(try value(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { JSONValueDecoder(.object(object), codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder { JSONValueDecoder(try value(key), codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let array: [JSONValue]
        let codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { array.count }
        var isAtEnd: Bool { currentIndex >= array.count }

        init(array: [JSONValue], codingPath: [any CodingKey]) {
            self.array = array
            self.codingPath = codingPath
        }

        struct Index: CodingKey {
            var intValue: Int?
            var stringValue: String { "\(intValue ?? 0)" }
            init(_ i: Int) { intValue = i }
            init?(stringValue: String) { nil }
            init?(intValue: Int) { self.intValue = intValue }
        }

        mutating func next() throws -> (JSONValue, [any CodingKey]) {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "the array has no more elements"))
            }
            defer { currentIndex += 1 }
            return (array[currentIndex], codingPath + [Index(currentIndex)])
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, array[currentIndex].isNull else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (v, path) = try next()
            if v.isNull, !(T.self is any OptionalProtocol.Type) {
                throw DecodingError.valueNotFound(T.self, .init(codingPath: path, debugDescription: "null"))
            }
            return try JSONValueDecoder.decode(T.self, from: v, path: path)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            let (v, path) = try next()
            return try JSONValueDecoder(v, codingPath: path).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            let (v, path) = try next()
            return try JSONValueDecoder(v, codingPath: path).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder {
            let (v, path) = try next()
            return JSONValueDecoder(v, codingPath: path)
        }
    }

    struct Single: SingleValueDecodingContainer {
        let value: JSONValue
        /// The path of the container holding the value, and the value's key in it (kept apart so
        /// the path is only built when an error needs it).
        let parentPath: [any CodingKey]
        let key: (any CodingKey)?
        var codingPath: [any CodingKey] { key.map { parentPath + [$0] } ?? parentPath }

        init(value: JSONValue, codingPath: [any CodingKey]) {
            self.init(value: value, parentPath: codingPath, key: nil)
        }

        init(value: JSONValue, parentPath: [any CodingKey], key: (any CodingKey)?) {
            self.value = value
            self.parentPath = parentPath
            self.key = key
        }

        func decodeNil() -> Bool { value.isNull }

        func mismatch(_ type: Any.Type) -> DecodingError {
            .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "found \(value.typeName)"))
        }

        func decode(_ type: Bool.Type) throws -> Bool {
            guard case .bool(let b) = value else { throw mismatch(type) }
            return b
        }

        func decode(_ type: String.Type) throws -> String {
            guard case .string(let s) = value else { throw mismatch(type) }
            return s
        }

        func decode(_ type: Double.Type) throws -> Double {
            switch value {
            case .double(let d): return d
            case .int(let n): return Double(n)
            default: throw mismatch(type)
            }
        }

        func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

        func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
            switch value {
            case .int(let n):
                guard let v = I(exactly: n) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "\(n) does not fit \(I.self)"))
                }
                return v
            case .double(let d):
                guard let v = I(exactly: d) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "\(d) is not a whole \(I.self)"))
                }
                return v
            default: throw mismatch(type)
            }
        }

        func decode(_ type: Int.Type) throws -> Int { try integer(type) }
        func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
        func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
        func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
        func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
        func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONValueDecoder.decode(T.self, from: value, path: codingPath)
        }
    }
}

/// Lets the decoder tell optional types apart (a `null` is fine for them).
protocol OptionalProtocol {}
extension Optional: OptionalProtocol {}
