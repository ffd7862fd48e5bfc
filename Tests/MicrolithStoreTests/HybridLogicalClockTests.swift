import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import MicrolithTestSupport
import Testing

@Suite("HybridLogicalClock")
struct HybridLogicalClockTests {
    @Test func followsTheWallClock() {
        let wall = ManualClock(1_700_000_000_000)
        let clock = HybridLogicalClock(wallClock: { wall.read() })
        let first = clock.now()
        #expect(first == 1_700_000_000_000 << 16)
        #expect(HybridLogicalClock.milliseconds(of: first) == 1_700_000_000_000)
        wall.set(1_700_000_000_500)
        #expect(clock.now() == 1_700_000_000_500 << 16)
    }

    @Test func countsWithinOneMillisecond() {
        let wall = ManualClock(1000)
        let clock = HybridLogicalClock(wallClock: { wall.read() })
        let stamps = (0..<100).map { _ in clock.now() }
        #expect(stamps == (0..<100).map { (1000 << 16) + Int64($0) })
        #expect(stamps.allSatisfy { HybridLogicalClock.milliseconds(of: $0) == 1000 })
    }

    @Test func neverGoesBackwardsWhenTheWallClockDoes() {
        let wall = ManualClock(5000)
        let clock = HybridLogicalClock(wallClock: { wall.read() })
        let before = clock.now()
        wall.set(4000)
        let after = clock.now()
        #expect(after > before)
        #expect(HybridLogicalClock.milliseconds(of: after) == 5000)
        wall.set(6000)
        #expect(clock.now() == 6000 << 16)
    }

    @Test func borrowsTheNextMillisecondWhenTheCounterOverflows() {
        let wall = ManualClock(1)
        let clock = HybridLogicalClock(wallClock: { wall.read() })
        var last: Int64 = 0
        var increasing = true
        for _ in 0..<70_000 {
            let next = clock.now()
            if next <= last { increasing = false }
            last = next
        }
        #expect(increasing)
        #expect(HybridLogicalClock.milliseconds(of: last) == 2)
    }

    @Test func observedTimestampsPushTheClockForward() {
        let wall = ManualClock(1000)
        let clock = HybridLogicalClock(wallClock: { wall.read() })
        let remote: Int64 = (9000 << 16) + 7
        clock.observe(remote)
        let next = clock.now()
        #expect(next == remote + 1)
        clock.observe(5)
        #expect(clock.now() == remote + 2, "an older timestamp changes nothing")
    }

    @Test func concurrentCallersGetDistinctIncreasingStamps() async {
        let clock = HybridLogicalClock()
        let batches = await withTaskGroup(of: [Int64].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<2000).map { _ in clock.now() } }
            }
            var all: [[Int64]] = []
            for await batch in group { all.append(batch) }
            return all
        }
        for batch in batches { #expect(zip(batch, batch.dropFirst()).allSatisfy { $0 < $1 }) }
        let all = batches.flatMap { $0 }
        #expect(Set(all).count == all.count)
    }

    @Test func storeVersionsIncrease() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        var last: Int64 = 0
        for i in 0..<50 {
            let version = try await store.put(todo, .string("t\(i % 5)"), ["title": "x"]).version
            #expect(version > last)
            last = version
        }
        #expect(store.clock.now() > last)
    }
}

@Suite("RecordID")
struct RecordIDTests {
    @Test func fromURLText() {
        #expect(RecordID(text: "42", type: .int) == .int(42))
        #expect(RecordID(text: "-7", type: .int) == .int(-7))
        #expect(RecordID(text: "3000000000", type: .int) == nil)
        #expect(RecordID(text: "3000000000", type: .long) == .int(3_000_000_000))
        #expect(RecordID(text: "4.0", type: .long) == nil)
        #expect(RecordID(text: "abc", type: .int) == nil)
        #expect(RecordID(text: "42", type: .id) == .string("42"))
        #expect(RecordID(text: "a b", type: .string) == .string("a b"))
        #expect(RecordID(text: "", type: .id) == nil)
    }

    @Test func fromJSON() {
        #expect(RecordID(json: 5, type: .int) == .int(5))
        #expect(RecordID(json: .int(Int64(Int32.max) + 1), type: .int) == nil)
        #expect(RecordID(json: .int(Int64(Int32.max) + 1), type: .long) == .int(Int64(Int32.max) + 1))
        #expect(RecordID(json: "5", type: .int) == nil)
        #expect(RecordID(json: "k", type: .id) == .string("k"))
        #expect(RecordID(json: 5, type: .id) == nil, "ID primary keys are strings")
        #expect(RecordID(json: "", type: .string) == nil)
        #expect(RecordID(json: nil, type: .string) == nil)
    }

    @Test func orderAndText() {
        #expect(RecordID.int(2) < .int(10))
        #expect(RecordID.string("10") < .string("2"))
        #expect(RecordID.string("z") < .string("é"), "strings order by UTF-8 bytes")
        #expect(RecordID.int(99) < .string("0"))
        #expect(RecordID.int(-3).description == "-3")
        #expect(RecordID.string("a/b").description == "a/b")
        #expect(RecordID.int(4).jsonValue == .int(4))
        #expect(RecordID.string("x").jsonValue == "x")
    }
}
