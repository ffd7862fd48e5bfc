public import MicrolithJSON
public import NIOCore
import Synchronization

/// A committed record as the cache holds it: decoded, encoded, and tagged; with the Swift value
/// it was last decoded to.
///
/// One instance per record version, shared by every reader: a cache lookup hands out a
/// reference (one retain), not a copy of its five fields.
///
/// A product page reads the same few records as `Product`, `Price` and `Stock` values request
/// after request: decoding them from the cached JSON object again each time was about 5 % of
/// an uncached page's CPU. A record's version never changes, so neither does what it decodes to:
/// ``decodedValue(_:decode:)`` keeps one value (the last type asked for). Values of classes are
/// not kept, as callers could change a shared instance. The value's strings share their storage
/// with the JSON object's.
public final class CachedRecord: Sendable {
    public let id: RecordID
    /// The decoded record.
    public let record: JSONObject
    /// The record's JSON text, ready to write to a socket.
    public let json: ByteBuffer
    /// The strong entity tag, quoted (`"1a2b3c"`), derived from the version.
    public let etag: String
    /// The record's version (a hybrid logical clock timestamp).
    public let version: Int64
    /// The Swift value ``record`` was last decoded to (``TableRef``'s reads and typed queries).
    private let kept = Mutex<(any Sendable)?>(nil)

    public init(id: RecordID, record: JSONObject, json: ByteBuffer, version: Int64) {
        self.id = id
        self.record = record
        self.json = json
        self.version = version
        self.etag = "\"\(String(UInt64(bitPattern: version), radix: 36))\""
    }

    /// The value kept when it is a `T`; otherwise `decode()`'s, then kept (unless `T` is a class).
    public func decodedValue<T: Sendable>(_ type: T.Type, decode: () throws -> T) rethrows -> T {
        if let found = kept.withLock({ $0 }) as? T { return found }
        let value = try decode()
        if !(T.self is AnyObject.Type) { kept.withLock { $0 = value } }
        return value
    }
}

/// What the cache knows about a key: the record, or that there is none.
public enum CacheEntry: Sendable {
    case present(CachedRecord)
    case absent
}

/// A memory-bounded cache of committed records keyed by (table, id).
///
/// Commits update it (``apply(_:)``), so it is never stale after a local commit. Reads that
/// missed fill it through ``fill(table:id:entry:readSequence:)``, which refuses the entry when the
/// key is known by then (a commit put the newer version there) or when entries were dropped since
/// the read began (a commit's entry might have been among them): a slow read can never put back
/// an older version, and commits to other keys do not stop reads from filling the cache.
///
/// Eviction is generational: entries live in a young and an old generation; when the young one
/// outgrows half the budget it becomes the old one and the previous old one is dropped. A hit in
/// the old generation moves the entry back to the young one. Lookups and updates are O(1).
public final class RecordCache: Sendable {
    struct Key: Hashable {
        var table: Int
        var id: RecordID
    }

    struct State {
        var young: [Key: CacheEntry] = [:]
        var old: [Key: CacheEntry] = [:]
        var youngBytes = 0
        var oldBytes = 0
        /// Changes whenever entries are dropped (a generation or a table); fills taken before are refused.
        var dropEpoch: UInt64 = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
        /// Commit counters, each shared by the records whose key hashes to it.
        var changeCounts = [UInt64](repeating: 0, count: RecordCache.changeCounterCount)
    }

    private let state = Mutex(State())
    /// The memory budget in bytes.
    public let limitBytes: Int

    /// How many commit counters records share (a power of two).
    static let changeCounterCount = 4096

    /// A cache holding at most about `limitBytes` of records (a budget of 0 disables caching).
    public init(limitBytes: Int) {
        self.limitBytes = max(0, limitBytes)
    }

    static func cost(_ entry: CacheEntry) -> Int {
        switch entry {
        case .absent: return 48
        case .present(let r): return 160 + r.json.readableBytes * 3
        }
    }

    /// The entry for (table, id), or `nil` when the cache does not know.
    public func lookup(table: Int, id: RecordID) -> CacheEntry? {
        let key = Key(table: table, id: id)
        return state.withLock { s -> CacheEntry? in
            if let e = s.young[key] {
                s.hits &+= 1
                return e
            }
            if let e = s.old.removeValue(forKey: key) {
                s.hits &+= 1
                let c = Self.cost(e)
                s.oldBytes -= c
                insert(&s, key, e, cost: c)
                return e
            }
            s.misses &+= 1
            return nil
        }
    }

