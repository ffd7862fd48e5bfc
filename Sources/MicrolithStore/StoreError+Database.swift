import GRDB

extension StoreError {
    /// `error` as a store error: itself when it is one (a ``Code/storage`` error caused by a held
    /// lock becomes ``Code/busy``), a SQLite error as ``Code/busy`` (`SQLITE_BUSY`,
    /// `SQLITE_LOCKED`) or ``Code/storage`` (anything else); `nil` for any other error.
    ///
    /// The message never carries SQLite's own text or SQL: that stays in ``underlying`` for logs.
    public static func classify(_ error: any Error) -> StoreError? {
        switch error {
        case let e as StoreError:
            if e.code == .storage, let cause = e.underlying, isLockHeld(cause) {
                return StoreError(.busy, "the database's write lock is held by another connection", underlying: cause)
            }
            return e
        case let e as DatabaseError:
            if isLockHeld(e) { return StoreError(.busy, "the database's write lock is held by another connection", underlying: e) }
            return StoreError(.storage, "the database failed (SQLite result code \(e.resultCode.rawValue))", underlying: e)
        default:
            return nil
        }
    }

    /// Whether `error` is SQLite giving up on a lock another connection holds.
    static func isLockHeld(_ error: any Error) -> Bool {
        guard let e = error as? DatabaseError else { return false }
        return e.resultCode == .SQLITE_BUSY || e.resultCode == .SQLITE_LOCKED
    }

    /// Whether this failure says the database itself does not take writes (as opposed to a write
    /// that was refused for what it asked).
    var isDatabaseFailure: Bool {
        code == .busy || code == .storage || code == .closed
    }
}
