import Logging
import Testing

@testable import MicrolithReplication

/// What a write with `X-Replicate-To` waits on: the other nodes' notices of what they applied.
@Suite(.timeLimit(.minutes(1))) struct PeerProgressTests {
    func progress() -> PeerProgress { PeerProgress(node: "a", stream: ReplicationStream(), logger: Logger(label: "test")) }

    @Test func aNoticeCoversWhatItAppliedButNotItsGaps() throws {
        let notice = AppliedNotice(node: "b", database: "data", through: 10, gaps: [(after: 3, upto: 5)])
        #expect(notice.covers(1) && notice.covers(3) && notice.covers(6) && notice.covers(10))
        #expect(!notice.covers(4) && !notice.covers(5) && !notice.covers(11))
        #expect(try AppliedNotice(json: notice.json) == notice)
    }

    @Test func waitsUntilEnoughNodesAppliedTheEntry() async throws {
        let p = progress()
        p.record(AppliedNotice(node: "b", database: "data", through: 4))
        #expect(await p.wait(database: "data", sequence: 4, peers: 1, timeout: .seconds(5)) == 1, "already there: no wait")
        async let waited = p.wait(database: "data", sequence: 7, peers: 2, timeout: .seconds(20))
        try await Task.sleep(for: .milliseconds(50))
        p.record(AppliedNotice(node: "b", database: "data", through: 7))
        p.record(AppliedNotice(node: "c", database: "other", through: 9))  // another database
        p.record(AppliedNotice(node: "a", database: "data", through: 9))  // this node itself
        try await Task.sleep(for: .milliseconds(50))
        p.record(AppliedNotice(node: "c", database: "data", through: 8))
        let started = ContinuousClock.now
        #expect(await waited == 2)
        #expect(ContinuousClock.now - started < .seconds(5), "woken by the notice, not by the time")
        #expect(p.nodes(applied: 7, database: "data") == ["b", "c"])
    }

    @Test func givesUpAfterTheTimeoutWithHowManyHad() async {
        let p = progress()
        p.record(AppliedNotice(node: "b", database: "data", through: 7))
        p.record(AppliedNotice(node: "c", database: "data", through: 9, gaps: [(after: 6, upto: 7)]))
        let started = ContinuousClock.now
        #expect(await p.wait(database: "data", sequence: 7, peers: 2, timeout: .milliseconds(200)) == 1, "c still misses 7")
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        // An older notice arriving late does not move a node back.
        p.record(AppliedNotice(node: "b", database: "data", through: 3))
        #expect(p.nodes(applied: 7, database: "data") == ["b"])
        #expect(await p.wait(database: "data", sequence: 1, peers: 2, timeout: .zero) == 2)
    }
}
