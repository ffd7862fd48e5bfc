import Foundation
import MicrolithJSON
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
        ("lines", .array([.object(["sku": "s", "quantity": 300])]), "300 does not fit Int8"),
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
}
