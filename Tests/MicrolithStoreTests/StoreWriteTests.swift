import Foundation
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Testing

@Suite("Store: opening, writing and reading records")
struct StoreWriteTests {
    @Test func dataSurvivesCloseAndReopen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }

        let first = try openStore(directory)
        let todo = try first.layout("Todo")
        let written = try await first.put(todo, .string("t1"), ["title": "buy milk", "priority": 2, "tags": ["home"]])
        let nodeID = first.nodeID
        first.close()
        #expect(FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("data.sqlite")))

        let second = try openStore(directory)
        defer { second.close() }
        #expect(second.nodeID == nodeID)
        let read = try #require(try await second.get(try second.layout("Todo"), .string("t1")))
        #expect(read.record == written.record)
        #expect(read.version == written.version)
        #expect(read.etag == written.etag)
        #expect(read.record["title"] == "buy milk")
        #expect(read.record["id"] == "t1")
    }

    @Test func putCreatesThenReplaces() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let created = try await store.put(todo, .string("t1"), ["title": "a", "notes": "first"])
        #expect(created.id == .string("t1"))
        #expect(created.record.keys.first == "id")
        #expect(created.record["notes"] == "first")

        let replaced = try await store.put(todo, .string("t1"), ["title": "b", "priority": 1])
        #expect(replaced.record["title"] == "b")
        #expect(replaced.record["priority"] == 1)
        #expect(replaced.record["notes"] == nil, "a replacement drops attributes the body leaves out")
        #expect(replaced.version > created.version)
        #expect(replaced.etag != created.etag)

        let read = try #require(try await store.get(todo, .string("t1")))
        #expect(read.record == replaced.record)
    }

    @Test func putAcceptsTheMatchingPrimaryKeyInTheBodyAndRefusesAnother() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        try await store.put(todo, .string("t1"), ["id": "t1", "title": "same"])
        let error = await storeError { try await store.put(todo, .string("t2"), ["id": "t1", "title": "other"]) }
        #expect(error?.code == .invalidID)
        #expect(error?.attribute == "id")
        #expect(try await store.get(todo, .string("t2")) == nil)
    }

    @Test func patchMergesRecursivelyAndNullRemoves() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let original = try await store.put(
            todo, .string("t1"), ["title": "a", "notes": "n", "priority": 1, "meta": ["x": 1, "y": ["z": 2]]])
        let patched = try await store.write { txn in
            try txn.patch(todo, id: .string("t1"), patch: ["notes": nil, "priority": 5, "meta": ["y": ["w": 3], "x": nil]])
        }
        let record = try #require(patched).record
        #expect(record["title"] == "a")
        #expect(record["notes"] == nil)
        #expect(record["priority"] == 5)
        #expect(record["meta"] == ["y": ["z": 2, "w": 3]])
        #expect(record["createdAt"] == original.record["createdAt"])
        #expect(try #require(patched).version > original.version)
    }

    @Test func patchOfAMissingRecordReturnsNilAndCreatesNothing() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let patched = try await store.write { txn in try txn.patch(todo, id: .string("nope"), patch: ["title": "x"]) }
        #expect(patched == nil)
        #expect(try await store.get(todo, .string("nope")) == nil)
    }

    @Test func patchIsValidatedLikeAPut() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.put(todo, .string("t1"), ["title": "a"])

        let wrongType = await storeError {
            _ = try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["priority": "high"]) }
        }
        #expect(wrongType?.code == .invalidRecord)
        #expect(wrongType?.attribute == "priority")

        let removesRequired = await storeError {
            _ = try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["title": nil]) }
        }
        #expect(removesRequired?.code == .invalidRecord)
        #expect(removesRequired?.attribute == "title")
        #expect(try await store.get(todo, .string("t1"))?.record["title"] == "a")
    }

    @Test func insertGeneratesStringKeys() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let a = try await store.write { txn in try txn.insert(todo, body: ["title": "a"]) }
        let b = try await store.write { txn in try txn.insert(todo, body: ["title": "b"]) }
        guard case .string(let key) = a.id else {
            Issue.record("expected a string key, got \(a.id)")
            return
        }
        #expect(UUID(uuidString: key) != nil)
        #expect(key == key.lowercased())
        #expect(a.id != b.id)
        #expect(a.record["id"] == a.id.jsonValue)
        #expect(try await store.get(todo, a.id)?.record["title"] == "a")
    }

    @Test func insertGeneratesIncreasingIntegerKeys() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let counter = try store.layout("Counter")

        let ids = try await store.write { txn in
            [
                try txn.insert(counter, body: ["value": 1]).id,
                try txn.insert(counter, body: ["value": 2]).id,
                try txn.insert(counter, body: ["id": 10, "value": 3]).id,
                try txn.insert(counter, body: ["value": 4]).id,
            ]
        }
        #expect(ids == [.int(1), .int(2), .int(10), .int(11)])
    }

    @Test func insertRefusesATakenOrInvalidKey() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let counter = try store.layout("Counter")
        try await store.put(counter, .int(1), ["value": 1])

        let taken = await storeError { _ = try await store.write { txn in try txn.insert(counter, body: ["id": 1, "value": 2]) } }
        #expect(taken?.code == .alreadyExists)
        #expect(taken?.attribute == "id")
        #expect(taken?.message.contains("Counter/1") == true)
        #expect(try await store.get(counter, .int(1))?.record["value"] == 1)

        let invalid = await storeError { _ = try await store.write { txn in try txn.insert(counter, body: ["id": "x"]) } }
        #expect(invalid?.code == .invalidID)
        #expect(invalid?.attribute == "id")

        let outOfRange = await storeError { _ = try await store.write { txn in try txn.insert(counter, body: ["id": 3_000_000_000]) } }
        #expect(outOfRange?.code == .invalidID)
    }

    @Test func deleteReportsWhetherTheRecordExisted() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.put(todo, .string("t1"), ["title": "a"])

        #expect(try await store.write { txn in try txn.delete(todo, id: .string("t1")) })
        #expect(try await store.get(todo, .string("t1")) == nil)
        #expect(try await store.write { txn in try txn.delete(todo, id: .string("t1")) } == false)
    }

    @Test func aTransactionSeesItsOwnWrites() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let seen = try await store.write { txn in
            try txn.put(todo, id: .string("t1"), body: ["title": "inside"])
            let afterPut = try txn.get(todo, .string("t1"))?.record["title"]
            try txn.delete(todo, id: .string("t1"))
            return (afterPut, try txn.get(todo, .string("t1")) == nil)
        }
        #expect(seen.0 == "inside")
        #expect(seen.1)
    }

    @Test func aThrowingTransactionWritesNothing() async throws {
        struct Abort: Error {}
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.put(todo, .string("keep"), ["title": "kept"])

        await #expect(throws: Abort.self) {
            try await store.write { (txn: WriteTransaction) -> Void in
                try txn.put(todo, id: .string("t1"), body: ["title": "a"])
                try txn.delete(todo, id: .string("keep"))
                throw Abort()
            }
        }
        #expect(try await store.get(todo, .string("t1")) == nil)
        #expect(try await store.get(todo, .string("keep"))?.record["title"] == "kept")
        #expect(try await store.changes(after: 0).count == 1)
    }

    @Test func aTransactionFailingOnAnInvalidRecordWritesNothing() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let error = await storeError {
            try await store.write { (txn: WriteTransaction) -> Void in
                try txn.put(todo, id: .string("good"), body: ["title": "fine"])
                try txn.put(todo, id: .string("bad"), body: ["title": 5])
            }
        }
        #expect(error?.code == .invalidRecord)
        #expect(try await store.get(todo, .string("good")) == nil)
    }

    @Test func writesAfterCloseAreRefused() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory)
        let todo = try store.layout("Todo")
        store.close()
        let error = await storeError { try await store.put(todo, .string("t1"), ["title": "late"]) }
        #expect(error?.code == .closed)
    }

    @Test func unknownDatabaseIsAnError() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let error = await storeError { try await store.write(database: "nope") { _ in () } }
        #expect(error?.code == .unknownTable)
        #expect(error?.message.contains("nope") == true)
    }

    @Test func tablesOfAnotherDatabaseLiveInTheirOwnFile() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let schema = """
            type Note @table(database: "notes") @export(name: "notes") {
                id: ID @primaryKey
                text: String
            }
            type Todo @table @export {
                id: ID @primaryKey
                title: String
            }
            """
        let store = try openStore(directory, schema: schema)
        defer { store.close() }
        let note = try #require(store.table(name: "Note", database: "notes"))
        #expect(store.table(exportName: "notes")?.name == "Note")
        #expect(store.table(typeName: "Todo")?.name == "Todo")
        #expect(store.table(name: "Note") == nil, "Note is not in the default database")

        _ = try await store.write(database: "notes") { txn in try txn.put(note, id: .string("n1"), body: ["text": "hello"]) }
        #expect(try await store.get(note, .string("n1"))?.record["text"] == "hello")
        #expect(FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("notes.sqlite")))
        #expect(try await store.sqlTables(database: "notes").contains("r_Note"))
        #expect(try await store.sqlTables(database: "data").contains("r_Note") == false)
        #expect(try await store.changes(database: "notes", after: 0).map(\.tableName) == ["Note"])
        #expect(try await store.changes(database: "data", after: 0).isEmpty)
    }

    @Test func onCommitListenersSeeEveryChange() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let seen = SharedLog()
        store.onCommit { changes in seen.append(changes.map { "\($0.operation.rawValue) \($0.tableName)/\($0.id)" }) }

        try await store.put(todo, .string("t1"), ["title": "a"])
        try await store.write { (txn: WriteTransaction) -> Void in
            _ = try txn.patch(todo, id: .string("t1"), patch: ["notes": "x"])
            try txn.delete(todo, id: .string("t1"))
        }
        #expect(seen.entries == ["put Todo/t1", "patch Todo/t1", "delete Todo/t1"])
    }
}

