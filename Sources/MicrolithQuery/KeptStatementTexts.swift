import Synchronization

/// Which query texts the read connections prepare once and keep (GRDB's statement cache): the
/// first ``maximum`` distinct texts admitted, then no more.
///
/// A query's text depends on its shape only (its values are bound), so an application uses a
/// handful, and preparing one costs more than running it. A client sending ever new shapes gets
/// them prepared per use instead, so what each connection keeps stays bounded.
final class KeptStatementTexts: Sendable {
    /// How many distinct texts are admitted at most.
    let maximum: Int
    private let texts = Mutex<Set<String>>([])

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// Whether `sql` is kept: admitted before, or admitted now while there is room.
    func admits(_ sql: String) -> Bool {
        texts.withLock { texts in
            if texts.contains(sql) { return true }
            guard texts.count < maximum else { return false }
            texts.insert(sql)
            return true
        }
    }

    /// How many texts are admitted.
    var count: Int { texts.withLock { $0.count } }
}
