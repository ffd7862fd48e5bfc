public import Logging
import MicrolithJSON
public import MicrolithQuery
public import MicrolithSchema
public import MicrolithStore

/// What running application code can reach: the other modules (to call them), the store (to
/// read and write records in transactions) and a logger.
///
/// Operations, resources, job runs and scheduled tasks all receive one.
public struct OperationContext: Sendable {
    /// Every module of the application, local or remote, to call through.
    public let modules: Modules
    /// What is running: `module.operation`, a job name, a resource path.
    public let operation: String
    /// Logs with the request or job id attached.
    public var logger: Logger
    /// The job run being executed, when this context belongs to one.
    public var job: JobRun?

    /// A context for code the runtime runs: an operation, a resource, a job run or a schedule.
    public init(modules: Modules, operation: String, logger: Logger? = nil, job: JobRun? = nil) {
        self.modules = modules
        self.operation = operation
        self.logger = logger ?? modules.logger
        self.job = job
    }

    /// This process's store.
    /// - Throws: ``OperationError/unavailable(_:)`` when the modules were built without one.
    public var store: Store {
        get throws(OperationError) {
            guard let store = modules.store else {
                throw OperationError.unavailable("\(operation) needs the store, and these modules were built without one")
            }
            return store
        }
    }

    /// Runs `work` in one write transaction of `database` and returns once it has committed:
    /// every write in it (across tables of that database, and jobs it enqueues) commits
    /// together, or none does when `work` throws. Store errors arrive as ``OperationError``s
    /// with the matching status (an invalid record → 400, a taken key → 409, ...).
    public func write<T: Sendable>(
        database: String = Schema.defaultDatabase, _ work: @escaping @Sendable (WriteTransaction) throws -> T
    ) async throws -> T {
        let store = try self.store
        do {
            return try await store.write(database: database, work)
        } catch let error as StoreError {
            throw OperationError(error)
        }
    }

    /// The records of `table` matching `query`, in the REST query language
    /// (`categoryId=c1&sort(+position)&limit(20)`), planned through the table's indexes.
    /// - Throws: ``OperationError/badRequest(_:)`` for a query that does not parse or names
    ///   unknown attributes.
    public func query<Record>(_ table: TableRef<Record>, _ query: String, maximumResults: Int = 100_000) async throws -> [Record] {
        try await withBoundQuery(table, query, arguments: nil) { store, layout, bound in
            try await Self.records(of: bound, in: layout, store: store, maximumResults: maximumResults)
        }
    }

    /// The records of `table` matching `template`, a query whose comparison values may be
    /// placeholders (`?`), filled with `arguments` in the order they are written:
    ///
    /// ```swift
    /// try await context.query(Tables.products, "categoryId=?&position=gt=?&sort(+position)&limit(4)", product.categoryId, product.position)
    /// ```
    ///
    /// The values need no percent-encoding (a category id with `&` in it is just a value), and the
    /// template's text is parsed once however many values it is run with. Text arguments convert
    /// to the attribute's declared type as written text would (see ``QueryArgument``).
    /// - Throws: ``OperationError/badRequest(_:)`` for a template that does not parse, names
    ///   unknown attributes, or has a different number of placeholders than `arguments`.
    public func query<Record>(
        _ table: TableRef<Record>, _ template: String, _ arguments: any QueryArgument..., maximumResults: Int = 100_000
    ) async throws -> [Record] {
        try await withBoundQuery(table, template, arguments: arguments.map(\.queryValue)) { store, layout, bound in
            try await Self.records(of: bound, in: layout, store: store, maximumResults: maximumResults)
        }
    }

    private static func records<Record>(
        of bound: BoundQueries.Bound, in layout: TableLayout, store: Store, maximumResults: Int
    ) async throws -> [Record] where Record: Decodable & Sendable {
        let result = try await QueryExecutor(store: store, maximumResults: maximumResults).execute(
            bound.query, plan: bound.plan, table: layout, records: true)
        return try result.rows.map { row in
            let decode = { try RecordCoder.decode(Record.self, from: .object(row.record)) }
            return try row.cached?.decodedValue(Record.self, decode: decode) ?? decode()
        }
    }

