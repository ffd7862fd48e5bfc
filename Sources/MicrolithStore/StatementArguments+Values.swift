package import GRDB

extension StatementArguments {
    /// Positional arguments from values already converted.
    ///
    /// GRDB's `StatementArguments(_:)` for a sequence of `DatabaseValue` maps it through a key
    /// path that is instantiated on every call (some 1–3 % of a write or a query's CPU here);
    /// this goes through the initializer for optional existentials, with a closure instead.
    package init(databaseValues: [DatabaseValue]) {
        self.init(databaseValues.lazy.map { $0 as (any DatabaseValueConvertible)? })
    }
}
