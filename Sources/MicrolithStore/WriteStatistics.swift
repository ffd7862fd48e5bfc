import Synchronization

/// Counters of one database's group commits, for metrics: how many commits, how many writes
/// they carried, and histograms of batch sizes and of commit times.
public struct WriteStatistics: Sendable, Equatable {
    /// The upper bounds of the batch-size buckets (writes per commit).
    public static let batchBounds: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    /// The upper bounds of the commit-time buckets, in seconds.
    public static let commitBounds: [Double] = [0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

    /// Commits made.
    public var commits: UInt64 = 0
    /// Writes (jobs) they carried, including those that failed and were left out.
    public var writes: UInt64 = 0
    /// Batches run without savepoints (every write replayable) that were rolled back and run
    /// again with a savepoint per write, because one write failed after changing rows or in SQLite.
    public var replays: UInt64 = 0
    /// Writes run in a savepoint of their own: those of batches holding a write that is not
    /// replayable (a module's transaction, a write with hooks), and those of replayed batches.
    public var savepointWrites: UInt64 = 0
    /// Per bucket of ``batchBounds``, the commits of at most that many writes (not cumulative);
    /// the last element counts larger ones.
    public var batchBuckets = [UInt64](repeating: 0, count: batchBounds.count + 1)
    /// Per bucket of ``commitBounds``, the commits whose `COMMIT` (writing the log and, with full
    /// durability, the fsync) took at most that long (not cumulative); the last counts slower ones.
    public var commitBuckets = [UInt64](repeating: 0, count: commitBounds.count + 1)
    /// The sum of the commit times, in seconds.
    public var commitSeconds: Double = 0

    public init() {}

    /// Counts a commit of `batch` writes whose `COMMIT` took `commit`, run with a savepoint each
    /// or not (`savepoints`).
    mutating func record(batch: Int, commit: Duration, savepoints: Bool = false) {
        commits &+= 1
        writes &+= UInt64(batch)
        if savepoints { savepointWrites &+= UInt64(batch) }
        batchBuckets[Self.bucket(Double(batch), Self.batchBounds)] &+= 1
        let seconds = Double(commit.components.seconds) + Double(commit.components.attoseconds) / 1e18
        commitSeconds += seconds
        commitBuckets[Self.bucket(seconds, Self.commitBounds)] &+= 1
    }

    static func bucket(_ value: Double, _ bounds: [Double]) -> Int {
        bounds.firstIndex { value <= $0 } ?? bounds.count
    }
}

extension Store {
    /// The group-commit counters of each database since the store opened, by database name
    /// (empty for a read-only store).
    public func writeStatistics() -> [String: WriteStatistics] {
        var found: [String: WriteStatistics] = [:]
        for (name, handle) in databases {
            if let writer = handle.writerBox.withLock({ $0 }) { found[name] = writer.statistics.withLock { $0 } }
        }
        return found
    }
}
