import Foundation
import MicrolithCache
import MicrolithModules
import MicrolithSchema
import MicrolithStore
import NIOCore
import Synchronization
import Testing

struct Item: Codable, Sendable, Equatable {
    var id: String
    var name: String
}

struct ItemKey: Codable, Sendable, Equatable {
    var id: String
}

enum Catalogue {
    static let items = TableRef<Item>("Item")
    static let name = Operation<ItemKey, String>(module: "catalogue", name: "name")
    static let runs = Atomic<Int>(0)
}

struct CatalogueModule: Module {
    let name = "catalogue"
    func register(_ builder: inout ModuleBuilder) {
        builder.handle(Catalogue.name, keep: true) { key, context in
            Catalogue.runs.add(1, ordering: .relaxed)
            return try await context.get(Catalogue.items, RecordKey(key.id))?.name ?? "-"
        }
    }
}

@Suite(.serialized) struct KeptOperationTests {
    func withModules(_ body: (Modules, Store) async throws -> Void) async throws {
        try await withTemporaryStore(schema: "type Item @table { id: ID @primaryKey\n name: String }") { store in
            let modules = try Modules([CatalogueModule()], store: store)
            try await body(modules, store)
            await modules.shutdown()
        }
    }

    func put(_ store: Store, _ id: String, _ name: String) async throws {
        try await store.write { txn in _ = try txn.put(Catalogue.items, Item(id: id, name: name)) }
    }

    @Test func resultsAreKeptPerInputUntilWhatTheyReadChanges() async throws {
        try await withModules { modules, store in
            #expect(modules.keptResponses != nil, "a kept operation turns keeping on")
            try await put(store, "a", "apple")
            try await put(store, "b", "banana")
            let before = Catalogue.runs.load(ordering: .relaxed)
            #expect(try await modules.call(Catalogue.name, ItemKey(id: "a")) == "apple")
            #expect(try await modules.call(Catalogue.name, ItemKey(id: "a")) == "apple")
            #expect(try await modules.call(Catalogue.name, ItemKey(id: "b")) == "banana")
            #expect(Catalogue.runs.load(ordering: .relaxed) - before == 2, "one run per input")
            try await put(store, "b", "blueberry")
            #expect(try await modules.call(Catalogue.name, ItemKey(id: "a")) == "apple")
            #expect(try await modules.call(Catalogue.name, ItemKey(id: "b")) == "blueberry")
            #expect(Catalogue.runs.load(ordering: .relaxed) - before == 3, "only the result that read b ran again")
        }
    }

    @Test func aKeptResponseThatCountedIsDroppedWhenTheCountChanges() async throws {
        try await withModules { modules, store in
            try await put(store, "a", "apple")
            let kept = try #require(modules.keptResponses)
            let context = OperationContext(modules: modules, operation: "test")
            let page = kept.begin()
            let n = try await ReadObservation.$observer.withValue(page) { try await context.count(Catalogue.items, "name=apple&limit(0)") }
            #expect(n == 1, "a limit does not change the count")
            #expect(kept.keep(CachedResponse(headers: [], body: .init(string: "\(n)")), for: "/count", recording: page) == .kept)
            try await put(store, "b", "banana")
            #expect(kept.response(for: "/count") != nil, "a record the filter does not match leaves the count as it was")
            try await put(store, "c", "apple")
            #expect(kept.response(for: "/count") == nil, "a new match changes the count")
            #expect(try await context.count(Catalogue.items, "name=apple") == 2)
            await #expect(throws: OperationError.self) { try await context.count(Catalogue.items, "name=apple&limit(") }
        }
    }

    @Test func codeUsingAKeptResultDependsOnWhatItRead() async throws {
        try await withModules { modules, store in
            try await put(store, "a", "apple")
            let kept = try #require(modules.keptResponses)
            _ = try await modules.call(Catalogue.name, ItemKey(id: "a"))  // kept now
            // A page built from the kept result (a hit) records the result's reads as its own.
            let page = kept.begin()
            let name = try await ReadObservation.$observer.withValue(page) { try await modules.call(Catalogue.name, ItemKey(id: "a")) }
            #expect(
                kept.keep(CachedResponse(headers: [], body: .init(string: name)), for: "/page", recording: page) == .kept)
            #expect(kept.response(for: "/page") != nil)
            try await put(store, "a", "avocado")
            #expect(kept.response(for: "/page") == nil, "the page read item a through the kept result")
        }
    }
}
