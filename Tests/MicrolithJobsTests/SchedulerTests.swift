import Foundation
import Logging
import MicrolithModules
import MicrolithStore
import Synchronization
import Testing

@testable import MicrolithJobs

struct ScheduledModule: Module {
    let name = "sched"
    let missed: MissedRunPolicy
    let journal: Journal

    func register(_ builder: inout ModuleBuilder) {
        let journal = journal
        builder.schedule("tick", .every(.seconds(60)), missed: missed) { run, _ in
            _ = journal.record("tick")
            _ = journal.record("missed:\(run.missedRuns)")
        }
    }
}

@Suite struct SchedulerTests {
    func fixture(_ policy: MissedRunPolicy) throws -> JobsFixture {
        let journal = Journal()
        return try JobsFixture(modules: [ScheduledModule(missed: policy, journal: journal)])
    }

    func pending(_ f: JobsFixture) async throws -> [JobRecord] {
        try await JobQueue(store: f.store).list(database: "data", name: "sched.tick")
    }

    @Test func aDueScheduleEnqueuesOneRunAndMovesOn() async throws {
        let f = try fixture(.runOnce)
        defer { f.close() }
        let scheduler = Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test"))
        try await scheduler.catchUp()
        let first = try #require(try await Scheduler.states(store: f.store).first)
        #expect(first.name == "sched.tick")
        #expect(first.lastRun == nil)
        _ = try await scheduler.fireDue()
        #expect(try await pending(f).isEmpty, "nothing is due yet")
        f.advance(61_000)
        _ = try await scheduler.fireDue()
        _ = try await scheduler.fireDue()
        let runs = try await pending(f)
        #expect(runs.count == 1, "a due time fires once")
        let state = try #require(try await Scheduler.states(store: f.store).first)
        #expect(state.lastRun == first.nextRun)
        #expect(state.nextRun == first.nextRun + 60_000)
    }

    @Test func missedRunsAfterDowntimeRunOnceUnderRunOnce() async throws {
        let f = try fixture(.runOnce)
        defer { f.close() }
        try await Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test")).catchUp()
        f.advance(10 * 60_000 + 500)  // ten due times pass while "down"
        try await Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test")).catchUp()
        let runs = try await pending(f)
        #expect(runs.count == 1)
        #expect(runs.first?.payload.contains("\"missedRuns\":9") == true)
        let state = try #require(try await Scheduler.states(store: f.store).first)
        #expect(state.nextRun > f.clock.read(), "the schedule continues from now")
    }

    @Test func missedRunsAreDroppedUnderSkip() async throws {
        let f = try fixture(.skip)
        defer { f.close() }
        try await Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test")).catchUp()
        f.advance(10 * 60_000 + 500)
        try await Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test")).catchUp()
        #expect(try await pending(f).isEmpty)
        let state = try #require(try await Scheduler.states(store: f.store).first)
        #expect(state.nextRun > f.clock.read())
    }

    @Test func twoSchedulersOnOneStoreFireADueTimeOnce() async throws {
        let f = try fixture(.runOnce)
        defer { f.close() }
        let a = Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "a"))
        let b = Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "b"))
        try await a.catchUp()
        f.advance(61_000)
        async let x = a.fireDue()
        async let y = b.fireDue()
        _ = try await (x, y)
        #expect(try await pending(f).count == 1)
    }

    @Test func aNodeWhoseTurnIsSkipMovesItsSchedulesOnWithoutARun() async throws {
        let f = try fixture(.runOnce)
        defer { f.close() }
        let scheduler = Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test"))
        try await scheduler.catchUp(enqueue: false)
        let first = try #require(try await Scheduler.states(store: f.store).first)
        f.advance(61_000)
        _ = try await scheduler.fireDue(enqueue: false)
        #expect(try await pending(f).isEmpty, "another node fires it")
        let skipped = try #require(try await Scheduler.states(store: f.store).first)
        #expect(skipped.nextRun == first.nextRun + 60_000, "the schedule moved on")
        #expect(skipped.lastRun == nil, "no run is claimed")
        // Missed runs while "down" are not caught up by a node whose turn is skip…
        f.advance(10 * 60_000)
        try await scheduler.catchUp(enqueue: false)
        #expect(try await pending(f).isEmpty)
        // …and a node that takes the lease over goes on from the current time, with one run
        // for the due time that came while it held the lease.
        let now = try #require(try await Scheduler.states(store: f.store).first)
        #expect(now.nextRun > f.clock.read())
        f.advance(now.nextRun - f.clock.read())
        _ = try await scheduler.fireDue(enqueue: true)
        #expect(try await pending(f).count == 1)
    }

    @Test func nothingFiresOrMovesWhileTheTurnIsUndecided() async throws {
        let journal = Journal()
        let f = try JobsFixture(modules: [ScheduledModule(missed: .runOnce, journal: journal)])
        defer { f.close() }
        let turn = Mutex(ScheduleTurn.undecided)
        let scheduler = Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test")) { turn.withLock { $0 } }
        let worker = JobWorker(
            store: f.store, modules: f.modules, configuration: JobConfiguration(pollInterval: .milliseconds(50)), logger: Logger(label: "test"))
        try await f.running([worker, scheduler]) { () async throws in
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await Scheduler.states(store: f.store).isEmpty, "not even registered while undecided")
            turn.withLock { $0 = .fire }
            #expect(try await f.eventually { try await !Scheduler.states(store: f.store).isEmpty })
            f.advance(61_000)
            #expect(try await f.eventually { journal.count("tick") == 1 })
        }
    }

    @Test func scheduledRunsExecuteOnAWorker() async throws {
        let journal = Journal()
        let f = try JobsFixture(modules: [ScheduledModule(missed: .runOnce, journal: journal)])
        defer { f.close() }
        let scheduler = Scheduler(store: f.store, modules: f.modules, logger: Logger(label: "test"))
        let worker = JobWorker(
            store: f.store, modules: f.modules, configuration: JobConfiguration(pollInterval: .milliseconds(50)), logger: Logger(label: "test"))
        try await f.running([worker, scheduler]) { () async throws in
            // Once the scheduler has registered the schedule, move time past its first due time.
            #expect(try await f.eventually { try await !Scheduler.states(store: f.store).isEmpty })
            f.advance(61_000)
            #expect(try await f.eventually { journal.count("tick") == 1 })
        }
        #expect(journal.count("missed:0") == 1)
    }

    @Test func badSchedulesAreRefusedWhenModulesAreBuilt() throws {
        struct Bad: Module {
            let name = "bad"
            func register(_ builder: inout ModuleBuilder) {
                builder.schedule("a", .cron("61 * * * *")) { _, _ in }
                builder.schedule("b", .every(.milliseconds(10))) { _, _ in }
                builder.schedule("c", .cron("* * *")) { _, _ in }
            }
        }
        let error = #expect(throws: ModuleConfigurationError.self) { try Modules([Bad()]) }
        #expect(error?.problems.count == 3)
        #expect(error?.description.contains("minute '61' is outside 0–59") == true)
        #expect(error?.description.contains("at least 1 second") == true)
        #expect(error?.description.contains("has 3 field(s)") == true)
    }
}
