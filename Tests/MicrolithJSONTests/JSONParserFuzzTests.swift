import MicrolithJSON
import MicrolithTestSupport
import Testing

/// Seeded mutations of valid JSON documents: every input either parses or is refused with a
/// `JSONParseError` that points inside the input and says why; whatever parses is written back
/// (`JSONWriter`) to text that parses to the same value and is written again byte for byte.
///
/// The test command runs a few thousand inputs; `Benchmarks/fuzz/run` runs a million.
@Suite("JSONParser: fuzzing")
struct JSONParserFuzzTests {
    static let seeds: [[UInt8]] = [
        #"{"id":"t1","title":"Buy milk","done":false,"tags":["a","b"],"priority":3,"due":"2024-05-01T10:00:00.000Z"}"#,
        #"{"a":{"b":{"c":[1,2,{"d":null}]}},"e":[[],[[]],{}],"f":-0,"g":-0.0,"h":1.5e-7,"i":1E+308,"j":9223372036854775807}"#,
        #"["\u0000\u001f\"\\\/\b\f\n\r\t","é€𝄞","\ud834\udd1e","\u00e9",""]"#,
        #"[-9223372036854775808, 0.1, 123456789012345678, 1e-320, 2.5E3, true, false, null]"#,
        "  {\n\t\"spaced\" : [ 1 , 2 ] ,\r\n \"x\" : { } }  ",
        #""just a string""#,
        "42",
        #"{"lines":[{"productId":"p000001","quantity":1,"unitCents":16155,"name":"Deluxe Kettle 1"}],"totalCents":16155}"#,
    ].map { Array($0.utf8) }

    /// Bytes that matter to the grammar, tried more often than others.
    static let interesting: [UInt8] = Array(#"{}[]",:\-+.eE0123456789 tfnu"#.utf8) + [0x00, 0x0A, 0x7F, 0x80, 0xC3, 0xE2, 0xF0, 0xFF]

    static func mutate(_ input: [UInt8], seeds: [[UInt8]], using random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        func byte() -> UInt8 {
            Bool.random(using: &random) ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
        }
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            switch Int.random(in: 0..<7, using: &random) {
            case 0:  // truncate
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
            case 1:  // replace bytes
                for _ in 0..<Int.random(in: 1...3, using: &random) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = byte()
                }
            case 2:  // insert bytes
                let at = Int.random(in: 0...bytes.count, using: &random)
                bytes.insert(contentsOf: (0..<Int.random(in: 1...4, using: &random)).map { _ in byte() }, at: at)
            case 3:  // delete a run
                if !bytes.isEmpty {
                    let at = Int.random(in: 0..<bytes.count, using: &random)
                    bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...6, using: &random)))
                }
            case 4:  // repeat a run (deep nesting, long numbers)
                if !bytes.isEmpty {
                    let at = Int.random(in: 0..<bytes.count, using: &random)
                    let run = Array(bytes[at..<min(bytes.count, at + Int.random(in: 1...4, using: &random))])
                    let times = [2, 10, 300][Int.random(in: 0..<3, using: &random)]
                    bytes.insert(contentsOf: Array(repeating: run, count: times).flatMap { $0 }, at: at)
                }
            case 5:  // splice in part of another document
                let other = seeds.randomElement(using: &random)!
                let from = Int.random(in: 0...other.count, using: &random)
                let at = Int.random(in: 0...bytes.count, using: &random)
                bytes.insert(contentsOf: other[from..<min(other.count, from + Int.random(in: 1...24, using: &random))], at: at)
            default:  // flip a bit
                if !bytes.isEmpty { bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random) }
            }
        }
        return bytes
    }

    /// Checks one input; returns whether it parsed, appending what is wrong to `failures`.
    static func check(_ bytes: [UInt8], failures: inout [String]) -> Bool {
        do {
            let value = try JSONParser.parse(bytes)
            let written = JSONWriter.encode(value)
            do {
                let again = try JSONParser.parse(written)
                if again != value { failures.append("\(bytes) → \(value) was written as text that parses to \(again)") }
                if JSONWriter.encode(again) != written { failures.append("\(bytes) is written differently the second time") }
            } catch {
                failures.append("\(bytes) parsed, but its written form \(String(decoding: written, as: UTF8.self)) does not: \(error)")
            }
            return true
        } catch {
            if !(0...bytes.count).contains(error.offset) { failures.append("\(error) points outside the \(bytes.count) bytes of \(bytes)") }
            if error.reason.isEmpty { failures.append("no reason given for \(bytes)") }
            return false
        }
    }

    @Test func seedsParse() throws {
        for seed in Self.seeds { _ = try JSONParser.parse(seed) }
    }

    /// Checks `inputs` inputs that `next` makes from the generator, reports them as `target` and
    /// expects no failure; returns how many parsed.
    static func fuzz(_ target: String, inputs: Int, seed: UInt64, next: (inout SplitMix64) -> [UInt8]) -> Int {
        var random = SplitMix64(seed: seed)
        var failures: [String] = []
        var accepted = 0
        for _ in 0..<inputs {
            if check(next(&random), failures: &failures) { accepted += 1 }
            if failures.count > 20 { break }
        }
        FuzzBudget.report(target, inputs: inputs, accepted: accepted, refused: inputs - accepted, failures: failures.count)
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(3))")
        return accepted
    }

    @Test(.timeLimit(.minutes(10)))
    func mutatedDocumentsParseOrAreRefusedWithAReason() {
        let inputs = FuzzBudget.inputs(default: 20_000)
        let accepted = Self.fuzz("json", inputs: inputs, seed: 0x4A53_4F4E) { random in
            Self.mutate(Self.seeds.randomElement(using: &random)!, seeds: Self.seeds, using: &random)
        }
        // The mutations reach both outcomes, each often.
        #expect(accepted > inputs / 20 && inputs - accepted > inputs / 5, "\(accepted) of \(inputs) parsed")
    }

    @Test(.timeLimit(.minutes(5)))
    func randomBytesParseOrAreRefusedWithAReason() {
        _ = Self.fuzz("json-random", inputs: FuzzBudget.inputs(default: 5_000), seed: 7) { random in
            (0..<Int.random(in: 0...24, using: &random)).map { _ in
                Bool.random(using: &random) ? Self.interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
        }
    }
}
