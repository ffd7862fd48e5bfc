import MicrolithJSON
import MicrolithStore
import Testing

/// Attribute stamps: merging copies of a record converges whatever the order.
@Suite("Store: record stamps")
struct RecordStampsTests {
    typealias Stamp = RecordStamps.Stamp

    @Test func theLaterStampWinsEachAttribute() {
        let base = Stamp(version: 10, origin: "a")
        let a = (
            record: ["x": JSONValue.int(1), "y": .int(1)] as JSONObject,
            stamps: RecordStamps(base: base, attributes: ["x": Stamp(version: 12, origin: "a")])
        )
        let b = (
            record: ["x": JSONValue.int(0), "y": .int(2)] as JSONObject,
            stamps: RecordStamps(base: base, attributes: ["y": Stamp(version: 11, origin: "b")])
        )
        let merged = RecordStamps.merge(a, b)
        #expect(merged.record == ["x": .int(1), "y": .int(2)])
        #expect(merged.stamps.attributes == ["x": Stamp(version: 12, origin: "a"), "y": Stamp(version: 11, origin: "b")])
        #expect(merged.stamps.latest == Stamp(version: 12, origin: "a"))
    }

    @Test func aRemovedAttributeStaysRemovedAgainstOlderWrites() {
        let removal = (
            record: JSONObject(), stamps: RecordStamps(base: Stamp(version: 1, origin: "a"), attributes: ["x": Stamp(version: 5, origin: "a")])
        )
        let older = (
            record: ["x": JSONValue.int(9)] as JSONObject,
            stamps: RecordStamps(base: Stamp(version: 1, origin: "a"), attributes: ["x": Stamp(version: 4, origin: "b")])
        )
        #expect(RecordStamps.merge(removal, older).record["x"] == nil)
        #expect(RecordStamps.merge(older, removal).record["x"] == nil)
    }

    @Test func mergingIsCommutativeAssociativeAndIdempotent() {
        var generator = SystemRandomNumberGenerator()
        let names = ["a", "b", "c", "d"]
        /// What a write stamped `stamp` left in attribute `name`: one stamp is one write, so every
        /// copy holding that stamp holds the same value (absent, sometimes: a removal).
        func value(_ name: String, _ stamp: Stamp) -> JSONValue? {
            let n = Int(stamp.version) * 31 + stamp.origin.utf8.reduce(0) { $0 &* 7 &+ Int($1) } + name.utf8.reduce(0) { $0 + Int($1) }
            return n % 4 == 0 ? nil : .int(Int64(n))
        }
        func copy() -> (record: JSONObject, stamps: RecordStamps) {
            let base = Stamp(version: Int64.random(in: 0..<5, using: &generator), origin: ["n1", "n2", "n3"].randomElement(using: &generator)!)
            var attributes: [String: Stamp] = [:]
            for name in names where Bool.random(using: &generator) {
                attributes[name] = Stamp(
                    version: base.version + Int64.random(in: 1..<5, using: &generator), origin: ["n1", "n2", "n3"].randomElement(using: &generator)!)
            }
            var stamps = RecordStamps(base: base, attributes: attributes)
            var record = JSONObject()
            for name in names { record[name] = value(name, stamps.stamp(of: name)) }
            // Additions on top of some values: totals per node, as any copy of them may hold.
            for name in names where Bool.random(using: &generator) {
                var counter = RecordStamps.Counter(base: 0)
                for node in ["n1", "n2"] where Bool.random(using: &generator) {
                    counter.added[node] = Int64.random(in: 0..<3, using: &generator)
                    counter.removed[node] = Int64.random(in: 0..<3, using: &generator)
                }
                stamps.counters[name] = counter
                record[name] = .int(counter.value)
            }
            return (record, stamps)
        }
        func same(_ x: (record: JSONObject, stamps: RecordStamps), _ y: (record: JSONObject, stamps: RecordStamps)) -> Bool {
            x.record == y.record && x.stamps == y.stamps
        }
        for _ in 0..<1000 {
            let (x, y, z) = (copy(), copy(), copy())
            let xy = RecordStamps.merge(x, y)
            #expect(same(xy, RecordStamps.merge(y, x)))
            #expect(same(RecordStamps.merge(xy, z), RecordStamps.merge(x, RecordStamps.merge(y, z))))
            #expect(same(RecordStamps.merge(xy, y), xy))
            #expect(same(RecordStamps.merge(xy, xy), xy))
        }
    }

    @Test func additionsOnSeveralNodesAllCount() {
        let base = Stamp(version: 10, origin: "a")
        let start = RecordStamps.Counter(base: 100)
        let onA = start.adding(-3, on: "a").adding(-1, on: "a")
        let onB = start.adding(-2, on: "b").adding(5, on: "b")
        func copy(_ c: RecordStamps.Counter) -> (record: JSONObject, stamps: RecordStamps) {
            (["stock": .int(c.value)], RecordStamps(base: base, counters: ["stock": c]))
        }
        let merged = RecordStamps.merge(copy(onA), copy(onB))
        #expect(merged.record["stock"] == .int(99))
        #expect(RecordStamps.merge(copy(onB), copy(onA)).record["stock"] == .int(99))
        #expect(RecordStamps.merge(merged, copy(onA)).record["stock"] == .int(99), "merging a copy twice counts it once")
        // A later write of the value starts again; the additions made on the old one go.
        let reset = (record: ["stock": JSONValue.int(50)] as JSONObject, stamps: RecordStamps(base: Stamp(version: 20, origin: "c")))
        #expect(RecordStamps.merge(merged, reset).record["stock"] == .int(50))
        #expect(RecordStamps.merge(reset, merged).record["stock"] == .int(50))
        #expect(RecordStamps(text: merged.stamps.text) == merged.stamps)
    }

    @Test func theStoredFormReadsBack() {
        let stamps = RecordStamps(base: Stamp(version: 7, origin: "node-a"), attributes: ["title": Stamp(version: 9, origin: "node-b")])
        #expect(RecordStamps(text: stamps.text) == stamps)
        #expect(RecordStamps(json: stamps.json) == stamps)
        #expect(RecordStamps(text: "{}") == nil)
        #expect(RecordStamps(text: #"{"base":[1,"a"],"attributes":{"x":"y"}}"#) == nil)
        #expect(RecordStamps(text: "not json") == nil)
    }
}