    /// The record (table, id) when the cache holds it at exactly `version`; counts no hit or
    /// miss and leaves its place in the eviction order alone (for a reader that has the record's
    /// text already and only saves parsing it).
    public func peek(table: Int, id: RecordID, version: Int64) -> CachedRecord? {
        let key = Key(table: table, id: id)
        let entry = state.withLock { s in s.young[key] ?? s.old[key] }
        guard case .present(let record)? = entry, record.version == version else { return nil }
        return record
    }

    /// The token to pass to ``fill(table:id:entry:readSequence:)``; take it before reading the store.
    public func readSequence() -> UInt64 {
        state.withLock { $0.dropEpoch }
    }

    /// Caches what a read found, unless the key is known by now or entries were dropped since
    /// `readSequence` was taken. (Every commit puts its keys in the cache, so a key still unknown
    /// and nothing dropped means no commit touched it since the read began.)
    public func fill(table: Int, id: RecordID, entry: CacheEntry, readSequence: UInt64) {
        guard limitBytes > 0 else { return }
        let key = Key(table: table, id: id)
        state.withLock { s in
            guard s.dropEpoch == readSequence, s.young[key] == nil, s.old[key] == nil else { return }
            insert(&s, key, entry, cost: Self.cost(entry))
        }
    }

    /// Applies one commit's changes: each key gets its new record, or becomes absent.
    public func apply(_ changes: [(table: Int, id: RecordID, entry: CacheEntry)]) {
        state.withLock { s in
            for change in changes {
                let key = Key(table: change.table, id: change.id)
                if let e = s.young.removeValue(forKey: key) { s.youngBytes -= Self.cost(e) }
                if let e = s.old.removeValue(forKey: key) { s.oldBytes -= Self.cost(e) }
                if limitBytes > 0 { insert(&s, key, change.entry, cost: Self.cost(change.entry)) }
                s.changeCounts[Self.counter(key)] &+= 1
            }
        }
    }

    /// Drops every entry of `table` (after a bulk change such as a migration).
    public func invalidate(table: Int) {
        state.withLock { s in
            s.dropEpoch &+= 1
            for i in s.changeCounts.indices { s.changeCounts[i] &+= 1 }
            for (k, e) in s.young where k.table == table {
                s.young[k] = nil
                s.youngBytes -= Self.cost(e)
            }
            for (k, e) in s.old where k.table == table {
                s.old[k] = nil
                s.oldBytes -= Self.cost(e)
            }
        }
    }

    private func insert(_ s: inout State, _ key: Key, _ entry: CacheEntry, cost: Int) {
        s.young[key] = entry
        s.youngBytes += cost
        if s.youngBytes > limitBytes / 2 {
            s.dropEpoch &+= 1
            s.old = s.young
            s.oldBytes = s.youngBytes
            s.young = [:]
            s.youngBytes = 0
        }
    }

    // MARK: Commit counters

    /// The commit counter of the record (table, id). It grows with every commit applied to the
    /// record, with those of the few other records sharing it, and when a table is dropped; text
    /// rendered from the record while its counter stood still is still what it renders. (A record
    /// of a table that expires records by time may lapse without a commit all the same.)
    public func changeCounter(table: Int, id: RecordID) -> Int {
        Self.counter(Key(table: table, id: id))
    }

    /// The values of `counters` now, in order.
    public func changeCounts(_ counters: [Int]) -> [UInt64] {
        state.withLock { s in counters.map { s.changeCounts[$0] } }
    }

    /// Whether each of `counters` still has the value in `counts` (read by ``changeCounts(_:)``).
    public func unchanged(_ counters: [Int], since counts: [UInt64]) -> Bool {
        state.withLock { s in
            for (i, counter) in counters.enumerated() where s.changeCounts[counter] != counts[i] { return false }
            return true
        }
    }

    private static func counter(_ key: Key) -> Int {
        key.hashValue & (changeCounterCount - 1)
    }

    /// Counters for metrics and tests.
    public struct Statistics: Sendable, Equatable {
        public var entries: Int
        public var bytes: Int
        public var hits: UInt64
        public var misses: UInt64
    }

    /// The current counters.
    public var statistics: Statistics {
        state.withLock { s in
            Statistics(entries: s.young.count + s.old.count, bytes: s.youngBytes + s.oldBytes, hits: s.hits, misses: s.misses)
        }
    }
}