@Suite("Store: conditional writes (If-Match / If-None-Match)")
struct StorePreconditionTests {
    enum Operation: String, CaseIterable, Sendable {
        case put, patch, delete
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var operation: Operation
        var recordExists: Bool
        var precondition: String
        var succeeds: Bool
        var testDescription: String { "\(operation) \(precondition) on \(recordExists ? "existing" : "missing") → \(succeeds ? "ok" : "412")" }
    }

    static let cases: [Case] = Operation.allCases.flatMap { op in
        [
            Case(operation: op, recordExists: true, precondition: "If-Match: current", succeeds: true),
            Case(operation: op, recordExists: true, precondition: "If-Match: *", succeeds: true),
            Case(operation: op, recordExists: true, precondition: "If-Match: other, current", succeeds: true),
            Case(operation: op, recordExists: true, precondition: "If-Match: other", succeeds: false),
            Case(operation: op, recordExists: false, precondition: "If-Match: *", succeeds: false),
            Case(operation: op, recordExists: false, precondition: "If-Match: other", succeeds: false),
            Case(operation: op, recordExists: true, precondition: "If-None-Match: *", succeeds: false),
            Case(operation: op, recordExists: true, precondition: "If-None-Match: current", succeeds: false),
            Case(operation: op, recordExists: true, precondition: "If-None-Match: other", succeeds: true),
            Case(operation: op, recordExists: false, precondition: "If-None-Match: *", succeeds: true),
        ]
    }

