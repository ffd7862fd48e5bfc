import MicrolithJSON
import MicrolithSchema
public import MicrolithStore
import Synchronization

/// A record of one table, by key.
struct RecordAddress: Hashable {
    var table: Int
    var id: RecordID
}

/// What a handler read while it ran, so that ``KeptResponses`` can tell whether its response
/// is still true when the handler finishes, and which commits make it false afterwards.
///
/// The runtime installs one as the task's ``ReadObservation/observer`` around a handler whose
/// response may be kept; the store and the query engine report every read to it before making
/// it. While it is open, each commit marks it stale if it touched anything read so far.
public final class KeptRecording: ReadObserver {
    struct State {
        var records: Set<RecordAddress> = []
        var queries: [(table: Int, predicate: (any RecordPredicate)?)] = []
        var untracked: String?
        var stale = false
        var slots: [LiveSlot] = []
    }

    let state = Mutex(State())
    /// The observer of the code that runs this one (a kept page calling a kept operation): it
    /// depends on everything read here too.
    let parent: (any ReadObserver)?

    init(parent: (any ReadObserver)? = nil) {
        self.parent = parent
    }

    public func willRead(_ table: TableLayout, id: RecordID) {
        parent?.willRead(table, id: id)
        let address = RecordAddress(table: table.index, id: id)
        state.withLock { s in
            if table.definition.expiration != nil, s.untracked == nil { s.untracked = "\(table.name) expires records by time" }
            s.records.insert(address)
        }
    }

    public func willQuery(_ table: TableLayout, predicate: (any RecordPredicate)?) {
        parent?.willQuery(table, predicate: predicate)
        state.withLock { s in
            if table.definition.expiration != nil, s.untracked == nil { s.untracked = "\(table.name) expires records by time" }
            s.queries.append((table.index, predicate))
        }
    }

    public func untracked(_ reason: String) {
        parent?.untracked(reason)
        state.withLock { s in
            if s.untracked == nil { s.untracked = reason }
        }
    }

    /// Why the response cannot be kept whatever happens (a remote call, a relationship query),
    /// or `nil`.
    public var untrackedReason: String? { state.withLock { $0.untracked } }

    /// Adds a live slot and returns the marker standing for it in the response body.
    public func addSlot(_ slot: LiveSlot) -> String {
        state.withLock { s in
            s.slots.append(slot)
            return LiveSlot.marker(s.slots.count - 1)
        }
    }

    /// Marks the recording stale when one of `changes` touches what it read.
    func noteCommit(_ changes: [Change]) {
        state.withLock { s in
            guard !s.stale else { return }
            for change in changes where Self.touches(s, change) {
                s.stale = true
                return
            }
        }
    }

    private static func touches(_ s: State, _ change: Change) -> Bool {
        if s.records.contains(RecordAddress(table: change.table, id: change.id)) { return true }
        for query in s.queries where query.table == change.table {
            guard let predicate = query.predicate else { return true }
            if let before = change.previous, predicate.mayMatch(before.record) { return true }
            if let after = change.record, predicate.mayMatch(after.record) { return true }
        }
        return false
    }
}
