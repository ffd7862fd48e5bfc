import Foundation
import Logging
import MicrolithJSON
import MicrolithModules
import MicrolithSchema
import MicrolithStore
import ServiceLifecycle
import Synchronization
import Testing

@testable import MicrolithJobs

let ordersSchema = """
    type Order @table @export {
        id: ID @primaryKey
        total: Int
    }
    """

struct Order: Codable, Sendable, Equatable {
    var id: String
    var total: Int
}

let orders = TableRef<Order>("Order")

struct Note: Codable, Sendable, Equatable {
    var key: String
    var failures: Int = 0
}

/// What the test jobs saw, shared with the test.
final class Journal: Sendable {
    let runs = Mutex<[String: Int]>([:])

    func record(_ key: String) -> Int {
        runs.withLock { r in
            r[key, default: 0] += 1
            return r[key]!
        }
    }

    func count(_ key: String) -> Int { runs.withLock { $0[key] ?? 0 } }
}

enum TestJobs {
    static let note = Job<Note>(module: "test", name: "note", retry: RetryPolicy(maximumAttempts: 3, initialBackoff: .milliseconds(20)))
    static let slow = Job<Note>(module: "test", name: "slow")
}

struct TestModule: Module {
    let name = "test"
    let journal: Journal

    func register(_ builder: inout ModuleBuilder) {
        let journal = journal
        builder.job(TestJobs.note) { note, context in
            let run = journal.record(note.key)
            _ = journal.record("attempt:\(context.job?.attempt ?? 0)")
            if run <= note.failures { throw OperationError.conflict("planned failure \(run) of \(note.key)") }
        }
        builder.job(TestJobs.slow) { note, _ in
            _ = journal.record(note.key)
            try await Task.sleep(for: .seconds(30))
        }
    }
}

/// A store in a fresh folder, its modules, and the clock it reads.
struct JobsFixture {
    let directory: String
    let store: Store
    let modules: Modules
    let journal: Journal
    let clock = TestClock()

    /// - Parameter prepare: called with the new folder before the store opens it.
    init(modules extra: [any Module] = [], prepare: (String) throws -> Void = { _ in }) throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-jobs-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try prepare(directory)
        let clock = self.clock
        store = try Store.open(
            schema: try SchemaParser.parse(ordersSchema, file: "schema.graphql"),
            configuration: StoreConfiguration(directory: directory, durability: .normal, wallClock: { clock.read() }, systemTables: [.jobs]))
        journal = Journal()
        modules = try Modules([TestModule(journal: journal)] + extra, store: store, logger: Logger(label: "test"))
    }

    func advance(_ milliseconds: Int64) { clock.advance(milliseconds) }

    func close() {
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `services` in a service group while `body` runs, then shuts them down gracefully.
    func running(_ services: [any Service], _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(configuration: .init(services: services, logger: Logger(label: "test")))
        let task = Task { try await group.run() }
        do {
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            _ = await task.result
            throw error
        }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Waits (up to `seconds`) until `condition` holds.
    func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}

/// The real time plus an offset the test moves forward.
final class TestClock: Sendable {
    private let offset = Atomic<Int64>(0)
    func read() -> Int64 { HybridLogicalClock.systemMilliseconds() + offset.load(ordering: .relaxed) }
    func advance(_ milliseconds: Int64) { offset.add(milliseconds, ordering: .relaxed) }
}