    @Test(arguments: cases)
    func precondition(_ c: Case) async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let id = RecordID.string("t1")
        var current: CachedRecord?
        if c.recordExists { current = try await store.put(todo, id, ["title": "before"]) }

        let tags: [String] = c.precondition.split(separator: ":", maxSplits: 1)[1].split(separator: ",").map { raw in
            switch raw.trimmingCharacters(in: .whitespaces) {
            case "current": return current?.etag ?? "\"none\""
            case "other": return "\"0\""
            default: return "*"
            }
        }
        let precondition =
            c.precondition.hasPrefix("If-Match") ? WritePrecondition(ifMatch: tags) : WritePrecondition(ifNoneMatch: tags)

        let operation = c.operation
        let attempt: @Sendable () async throws -> Void = {
            try await store.write { (txn: WriteTransaction) -> Void in
                switch operation {
                case .put: _ = try txn.put(todo, id: id, body: ["title": "after"], precondition: precondition)
                case .patch: _ = try txn.patch(todo, id: id, patch: ["title": "after"], precondition: precondition)
                case .delete: _ = try txn.delete(todo, id: id, precondition: precondition)
                }
            }
        }
        if c.succeeds {
            try await attempt()
        } else {
            let error = await storeError { try await attempt() }
            #expect(error?.code == .versionMismatch)
            #expect(error?.message.contains("Todo/t1") == true)
        }

        let after = try await store.get(todo, id)
        switch (c.succeeds, c.operation) {
        case (false, _):
            #expect(after?.version == current?.version, "a failed condition changes nothing")
        case (true, .delete):
            #expect(after == nil)
        case (true, .patch) where !c.recordExists:
            #expect(after == nil, "patch never creates")
        case (true, _):
            #expect(after?.record["title"] == "after")
        }
    }
}

