import Foundation
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Testing

/// The one rule for string keys (no control characters, not empty), held by the store itself so
/// that no door (REST, MQTT, operations, jobs) can reach another record with a NUL.
@Suite("Store: the canonical key form")
struct RecordKeyRuleTests {
    @Test(arguments: ["a\u{0}b", "\u{0}", "a\u{1F}", "x\u{7F}", "x\u{85}", "tab\there", "new\nline", ""])
    func controlCharactersAndEmptyKeysAreRefused(_ text: String) {
        #expect(RecordID.keyTextProblem(text) != nil)
        #expect(RecordID(text: text, type: .id) == nil)
        #expect(RecordID(json: .string(text), type: .string) == nil)
        #expect(!RecordID.string(text).isCanonical)
    }

    @Test(arguments: ["a", "a b", "é€𝄞", "%00", "a/b", "\u{A0}", "\u{200B}", "?#&="])
    func awkwardButPrintableKeysAreKept(_ text: String) {
        #expect(RecordID.keyTextProblem(text) == nil)
        #expect(RecordID(text: text, type: .id) == .string(text))
    }

    @Test func theProblemNamesTheCharacterAndItsPlace() throws {
        let problem = try #require(RecordID.keyTextProblem("victim\u{0}x"))
        #expect(problem.contains("U+0000"))
        #expect(problem.contains("character 6"))
    }

    @Test func aKeyWithANulNeverReachesAnotherRecord() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        _ = try await store.put(todo, .string("victim"), ["title": "mine"])

        // Written straight through a transaction, as an operation or a job would.
        await #expect(throws: StoreError.self) {
            try await store.write { txn in try txn.put(todo, id: .string("victim\u{0}x"), body: ["title": "evil"]) }
        }
        await #expect(throws: StoreError.self) {
            try await store.write { txn in try txn.delete(todo, id: .string("victim\u{0}")) }
        }
        #expect(try await store.get(todo, .string("victim\u{0}x")) == nil)
        let kept = try #require(try await store.get(todo, .string("victim")))
        #expect(kept.record["title"] == "mine")
        let cached = store.cachedGet(todo, .string("victim"))
        if case .present(let record) = cached { #expect(record.record["title"] == "mine") }
    }

    @Test func aNulInAnIndexedStringIsRefusedElsewhereKept() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        await #expect(throws: StoreError.self) { try await store.put(todo, .string("t1"), ["title": "a", "tags": ["x\u{0}y"]]) }
        let kept = try await store.put(todo, .string("t2"), ["title": "a", "notes": "x\u{0}y"])
        #expect(kept.record["notes"] == "x\u{0}y")
        let read = try #require(try await store.get(todo, .string("t2")))
        #expect(read.record["notes"] == "x\u{0}y")
    }
}
