import GRDB
import MicrolithJSON
import MicrolithSchema

/// What a table holds, summed up per bucket of keys, so that two nodes can tell which parts of a
/// table differ without sending the rows: each settled record (its key and its content, with
/// object members in name order) and each settled tombstone (its key) adds a 64-bit hash to its
/// key's bucket. Equal content gives equal digests on every node, whatever the order of writes
/// and whatever local versions the rows took.
///
/// Only rows written before a cutoff (a hybrid logical clock version) count, so writes still on
/// their way between nodes do not make digests differ.
public struct TableDigest: Sendable, Equatable {
    /// Per bucket, the wrapping sum of its rows' hashes.
    public var buckets: [UInt64]
    /// Records counted.
    public var records = 0
    /// Tombstones counted.
    public var tombstones = 0

    public init(buckets: [UInt64], records: Int = 0, tombstones: Int = 0) {
        self.buckets = buckets
        self.records = records
        self.tombstones = tombstones
    }

    /// The buckets whose sums differ from `other`'s (all of them when the bucket counts differ).
    public func differingBuckets(from other: TableDigest) -> [Int] {
        guard buckets.count == other.buckets.count else { return Array(0..<max(buckets.count, other.buckets.count)) }
        return buckets.indices.filter { buckets[$0] != other.buckets[$0] }
    }

    /// A bucket's sum as 16 hexadecimal digits (JSON numbers cannot carry 64 unsigned bits).
    public static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// A bucket's sum from ``hex(_:)``.
    public static func bucketSum(hex: String) -> UInt64? {
        hex.utf8.count == 16 ? UInt64(hex, radix: 16) : nil
    }

    /// The bucket (of `count`) that `id` falls in.
    public static func bucket(of id: RecordID, count: Int) -> Int {
        guard count > 1 else { return 0 }
        var hash = Hash()
        hash.add(id)
        return Int(hash.value % UInt64(count))
    }

    /// The hash a record adds to its bucket.
    static func recordHash(id: RecordID, record: JSONValue) -> UInt64 {
        var hash = Hash()
        hash.add(id)
        hash.add(byte: 0x01)
        hash.add(bytes: JSONWriter.encode(canonical(record)))
        return hash.value
    }

    /// The hash a tombstone adds to its bucket.
    static func tombstoneHash(id: RecordID) -> UInt64 {
        var hash = Hash()
        hash.add(id)
        hash.add(byte: 0x02)
        return hash.value
    }

    /// `value` with every object's members in name order.
    static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let o):
            var sorted = JSONObject()
            for key in o.keys.sorted() { sorted[key] = o[key].map(canonical) }
            return .object(sorted)
        case .array(let items):
            return .array(items.map(canonical))
        default:
            return value
        }
    }

    /// FNV-1a over the bytes, finished with a 64-bit mix: the same on every node and every run
    /// (Swift's `Hasher` is seeded per process).
    struct Hash {
        private var state: UInt64 = 0xcbf2_9ce4_8422_2325

        mutating func add(byte: UInt8) {
            state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }

        mutating func add(bytes: some Sequence<UInt8>) {
            for byte in bytes { add(byte: byte) }
        }

        mutating func add(_ id: RecordID) {
            switch id {
            case .string(let s):
                add(byte: 0x73)
                add(bytes: s.utf8)
            case .int(let i):
                add(byte: 0x69)
                add(bytes: String(i).utf8)
            }
        }

        var value: UInt64 {
            var z = state &+ 0x9e37_79b9_7f4a_7c15
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }
}

extension Store {
    /// The digest of `table` in `buckets` buckets, over records and tombstones whose version is
    /// below `cutoff` (a hybrid logical clock version; `nil`: every row). It reads the whole
    /// table in one read transaction, so it runs beside writes but costs a table scan.
    ///
    /// A tombstone counts only where no record holds its key (a delete and a concurrent put
    /// leave a record on every node but a tombstone on some), and only from `tombstonesSince`
    /// on (a version): each node trims tombstones on its own timer, so old ones are left out.
    public func digest(
        _ table: TableLayout, buckets: Int, before cutoff: Int64? = nil, tombstonesSince: Int64? = nil
    ) async throws
        -> TableDigest
    {
        let count = min(max(buckets, 1), 4096)
        let limit = cutoff ?? Int64.max
        let since = tombstonesSince ?? Int64.min
        let name = table.name
        return try await read(database: table.definition.database) { db in
            var digest = TableDigest(buckets: Array(repeating: 0, count: count))
            let records = try Row.fetchCursor(db, sql: "SELECT id, data FROM \"\(table.sqlName)\" WHERE version < ?", arguments: [limit])
            while let row = try records.next() {
                guard let id = TableLayout.recordID(row[0]) else { continue }
                var text: String = row[1]
                let value = try text.withUTF8 { bytes in try JSONParser.parse(bytes) }
                let bucket = TableDigest.bucket(of: id, count: count)
                digest.buckets[bucket] &+= TableDigest.recordHash(id: id, record: value)
                digest.records += 1
            }
            let tombstones = try Row.fetchCursor(
                db,
                sql: """
                    SELECT t.id FROM _microlith_tombstones t WHERE t.tbl = ? AND t.version < ? AND t.version >= ?
                    AND NOT EXISTS (SELECT 1 FROM "\(table.sqlName)" r WHERE r.id = t.id)
                    """, arguments: [name, limit, since])
            while let row = try tombstones.next() {
                guard let id = TableLayout.recordID(row[0]) else { continue }
                digest.buckets[TableDigest.bucket(of: id, count: count)] &+= TableDigest.tombstoneHash(id: id)
                digest.tombstones += 1
            }
            return digest
        }
    }
}
