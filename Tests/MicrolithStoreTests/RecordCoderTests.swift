import Foundation
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Testing

@Suite struct RecordCoderTests {
    struct Line: Codable, Equatable {
        var sku: String
        var quantity: Int8
    }

    struct Sample: Codable, Equatable {
        var id: String
        var count: Int
        var ratio: Double
        var flag: Bool
        var note: String?
        var tags: [String]
        var lines: [Line]
        var byName: [String: Int]
        var when: Date
        var nested: [[Int]]
    }

    let sample = Sample(
        id: "a", count: 3, ratio: 0.5, flag: true, note: nil, tags: ["x", "y"], lines: [Line(sku: "s", quantity: 2)], byName: ["k": 1],
        when: Date(timeIntervalSince1970: 1_800_000_000.123), nested: [[1, 2], []])

    @Test func valuesRoundTripThroughRecords() throws {
        let object = try RecordCoder.object(sample)
        #expect(object["when"] == "2027-01-15T08:00:00.123Z")
        #expect(object["note"] == nil)
        let back = try RecordCoder.decode(Sample.self, from: .object(object))
        #expect(back == sample)
    }

    struct Attachment: Codable, Equatable {
        var name: String
        var bytes: Data
        var when: Date
    }

    /// `Data` is written as Base64 text and read back from it (an array of bytes is read too);
    /// `encodeJSON` writes the text `decodeJSON` reads, dates included.
    @Test func bytesRoundTripAsBase64AndJSONTextRoundTrips() throws {
        let value = Attachment(name: "a", bytes: Data([0, 1, 254, 255]), when: Date(timeIntervalSince1970: 1_800_000_000.123))
        let text = String(decoding: try RecordCoder.encodeJSON(value), as: UTF8.self)
        #expect(text == #"{"name":"a","bytes":"AAH+/w==","when":"2027-01-15T08:00:00.123Z"}"#)
        #expect(try RecordCoder.decodeJSON(Attachment.self, from: Array(text.utf8)) == value)
        #expect(try RecordCoder.decode(Attachment.self, from: .object(RecordCoder.object(value))) == value)
        let asArray: JSONObject = ["name": "a", "bytes": .array([0, 1, 254, 255]), "when": .int(1_800_000_000_123)]
        #expect(try RecordCoder.decode(Attachment.self, from: .object(asArray)) == value)
        let error = #expect(throws: StoreError.self) {
            try RecordCoder.decode(Attachment.self, from: .object(["name": "a", "bytes": "not base64!", "when": 0]))
        }
        #expect(error?.message.contains("is not Base64 text") == true, "\(error?.message ?? "")")
    }

    @Test func datesAlsoReadAsMilliseconds() throws {
        var object = try RecordCoder.object(sample)
        object["when"] = .int(1_800_000_000_123)
        #expect(try RecordCoder.decode(Sample.self, from: .object(object)).when == sample.when)
        object["note"] = .null
        #expect(try RecordCoder.decode(Sample.self, from: .object(object)).note == nil)
    }

    @Test(arguments: [
        ("count", JSONValue.string("3"), "expected Int at 'count'"),
        ("count", .double(1.5), "1.5 is not a whole Int"),
        ("tags", .null, "expected Array<String> at 'tags', got null"),
        ("when", .string("yesterday"), "'yesterday' is not an ISO 8601 date"),
        ("lines", .array([.object(["sku": "s", "quantity": 300])]), "300 does not fit Int8 at 'lines.[0].quantity'"),
        ("count", .null, "expected Int at 'count', got null"),
        ("ratio", .string("0.5"), "expected Double at 'ratio'"),
        ("flag", .int(1), "expected Bool at 'flag'"),
        ("note", .int(3), "expected String at 'note'"),
        ("tags", .array(["x", .null]), "expected String at 'tags.[1]', got null"),
        ("tags", .array(["x", 3]), "expected String at 'tags.[1]'"),
        ("nested", .array([.array([1, 2.5])]), "2.5 is not a whole Int at 'nested.[0].[1]'"),
    ])
    func misfitsAreNamed(_ key: String, _ value: JSONValue, _ message: String) throws {
        var object = try RecordCoder.object(sample)
        object[key] = value
        let error = #expect(throws: StoreError.self) { try RecordCoder.decode(Sample.self, from: .object(object)) }
        #expect(error?.code == .invalidRecord)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test func missingKeysAreNamed() throws {
        var object = try RecordCoder.object(sample)
        object["id"] = nil
        let error = #expect(throws: StoreError.self) { try RecordCoder.decode(Sample.self, from: .object(object)) }
        #expect(error?.message.contains("missing 'id'") == true)
    }

    struct Mixed: Encodable {
        var whole: Double = 5
        var half: Double = 2.5
        var big: Double = 1e20
        var small: Float = 0.1
        var tiny: Int8 = -3
        var unsigned: UInt32 = 7
        var bytes = Data([1, 2, 250])
        var link = URL(string: "https://example.com/a%20b?q=1")!
        var price = Decimal(string: "12.34")!
        var when = Date(timeIntervalSince1970: 1_800_000_000.123)
        var nothing: String? = nil
        var null: String?
        var lists: [[Double]] = [[1, 1.5], []]
        var byNumber: [Int: String] = [1: "one"]

        enum CodingKeys: String, CodingKey {
            case whole, half, big, small, tiny, unsigned, bytes, link, price, when, nothing, null, lists, byNumber
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(whole, forKey: .whole)
            try c.encode(half, forKey: .half)
            try c.encode(big, forKey: .big)
            try c.encode(small, forKey: .small)
            try c.encode(tiny, forKey: .tiny)
            try c.encode(unsigned, forKey: .unsigned)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(link, forKey: .link)
            try c.encode(price, forKey: .price)
            try c.encode(when, forKey: .when)
            try c.encodeIfPresent(nothing, forKey: .nothing)
            try c.encode(null, forKey: .null)
            try c.encode(lists, forKey: .lists)
            try c.encode(byNumber, forKey: .byNumber)
        }
    }

    /// What `JSONEncoder` (with the record date convention) writes, read back as a tree.
    static func viaText(_ value: some Encodable) throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(DateValue.format(Int64((date.timeIntervalSince1970 * 1000).rounded(.down))))
        }
        return try JSONParser.parse(try encoder.encode(value))
    }

    @Test func encodingGivesTheTreeJSONEncoderTextReadsBackAs() throws {
        let direct = try RecordCoder.json(Mixed())
        #expect(direct == (try Self.viaText(Mixed())))
        #expect(try RecordCoder.json(sample) == (try Self.viaText(sample)))
        // Equality of numbers ignores int / double; the stored text does not.
        guard case .object(let object) = direct else {
            Issue.record("not an object: \(direct)")
            return
        }
        #expect(object.keys == Mixed.CodingKeys.allNames.filter { $0 != "nothing" }, "members in encoding order")
        #expect(String(decoding: JSONWriter.encode(object["whole"]!), as: UTF8.self) == "5")
        #expect(String(decoding: JSONWriter.encode(object["small"]!), as: UTF8.self) == "0.1")
        #expect(object["null"] == .null)
    }

    @Test(arguments: [Double.infinity, -.infinity, .nan])
    func nonFiniteNumbersAreRefused(_ value: Double) throws {
        let error = #expect(throws: StoreError.self) { try RecordCoder.json(["x": value]) }
        #expect(error?.code == .invalidRecord)
    }

    @Test func integersBeyondSixtyFourBitsAreRefused() throws {
        #expect(try RecordCoder.json(["x": UInt64(Int64.max)]) == ["x": .int(Int64.max)])
        #expect(throws: StoreError.self) { try RecordCoder.json(["x": UInt64(Int64.max) + 1]) }
    }
}

extension RecordCoderTests.Mixed.CodingKeys: CaseIterable {
    static var allNames: [String] { allCases.map(\.rawValue) }
}