    /// How many records of `table` match `query`'s filter (`categoryId=c1`; any sort, limit or
    /// select in it is ignored). With a filter an index answers whole, SQLite counts index
    /// entries without reading a record: what a listing needs for "page 2 of 40" without
    /// loading the other 39 pages. A kept response that used the count is dropped when a
    /// commit changes which records match, as for ``query(_:_:maximumResults:)``.
    /// - Throws: ``OperationError/badRequest(_:)`` for a query that does not parse or names
    ///   unknown attributes.
    public func count<Record>(_ table: TableRef<Record>, _ query: String) async throws -> Int {
        try await withBoundQuery(table, query, arguments: nil) { store, layout, bound in
            try await QueryExecutor(store: store).count(bound.query, table: layout)
        }
    }

    /// How many records of `table` match `template`'s filter, its placeholders (`?`) filled with
    /// `arguments`, as for ``query(_:_:_:maximumResults:)``.
    /// - Throws: ``OperationError/badRequest(_:)`` as that method does.
    public func count<Record>(_ table: TableRef<Record>, _ template: String, _ arguments: any QueryArgument...) async throws -> Int {
        try await withBoundQuery(table, template, arguments: arguments.map(\.queryValue)) { store, layout, bound in
            try await QueryExecutor(store: store).count(bound.query, table: layout)
        }
    }

    /// `body` with `query` parsed and bound to `table`; store and query errors become operation
    /// errors naming the query.
    private func withBoundQuery<Record, T>(
        _ table: TableRef<Record>, _ query: String, arguments: [QueryValue]?, _ body: (Store, TableLayout, BoundQueries.Bound) async throws -> T
    ) async throws -> T {
        let store = try self.store
        do {
            let layout = try table.layout(in: store)
            let bound =
                if let arguments {
                    try modules.boundQueries.query(query, arguments: arguments, table: layout, store: store)
                } else {
                    try modules.boundQueries.query(query, table: layout, store: store)
                }
            return try await body(store, layout, bound)
        } catch let error as StoreError {
            throw OperationError(error)
        } catch let error as QuerySyntaxError {
            throw OperationError.badRequest("query '\(query)': \(error)")
        } catch let error as QueryError {
            throw OperationError.badRequest("query '\(query)': \(error)")
        }
    }

    /// The committed record `key` of `table`, or `nil`.
    public func get<Record>(_ table: TableRef<Record>, _ key: RecordKey) async throws -> Record? {
        do {
            return try await store.get(table, key)
        } catch let error as StoreError {
            throw OperationError(error)
        }
    }
}

extension OperationError {
    /// The operation error with the meaning of a store error: invalid records and keys → 400,
    /// unknown tables → 404, a taken key → 409, a failed precondition → 412, a closed store →
    /// 503, anything else → 500. A ``StoreError`` carrying an `OperationError` (thrown inside a
    /// write) gives that error back.
    public init(_ error: StoreError) {
        if let inner = error.underlying as? OperationError {
            self = inner
            return
        }
        switch error.code {
        case .invalidRecord, .invalidID: self.init(status: 400, code: "badRequest", message: error.message)
        case .unknownTable: self.init(status: 404, code: "notFound", message: error.message)
        case .alreadyExists: self.init(status: 409, code: "conflict", message: error.message)
        case .versionMismatch: self.init(status: 412, code: "preconditionFailed", message: error.message)
        case .closed: self.init(status: 503, code: "unavailable", message: error.message)
        case .busy: self.init(status: 503, code: "storeBusy", message: error.message)
        default: self.init(status: 500, code: "internal", message: error.message)
        }
    }
}
