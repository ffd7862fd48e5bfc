package import Foundation
import MicrolithJSON

/// A background job a module offers: a durable unit of work with a `Codable` input.
///
/// ```swift
/// enum Mail {
///     static let receipt = Job<Receipt>(module: "mail", name: "receipt", retry: .init(maximumAttempts: 8))
/// }
/// // in a write transaction: the job exists if and only if the transaction commits
/// try txn.enqueue(Mail.receipt, Receipt(order: id))
/// ```
///
/// A module declares its jobs here; the queue that holds them (`WriteTransaction.enqueue`, the
/// workers, the scheduler) is `MicrolithJobs`.
///
/// Jobs run at least once: a job whose process dies mid-run runs again once its lease expires.
/// Make them idempotent.
public struct Job<Input: Codable & Sendable>: Sendable, Hashable {
    /// The module that implements the job.
    public let module: String
    /// The job's name within its module.
    public let name: String
    /// How failures are retried.
    public let retry: RetryPolicy

    /// A job `name` of `module` (URL path segments: letters, digits, `-`, `_`).
    public init(module: String, name: String, retry: RetryPolicy = RetryPolicy()) {
        self.module = module
        self.name = name
        self.retry = retry
    }

    /// `module.name`: how the queue and `/_jobs` name the job.
    public var qualifiedName: String { "\(module).\(name)" }
}

/// How a failing job is retried: up to ``maximumAttempts`` runs in all, waiting
/// `initialBackoff × multiplier^(attempt-1)` (at most ``maximumBackoff``) between them; after
/// the last failure the job is dead (kept, visible at `/_jobs?state=dead`, retried by hand).
public struct RetryPolicy: Sendable, Hashable {
    /// Runs in all, the first included (≥ 1).
    public var maximumAttempts: Int
    /// The wait after the first failure.
    public var initialBackoff: Duration
    /// The factor each further wait grows by.
    public var multiplier: Double
    /// The longest wait.
    public var maximumBackoff: Duration

    public init(
        maximumAttempts: Int = 5, initialBackoff: Duration = .seconds(1), multiplier: Double = 2, maximumBackoff: Duration = .seconds(300)
    ) {
        self.maximumAttempts = max(1, maximumAttempts)
        self.initialBackoff = initialBackoff
        self.multiplier = max(1, multiplier)
        self.maximumBackoff = maximumBackoff
    }

    /// The wait after failed attempt number `attempt` (1-based), in milliseconds.
    public func backoffMilliseconds(afterAttempt attempt: Int) -> Int64 {
        let first = initialBackoff.milliseconds
        let cap = maximumBackoff.milliseconds
        let wait = first * pow(multiplier, Double(max(0, attempt - 1)))
        return Int64(min(cap, wait).rounded())
    }
}

/// The run of a job that a context belongs to.
public struct JobRun: Sendable {
    /// The job's id in the queue (`/_jobs/{id}`).
    public var id: Int64
    /// `module.name`.
    public var name: String
    /// This run's number: 1 for the first run, 2 for the first retry, ...
    public var attempt: Int
    /// The database whose queue holds the job.
    public var database: String

    public init(id: Int64, name: String, attempt: Int, database: String) {
        self.id = id
        self.name = name
        self.attempt = attempt
        self.database = database
    }
}

/// A job implemented by a module, with its input decoded from the stored JSON.
package struct JobRegistration: Sendable {
    package let name: String
    package let retry: RetryPolicy
    package let run: @Sendable (Data, OperationContext) async throws -> Void
}
