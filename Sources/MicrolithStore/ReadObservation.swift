public import MicrolithJSON

/// A condition on records, as a cache of derived answers needs it: given a record, could it be
/// one of the answers? (`MicrolithQuery` gives one per query filter.)
public protocol RecordPredicate: Sendable {
    /// Whether `record` may belong to the answer. Answering `true` when unsure is always safe.
    func mayMatch(_ record: JSONObject) -> Bool
    /// An attribute every matching record holds `value` on (a top-level equality of the filter),
    /// so a cache can find the predicates a change might touch by value instead of testing all.
    /// `value` is a scalar (string, number, boolean or null).
    var equality: (attribute: String, value: JSONValue)? { get }
}

/// Watches the reads of a piece of code, to learn what its result depends on.
///
/// The store tells the observer of the current task (``ReadObservation/observer``) *before* it
/// reads, so a commit that lands while the read is under way is seen by whoever watches the
/// observer's reads.
public protocol ReadObserver: Sendable {
    /// About to read the record `id` of `table` (whether or not it exists).
    func willRead(_ table: TableLayout, id: RecordID)
    /// About to run a query on `table` whose answer holds only records `predicate` may match;
    /// `nil` stands for any record of the table.
    func willQuery(_ table: TableLayout, predicate: (any RecordPredicate)?)
    /// About to read something whose changes cannot be followed (another process, a query
    /// through relationships): the result should not be kept.
    func untracked(_ reason: String)
}

/// The observer of the current task and its child tasks.
public enum ReadObservation {
    /// Set with `ReadObservation.$observer.withValue(observer) { ... }` around the code to watch.
    @TaskLocal public static var observer: (any ReadObserver)?
}
