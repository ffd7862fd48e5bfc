import MicrolithJSON
import MicrolithSchema

extension WriteTransaction {
    /// Adds `amount` (negative: takes it away) to the integer attribute `attribute` of the record
    /// `id`; returns the record after it, or `nil` when there is no such record. An absent or
    /// `null` attribute counts as 0.
    ///
    /// Unlike a PATCH that sets the value, an addition is kept as one (a ``RecordStamps/Counter``):
    /// additions made on several nodes at once all count once they have replicated, where
    /// concurrent PATCHes of one attribute keep only the later value. A write that sets the
    /// attribute again (PUT, or a PATCH of it) starts from the value it sets; additions made
    /// concurrently with it on other nodes are dropped.
    ///
    /// A check made before adding (enough stock, say) sees this node's view: two nodes may both
    /// take the last unit before either hears of the other. A store that does not replicate
    /// (``StoreConfiguration/replicating`` off) writes the sum as a plain value.
    @discardableResult
    public func add(_ table: TableLayout, id: RecordID, attribute: String, amount: Int64) throws -> CachedRecord? {
        try Self.requireCanonical(id, table)
        guard let declared = table.definition.attributes.first(where: { $0.name == attribute }) else {
            throw StoreError(.invalidRecord, "table \(table.name) has no attribute '\(attribute)' to add to", attribute: attribute)
        }
        guard declared.type == .int || declared.type == .long, attribute != table.definition.primaryKey else {
            throw StoreError(
                .invalidRecord, "attribute '\(attribute)' of \(table.name) is \(declared.type); additions take Int and Long attributes",
                attribute: attribute)
        }
        let stored = try stored(table, id)
        guard let current = live(table, stored) else { return nil }
        guard store.configuration.replicating else {
            // One node: no other node adds concurrently, so the sum is the value.
            let value: Int64
            switch current.record[attribute] {
            case .int(let n)?: value = n
            case nil, .null?: value = 0
            case let other?:
                throw StoreError(
                    .invalidRecord, "attribute '\(attribute)' of \(table.name)/\(id) holds \(other), not an integer", attribute: attribute)
            }
            let (sum, overflow) = value.addingReportingOverflow(amount)
            guard !overflow else {
                throw StoreError(
                    .invalidRecord, "attribute '\(attribute)' of \(table.name)/\(id) would overflow (\(value) + \(amount))", attribute: attribute)
            }
            var body = current.record
            body[attribute] = .int(sum)
            return try write(table, id: id, body: body, current: current, stored: stored, operation: .patch)
        }
        let stamps = try stamps(table, id, of: current)
        var counter: RecordStamps.Counter
        if let kept = stamps.counters[attribute] {
            counter = kept
        } else {
            switch current.record[attribute] {
            case .int(let n)?: counter = RecordStamps.Counter(base: n)
            case nil, .null?: counter = RecordStamps.Counter(base: 0)
            case let other?:
                throw StoreError(
                    .invalidRecord, "attribute '\(attribute)' of \(table.name)/\(id) holds \(other), not an integer", attribute: attribute)
            }
        }
        counter = counter.adding(amount, on: store.nodeID)
        var body = current.record
        body[attribute] = .int(counter.value)
        return try write(
            table, id: id, body: body, current: current, stored: stored, operation: .patch, stamps: stamps, counter: (attribute, counter))
    }
}
