import MicrolithJSON

/// How a process runs background jobs and schedules.
public struct JobConfiguration: Sendable, Equatable {
    /// Jobs run at once by one worker process.
    public var concurrency: Int
    /// How often the queue is checked when no enqueue in this process woke the worker.
    public var pollInterval: Duration
    /// How long a worker holds a job without renewing it; a job whose worker died runs again
    /// once this much time has passed since the worker last renewed it.
    public var lease: Duration
    /// On shutdown, how long running jobs may take to finish before they are cancelled and
    /// given back to the queue (to run again, without counting the cut-short run).
    public var shutdownGrace: Duration
    /// How long finished jobs stay visible at `/_jobs` before they are deleted.
    public var retention: Duration

    public init(
        concurrency: Int = 4, pollInterval: Duration = .milliseconds(500), lease: Duration = .seconds(30),
        shutdownGrace: Duration = .seconds(30), retention: Duration = .seconds(86_400)
    ) {
        self.concurrency = concurrency
        self.pollInterval = pollInterval
        self.lease = lease
        self.shutdownGrace = shutdownGrace
        self.retention = retention
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        d.wholeMilliseconds
    }
}
