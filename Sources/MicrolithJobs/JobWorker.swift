import Foundation
public import Logging
import Metrics
public import MicrolithModules
public import MicrolithStore
public import ServiceLifecycle
import Synchronization

/// Runs the background jobs of the modules in this process (the `worker` role).
///
/// It claims due jobs from every database's queue under a lease, runs up to
/// ``JobConfiguration/concurrency`` of them at once, renews the leases while they run, and
/// records each outcome: done, pending again after a backoff, or dead once the attempts are
/// used up. A commit that enqueues a job wakes it at once; otherwise it polls. On graceful
/// shutdown it stops claiming, lets running jobs finish within the grace period, then cancels
/// the rest and gives them back to the queue.
public final class JobWorker: Service, Sendable {
    public let store: Store
    public let modules: Modules
    public let configuration: JobConfiguration
    /// This worker's name in the queue's `owner` column: node, process id and a random part.
    public let owner: String
    private let queue: JobQueue
    private let logger: Logger
    private let wake = WakeSignal()
    private let registrations: [String: JobRegistration]
    private let held = Mutex<[String: [Int64: JobRecord]]>([:])
    private let shuttingDown = Atomic<Bool>(false)

    public init(store: Store, modules: Modules, configuration: JobConfiguration = JobConfiguration(), logger: Logger) {
        self.store = store
        self.modules = modules
        self.configuration = configuration
        self.logger = logger
        self.queue = JobQueue(store: store)
        self.registrations = modules.jobs
        self.owner = "\(store.nodeID.prefix(8))/\(getpid())/\(UInt32.random(in: 0...UInt32.max))"
        let wake = self.wake
        store.listen(JobQueue.enqueuedChannel) { _ in wake.signal() }
    }

    /// The jobs this worker runs, `module.name`, sorted.
    public var jobNames: [String] { registrations.keys.sorted() }

    public func run() async throws {
        guard !registrations.isEmpty else {
            logger.debug("no module running here has jobs; the worker is idle")
            try? await gracefulShutdown()
            return
        }
        logger.info("job worker started", metadata: ["jobs": "\(jobNames.joined(separator: ","))", "owner": "\(owner)"])
        await withGracefulShutdownHandler {
            await loop()
        } onGracefulShutdown: {
            self.shuttingDown.store(true, ordering: .releasing)
            self.wake.signal()
        }
        logger.info("job worker stopped")
    }

    private func loop() async {
        let names = Set(registrations.keys)
        let leaseMs = JobConfiguration.milliseconds(configuration.lease)
        var waiter = wake.makeWaiter()
        var lastRenewal = ContinuousClock.now
        var lastTrim = ContinuousClock.now - .seconds(3600)
        await withDiscardingTaskGroup { group in
            while !shuttingDown.load(ordering: .acquiring) && !Task.isCancelled {
                // Collect finished runs without blocking.
                var claimedAny = false
                for database in store.databaseNames where running() < configuration.concurrency {
                    let jobs: [JobRecord]
                    do {
                        jobs = try await queue.claim(
                            database: database, names: names, limit: configuration.concurrency - running(), owner: owner, leaseMilliseconds: leaseMs)
                    } catch {
                        logger.error("cannot claim jobs", metadata: ["database": "\(database)", "error": "\(error)"])
                        break
                    }
                    for job in jobs {
                        claimedAny = true
                        held.withLock { $0[job.database, default: [:]][job.id] = job }
                        group.addTask { await self.execute(job) }
                    }
                }
                if ContinuousClock.now - lastRenewal >= configuration.lease / 3 {
                    await renewLeases(leaseMs)
                    lastRenewal = .now
                }
                if ContinuousClock.now - lastTrim >= .seconds(60) {
                    await trim()
                    lastTrim = .now
                }
                // Wait for a wake-up (an enqueue, a finished run, shutdown) or the poll.
                if claimedAny && running() < configuration.concurrency { continue }
                await waiter.wait(upTo: min(configuration.pollInterval, configuration.lease / 3))
            }
            // Shutting down: let running jobs finish within the grace period, then cancel them.
            if running() > 0 {
                logger.info("waiting for \(running()) running job(s) to finish", metadata: ["grace": "\(configuration.shutdownGrace)"])
                let deadline = ContinuousClock.now + configuration.shutdownGrace
                while running() > 0 && ContinuousClock.now < deadline && !Task.isCancelled {
                    await renewLeasesIfDue(&lastRenewal, leaseMs)
                    await waiter.wait(upTo: min(.milliseconds(100), deadline - .now))
                }
                if running() > 0 {
                    logger.warning("cancelling \(running()) job(s) still running after the grace period; they will run again")
                    group.cancelAll()
                }
            }
        }
    }