@Suite("Store: @createdTime and @updatedTime")
struct StoreTimestampTests {
    @Test func timestampsAreSetOnCreateAndUpdate() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let before = HybridLogicalClock.systemMilliseconds()
        let created = try await store.put(todo, .string("t1"), ["title": "a"])
        let afterCreate = HybridLogicalClock.systemMilliseconds()
        guard case .int(let createdAt) = created.record["createdAt"], case .int(let updatedAt) = created.record["updatedAt"] else {
            Issue.record("timestamps missing or not integers: \(created.record)")
            return
        }
        #expect((before...afterCreate).contains(createdAt))
        #expect((before...afterCreate).contains(updatedAt))

        // The body cannot set either: createdAt survives, updatedAt is the time of the write.
        let replaced = try await store.put(todo, .string("t1"), ["title": "b", "createdAt": 5, "updatedAt": 6])
        let afterReplace = HybridLogicalClock.systemMilliseconds()
        #expect(replaced.record["createdAt"] == .int(createdAt))
        guard case .int(let replacedAt) = replaced.record["updatedAt"] else {
            Issue.record("updatedAt missing after replace")
            return
        }
        #expect((afterCreate...afterReplace).contains(replacedAt))

        let patched = try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["createdAt": nil, "notes": "x"]) }
        #expect(patched?.record["createdAt"] == .int(createdAt))
        #expect(patched?.record["updatedAt"]?.doubleValue ?? 0 >= Double(replacedAt))
    }

    @Test func timestampsFollowTheAttributeType() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let schema = """
            type Event @table {
                id: ID @primaryKey
                createdDate: Date @createdTime
                updatedSeconds: Int @updatedTime
                updatedFloat: Float @updatedTime
            }
            """
        let store = try openStore(directory, schema: schema)
        defer { store.close() }
        let event = try store.layout("Event")
        let before = HybridLogicalClock.systemMilliseconds()
        let record = try await store.put(event, .string("e1"), [:]).record
        let after = HybridLogicalClock.systemMilliseconds()

        let date = try #require(record["createdDate"]?.stringValue)
        let milliseconds = try #require(DateValue.parse(date))
        #expect((before...after).contains(milliseconds))
        #expect(date.hasSuffix("Z"))
        guard case .int(let seconds) = record["updatedSeconds"] else {
            Issue.record("updatedSeconds is \(String(describing: record["updatedSeconds"]))")
            return
        }
        #expect((before / 1000...after / 1000).contains(seconds))
        let float = try #require(record["updatedFloat"]?.doubleValue)
        #expect((Double(before)...Double(after)).contains(float))
    }
}

@Suite("Store: validation")
struct StoreValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var body: JSONObject
        var attribute: String
        var testDescription: String { "\(JSONValue.object(body)) → \(attribute)" }
    }

    static let cases: [Case] = [
        Case(body: ["notes": "no title"], attribute: "title"),
        Case(body: ["title": nil], attribute: "title"),
        Case(body: ["title": 5], attribute: "title"),
        Case(body: ["title": "t", "priority": "high"], attribute: "priority"),
        Case(body: ["title": "t", "priority": 1.5], attribute: "priority"),
        Case(body: ["title": "t", "priority": 3_000_000_000], attribute: "priority"),
        Case(body: ["title": "t", "done": "yes"], attribute: "done"),
        Case(body: ["title": "t", "tags": "single"], attribute: "tags"),
        Case(body: ["title": "t", "tags": ["ok", 2]], attribute: "tags[1]"),
        Case(body: ["title": "t", "score": "high"], attribute: "score"),
    ]

    @Test(arguments: cases)
    func invalidRecordsAreRefusedNamingTheAttribute(_ c: Case) async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let error = await storeError { try await store.put(todo, .string("t1"), c.body) }
        #expect(error?.code == .invalidRecord)
        #expect(error?.attribute == c.attribute)
        #expect(error?.message.contains("'\(c.attribute)'") == true, "message: \(error?.message ?? "nil")")
        #expect(try await store.get(todo, .string("t1")) == nil)
        #expect(try await store.changes(after: 0).isEmpty)
    }

    @Test func integralDoublesAreStoredAsIntegers() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let record = try await store.put(todo, .string("t1"), ["title": "t", "priority": 3.0, "extra": "kept"]).record
        guard case .int(3) = record["priority"] else {
            Issue.record("priority is \(String(describing: record["priority"]))")
            return
        }
        #expect(record["extra"] == "kept", "open tables keep undeclared attributes")
    }
}
