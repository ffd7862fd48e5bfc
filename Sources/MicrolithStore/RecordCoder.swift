import Foundation
public import MicrolithJSON
import MicrolithSchema

/// Converts between `Codable` Swift values and the store's JSON records.
///
/// Swift `Date` values travel as ISO 8601 texts with milliseconds (the form `Date` attributes
/// store); everything else follows `JSONEncoder`/`JSONDecoder` defaults. Values are encoded to and
/// decoded from ``JSONValue`` trees directly, without JSON text in between.
public enum RecordCoder {
    /// The JSON object `value` encodes to.
    /// - Throws: ``StoreError/Code/invalidRecord`` when `value` does not encode to a JSON object.
    public static func object<T: Encodable>(_ value: T) throws -> JSONObject {
        guard case .object(let object) = try json(value) else {
            throw StoreError(.invalidRecord, "a \(T.self) must encode to a JSON object to be stored as a record")
        }
        return object
    }

    /// The JSON value `value` encodes to.
    public static func json<T: Encodable>(_ value: T) throws -> JSONValue {
        do {
            return try JSONValueEncoder.encode(value)
        } catch {
            throw StoreError(.invalidRecord, "a \(T.self) cannot be encoded: \(error)", underlying: error)
        }
    }

    /// Decodes a `T` from a JSON value.
    /// - Throws: ``StoreError/Code/invalidRecord`` naming the attribute that does not fit `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        do {
            return try JSONValueDecoder.decode(T.self, from: value, path: [])
        } catch let error as DecodingError {
            throw StoreError(.invalidRecord, "the record does not fit \(T.self): \(describe(error))", underlying: error)
        } catch {
            throw StoreError(.invalidRecord, "the record does not fit \(T.self): \(error)", underlying: error)
        }
    }

    /// The JSON text `value` encodes to, by the conventions ``decodeJSON(_:from:)`` reads: a `Date`
    /// is an ISO 8601 text with milliseconds (Foundation's `JSONEncoder` would write seconds since
    /// 2001, which the decoder takes for milliseconds since 1970). Members keep their encoding order.
    /// - Throws: ``StoreError/Code/invalidRecord`` when `value` cannot be encoded (an infinite or NaN
    ///   number, an encoder error).
    public static func encodeJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
        JSONWriter.encode(try json(value))
    }

    /// Decodes a `T` from JSON text (the fast path for operation bodies): a `JSONParseError`
    /// for text that is not JSON, a `DecodingError` for JSON that does not fit `T`.
    public static func decodeJSON<T: Decodable>(_ type: T.Type, from data: some Collection<UInt8>) throws -> T {
        try JSONValueDecoder.decode(T.self, from: try JSONParser.parse(data), path: [])
    }

    /// A short account of a decoding error: which key and why.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at '\(p)'"
        }
        switch error {
        case .keyNotFound(let key, let c): return "missing '\(key.stringValue)'\(path(c))"
        case .typeMismatch(let type, let c): return "expected \(type)\(path(c))"
        case .valueNotFound(let type, let c): return "expected \(type)\(path(c)), got null"
        case .dataCorrupted(let c): return "\(c.debugDescription)\(path(c))"
        @unknown default: return "\(error)"
        }
    }

}
