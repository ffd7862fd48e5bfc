import Foundation
public import NIOCore

/// What a node tells an origin after it committed a batch of the origin's changes: how far it
/// got in the origin's log of a database, and the spans it is still missing (gaps being
/// repaired). Sent on `<appliedPrefix>.<origin>.<database>` after every batch, so a write made
/// with `X-Replicate-To` can wait for other nodes (``PeerProgress``).
public struct AppliedNotice: Sendable, Equatable, Codable {
    /// The node that applied the changes.
    public var node: String
    /// The database.
    public var database: String
    /// The highest sequence of the origin's log applied.
    public var through: Int64
    /// Spans `(after, upto]` below `through` that are not applied: entries that have not arrived
    /// yet (gaps being repaired), and changes parked there (one entry each).
    public var gaps: [[Int64]]

    public init(node: String, database: String, through: Int64, gaps: [(after: Int64, upto: Int64)] = []) {
        self.node = node
        self.database = database
        self.through = through
        self.gaps = gaps.map { [$0.after, $0.upto] }
    }

    /// Whether the entry `sequence` of the origin's log was applied.
    public func covers(_ sequence: Int64) -> Bool {
        sequence <= through && !gaps.contains { $0.count == 2 && $0[0] < sequence && sequence <= $0[1] }
    }

    public var json: ByteBuffer {
        ByteBuffer(bytes: (try? JSONEncoder().encode(self)) ?? Data())
    }

    public init(json: ByteBuffer) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(json.readableBytesView))
    }
}