    /// Jobs running now.
    private func running() -> Int { held.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    private func renewLeasesIfDue(_ last: inout ContinuousClock.Instant, _ leaseMs: Int64) async {
        if ContinuousClock.now - last >= configuration.lease / 3 {
            await renewLeases(leaseMs)
            last = .now
        }
    }

    private func renewLeases(_ leaseMs: Int64) async {
        let byDatabase = held.withLock { $0.mapValues { Array($0.keys) } }
        for (database, ids) in byDatabase where !ids.isEmpty {
            do {
                try await queue.extendLeases(database: database, ids: ids, owner: owner, leaseMilliseconds: leaseMs)
            } catch {
                logger.error("cannot renew job leases", metadata: ["error": "\(error)"])
            }
        }
    }

    private func trim() async {
        let cutoff = store.configuration.wallClock() - JobConfiguration.milliseconds(configuration.retention)
        for database in store.databaseNames {
            do {
                let n = try await queue.trimDone(database: database, before: cutoff)
                if n > 0 { logger.debug("deleted \(n) finished job(s)", metadata: ["database": "\(database)"]) }
            } catch {
                logger.error("cannot delete finished jobs", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Runs one claimed job and records the outcome.
    private func execute(_ job: JobRecord) async {
        defer {
            held.withLock { _ = $0[job.database]?.removeValue(forKey: job.id) }
            wake.signal()
        }
        guard let registration = registrations[job.name] else { return }
        var log = logger
        log[metadataKey: "job.id"] = "\(job.database):\(job.id)"
        log[metadataKey: "job.name"] = "\(job.name)"
        log[metadataKey: "job.attempt"] = "\(job.attempts)"
        let context = OperationContext(
            modules: modules, operation: job.name, logger: log,
            job: JobRun(id: job.id, name: job.name, attempt: job.attempts, database: job.database))
        let started = ContinuousClock.now
        do {
            try await registration.run(Data(job.payload.utf8), context)
            try await queue.complete(job)
            Counter(label: "microlith_job_runs_total", dimensions: [("job", job.name), ("outcome", "done")]).increment()
            log.debug("job done", metadata: ["duration": "\(ContinuousClock.now - started)"])
        } catch {
            if Task.isCancelled {
                // Cut short by shutdown: not the job's failure.
                do { try await queue.release(job) } catch { log.error("cannot give back a cancelled job", metadata: ["error": "\(error)"]) }
                return
            }
            let message = (error as? OperationError)?.description ?? "\(error)"
            let wait = registration.retry.backoffMilliseconds(afterAttempt: job.attempts)
            do {
                let state = try await queue.fail(job, message: message, retryAfter: wait)
                Counter(label: "microlith_job_runs_total", dimensions: [("job", job.name), ("outcome", state == .dead ? "dead" : "failed")])
                    .increment()
                if state == .dead {
                    log.error("job failed for the last time; it is dead", metadata: ["error": "\(message)"])
                } else {
                    log.warning("job failed; it will run again", metadata: ["error": "\(message)", "retryInMs": "\(wait)"])
                }
            } catch {
                log.error("cannot record a job failure", metadata: ["error": "\(error)"])
            }
        }
    }
}
