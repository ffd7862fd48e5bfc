public import MicrolithStore

/// What a table URL or topic names, read once by ``TableDirectory`` and passed on to the
/// operation: the table, and a record, a key prefix or the whole collection.
///
/// The grammar is the same on every door. As a URL path (REST, the event-loop fast path,
/// Server-Sent Events, WebSocket):
///
/// | path | names |
/// |---|---|
/// | `/T`, `/T/` | the collection (with a query when `?…` follows) |
/// | `/T/id` | record `id`; everything after the table's `/` is the key, `/` included |
/// | `/T/prefix/` | the records whose key starts with `prefix/` (a path ending in `/`) |
///
/// The table segment is an export name, compared as sent; the key (or prefix) is
/// percent-decoded strictly (``PathSegment``). As an MQTT topic the same rules hold without the
/// leading `/` and without decoding (a topic is UTF-8 text), and a topic names records only:
/// `T/id`, with everything after the first `/` as the key.
public struct TableTarget: Sendable {
    /// What part of the table is named.
    public enum Selection: Sendable, Equatable {
        /// Every record (and, with ``TableTarget/query``, the records the query selects).
        case collection
        /// One record.
        case record(RecordID)
        /// The records whose string key starts with this text (decoded; it ends with `/`).
        case prefix(String)
    }

    /// The table.
    public let table: TableLayout
    /// Its export name: how the URL or topic spells it.
    public let name: String
    /// The record, prefix or collection.
    public let selection: Selection
    /// The key or prefix as sent (before decoding), for messages; empty for a collection.
    public let spelledKey: Substring
    /// The query string after `?` (raw, not decoded); `nil` when there is none or it is empty.
    public let query: Substring?

    /// The record's key, when one record is named.
    public var recordID: RecordID? {
        if case .record(let id) = selection { return id }
        return nil
    }

    /// How the target reads in messages: `/T/`, `/T/id` or `/T/prefix/`, as sent.
    public var path: String { "/\(name)/\(spelledKey)" }
}
