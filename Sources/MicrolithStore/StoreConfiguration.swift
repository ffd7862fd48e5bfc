/// How the store keeps data.
public struct StoreConfiguration: Sendable {
    /// When a write counts as durable.
    public enum Durability: String, Sendable, CaseIterable {
        /// Every commit is fsynced before it is acknowledged (SQLite `synchronous=FULL`).
        case full
        /// Commits reach the WAL without an fsync; a power loss may drop the latest ones,
        /// a crashed process never does (SQLite `synchronous=NORMAL`).
        case normal
    }

    /// The folder holding one SQLite file per database.
    public var directory: String
    /// `full` by default.
    public var durability: Durability
    /// The record cache budget in bytes (64 MiB by default; 0 disables it).
    public var cacheBytes: Int
    /// This node's name in versions and the change log; generated and kept in the data folder when `nil`.
    public var nodeID: String?
    /// How long change-log entries are kept (24 hours by default).
    public var changeLogRetentionSeconds: Int
    /// The most writes one group commit holds.
    public var maximumBatch: Int
    /// How long a write waits for the database's write lock when another connection (another
    /// process) holds it, before it fails with ``StoreError/Code/busy`` (2000 ms by default).
    public var busyTimeoutMilliseconds: Int
    /// Milliseconds since 1970: the wall clock behind versions, timestamps, expiration and
    /// change-log retention (the system clock; tests may pass their own).
    public var wallClock: @Sendable () -> Int64
    /// Tables other libraries keep in every database (the job queue's, for one), created and
    /// migrated when the store opens; none by default.
    public var systemTables: [SystemTables]
    /// How much of each database file SQLite reads through a memory map instead of `pread`
    /// (SQLite `mmap_size`; 1 GiB by default, 0 turns it off). This is address space, not memory:
    /// the pages live in the operating system's page cache, shared by every connection, so a read
    /// that misses a connection's own page cache costs a memory access rather than a system call.
    /// Writes still go through `write`. SQLite caps it at its compile-time maximum.
    public var memoryMapBytes: Int
    /// Whether the change-log trim keeps entries a replication publisher has not yet published
    /// (those after the position it records, ``Store/publishedChangeKey``, or all of them before
    /// it recorded one), however old: a write accepted while the transport is away is
    /// published later, never trimmed first. Off by default.
    public var keepUnpublishedChanges = false
    /// Whether this store is one node of a cluster (replication on). Then a local delete leaves a
    /// tombstone (the deleted record's key and stamp), so a replicated write made before the
    /// delete, arriving late, does not bring the record back; and an addition
    /// (``WriteTransaction/add(_:id:attribute:amount:)``) is kept as a per-node counter, so
    /// additions on several nodes all count. A node on its own needs neither and writes plain
    /// values. Off by default; replication turns it on. (Deletes that come from other nodes
    /// always leave a tombstone.)
    public var replicating = false
    /// How long tombstones are kept (7 days by default). Set it to at least the longest time a
    /// node may be cut off from the others.
    public var tombstoneRetentionSeconds = 7 * 86_400
    /// Whether the store only reads: its files are opened read-only, nothing is created or
    /// migrated (the data folder must hold every database, migrated to this schema, else the open
    /// fails naming the difference), and every write fails with ``StoreError/Code/closed``. For
    /// tools that look at a folder a server may be serving. Off by default.
    public var readOnly = false
    /// Whether the store holds its data folder alone (``DataFolderLock/Mode/exclusive``): the open
    /// fails while a server or another command has the folder open, and nothing else opens it
    /// meanwhile. For tools whose writes a running server would not see (its cache). Off by default.
    public var exclusiveAccess = false

    public init(
        directory: String,
        durability: Durability = .full,
        cacheBytes: Int = 64 << 20,
        nodeID: String? = nil,
        changeLogRetentionSeconds: Int = 86_400,
        maximumBatch: Int = 512,
        busyTimeoutMilliseconds: Int = 2000,
        wallClock: @escaping @Sendable () -> Int64 = HybridLogicalClock.systemMilliseconds,
        systemTables: [SystemTables] = [],
        memoryMapBytes: Int = 1 << 30
    ) {
        self.directory = directory
        self.durability = durability
        self.cacheBytes = cacheBytes
        self.nodeID = nodeID
        self.changeLogRetentionSeconds = changeLogRetentionSeconds
        self.maximumBatch = maximumBatch
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.wallClock = wallClock
        self.systemTables = systemTables
        self.memoryMapBytes = max(0, memoryMapBytes)
    }
}
