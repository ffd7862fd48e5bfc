import MicrolithJSON

/// When a scheduled task runs: on a cron expression (UTC) or at a fixed interval.
public enum Schedule: Sendable, Hashable, CustomStringConvertible {
    /// Every minute matching the expression, e.g. `.cron("0 3 * * *")` at 03:00 UTC daily.
    case cron(String)
    /// Every `interval`, counted from the previous run's scheduled time.
    case every(Duration)

    public var description: String {
        switch self {
        case .cron(let text): return "cron \(text)"
        case .every(let d): return "every \(d)"
        }
    }
}

/// What a schedule does about runs it missed while no process with the `cron` role was up.
///
/// Either way missed runs never pile up: at most one run happens on start, then the schedule
/// continues from the current time.
public enum MissedRunPolicy: String, Sendable, Hashable {
    /// Run once at start when one or more runs were missed, then continue (the default: a
    /// nightly report missed during downtime is still produced).
    case runOnce
    /// Forget missed runs; the next run is the next one due after now.
    case skip
}

/// A scheduled task of a module: when it runs and what it does about missed runs.
///
/// When a run is due the `cron` process enqueues it as a background job (`module.name`) in
/// the same transaction that advances the schedule, so each due run fires exactly once even
/// with several `cron` processes on one store, and runs at least once (with the job's retries)
/// on a process with the `worker` role.
package struct ScheduleRegistration: Sendable {
    package let module: String
    package let name: String
    package let schedule: Schedule
    package let cron: CronExpression?
    package let intervalMilliseconds: Int64?
    package let missed: MissedRunPolicy
    package let retry: RetryPolicy

    package var qualifiedName: String { "\(module).\(name)" }

    /// The first due time after `milliseconds`.
    package func next(after milliseconds: Int64) -> Int64? {
        if let cron { return cron.next(after: milliseconds) }
        return milliseconds + (intervalMilliseconds ?? 60_000)
    }
}

/// The input of the job a schedule enqueues: the time the run was due.
public struct ScheduledRun: Codable, Sendable, Hashable {
    /// When the run was due, in milliseconds since 1970 (UTC).
    public var dueAt: Int64
    /// How many due times were missed before this one (with ``MissedRunPolicy/runOnce``).
    public var missedRuns: Int

    public init(dueAt: Int64, missedRuns: Int) {
        self.dueAt = dueAt
        self.missedRuns = missedRuns
    }
}

extension ModuleBuilder {
    /// Runs `body` on `schedule`, on a process with the `worker` role, as planned by a process
    /// with the `cron` role. `body` gets the run's due time; a throw is retried per `retry`.
    public mutating func schedule(
        _ name: String, _ schedule: Schedule, missed: MissedRunPolicy = .runOnce, retry: RetryPolicy = RetryPolicy(maximumAttempts: 3),
        _ body: @escaping @Sendable (ScheduledRun, OperationContext) async throws -> Void
    ) {
        var cron: CronExpression?
        var interval: Int64?
        switch schedule {
        case .cron(let text):
            do {
                cron = try CronExpression(text)
            } catch {
                problems.append("schedule \(module).\(name): \(error)")
                return
            }
        case .every(let d):
            let ms = d.wholeMilliseconds
            guard ms >= 1000 else {
                problems.append("schedule \(module).\(name): the interval must be at least 1 second, got \(d)")
                return
            }
            interval = ms
        }
        guard !schedules.contains(where: { $0.name == name }) else {
            problems.append("schedule \(module).\(name) is declared twice")
            return
        }
        let registration = ScheduleRegistration(
            module: module, name: name, schedule: schedule, cron: cron, intervalMilliseconds: interval, missed: missed, retry: retry)
        schedules.append(registration)
        job(Job<ScheduledRun>(module: module, name: name, retry: retry), body)
    }
}
