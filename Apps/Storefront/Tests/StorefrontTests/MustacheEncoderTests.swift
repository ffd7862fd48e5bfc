import Foundation
import Testing

@testable import Storefront

@Suite struct MustacheEncoderTests {
    struct Inner: Encodable {
        var n: Int64
        var ratio: Float
        var tags: [String]
    }

    struct Outer: Encodable {
        var name: String
        var missing: String?
        var explicitNull: String?
        var flag: Bool
        var inner: Inner
        var shown: Shown<Int>
        var live: Shown<Int>

        enum CodingKeys: String, CodingKey { case name, missing, explicitNull, flag, inner, shown, live }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encodeIfPresent(missing, forKey: .missing)
            try c.encodeNil(forKey: .explicitNull)
            try c.encode(flag, forKey: .flag)
            try c.encode(inner, forKey: .inner)
            try c.encode(shown, forKey: .shown)
            try c.encode(live, forKey: .live)
        }
    }

    @Test func viewsBecomeWhatTemplatesRead() throws {
        let view = Outer(
            name: "mug", missing: nil, explicitNull: nil, flag: true, inner: Inner(n: 7, ratio: 0.5, tags: ["a", "b"]), shown: .value(3),
            live: .live("\u{E000}0\u{E001}"))
        let object = try #require(try MustacheEncoder.encode(view) as? [String: Any])
        #expect(object["name"] as? String == "mug")
        #expect(object["missing"] == nil, "an absent optional stays absent")
        #expect(object["explicitNull"] as? Bool == false, "null reads as false, so sections skip it")
        #expect(object["flag"] as? Bool == true)
        let inner = try #require(object["inner"] as? [String: Any])
        #expect(inner["n"] as? Int == 7)
        #expect(inner["ratio"] as? Double == 0.5)
        #expect(inner["tags"] as? [String] == ["a", "b"])
        #expect(object["shown"] as? Int == 3)
        #expect(object["live"] as? String == "\u{E000}0\u{E001}")
    }
}
