import MicrolithModules
import MicrolithStore
import Synchronization
import Testing

/// A record type that counts how often it is decoded.
private struct Gadget: Codable, Sendable, Equatable {
    static let decodes = Atomic<Int>(0)
    var id: String
    var name: String

    init(id: String, name: String) {
        self.id = id
        self.name = name
    }

    init(from decoder: any Decoder) throws {
        Self.decodes.add(1, ordering: .relaxed)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
    }
}

/// The same records read as another type: only the name.
private struct GadgetName: Codable, Sendable, Equatable {
    var name: String
}

/// The same records read as a class, which is decoded afresh for every reader.
private final class GadgetObject: Codable, Sendable {
    static let decodes = Atomic<Int>(0)
    let id: String
    let name: String

    init(from decoder: any Decoder) throws {
        Self.decodes.add(1, ordering: .relaxed)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
    }

    private enum CodingKeys: String, CodingKey { case id, name }
}

private let gadgets = TableRef<Gadget>("Gadget")

@Suite(.serialized) struct DecodedRecordTests {
    func withContext(_ body: (OperationContext, Store) async throws -> Void) async throws {
        try await withTemporaryStore(schema: "type Gadget @table { id: ID @primaryKey\n name: String @indexed }") { store in
            let modules = try Modules([], store: store)
            try await body(OperationContext(modules: modules, operation: "test"), store)
            await modules.shutdown()
        }
    }

    func put(_ store: Store, _ id: String, _ name: String) async throws {
        try await store.write { txn in _ = try txn.put(gadgets, Gadget(id: id, name: name)) }
    }

    @Test func aRecordReadAgainIsNotDecodedAgainUntilItChanges() async throws {
        try await withContext { context, store in
            try await put(store, "a", "anvil")
            let before = Gadget.decodes.load(ordering: .relaxed)
            #expect(try await context.get(gadgets, "a") == Gadget(id: "a", name: "anvil"))
            #expect(try await context.get(gadgets, "a") == Gadget(id: "a", name: "anvil"))
            #expect(try await context.get(gadgets, "a") == Gadget(id: "a", name: "anvil"))
            #expect(Gadget.decodes.load(ordering: .relaxed) - before == 1, "one decode for three reads of one version")
            try await put(store, "a", "axe")
            let afterPut = Gadget.decodes.load(ordering: .relaxed)
            #expect(try await context.get(gadgets, "a") == Gadget(id: "a", name: "axe"), "a new version is decoded, not the kept value served")
            #expect(try await context.get(gadgets, "a") == Gadget(id: "a", name: "axe"))
            #expect(Gadget.decodes.load(ordering: .relaxed) - afterPut == 1)
        }
    }

    @Test func queryRowsFromTheCacheShareTheDecodedValue() async throws {
        try await withContext { context, store in
            try await put(store, "a", "anvil")
            try await put(store, "b", "bolt")
            let before = Gadget.decodes.load(ordering: .relaxed)
            for _ in 0..<3 {
                #expect(
                    try await context.query(gadgets, "name=gt=?&sort(+name)", "a") == [Gadget(id: "a", name: "anvil"), Gadget(id: "b", name: "bolt")])
            }
            #expect(try await context.get(gadgets, "b") == Gadget(id: "b", name: "bolt"))
            #expect(Gadget.decodes.load(ordering: .relaxed) - before == 2, "each record decoded once, by queries and reads alike")
            try await put(store, "b", "blade")
            let afterPut = Gadget.decodes.load(ordering: .relaxed)
            for _ in 0..<2 {
                #expect(
                    try await context.query(gadgets, "name=gt=?&sort(+name)", "a") == [
                        Gadget(id: "a", name: "anvil"), Gadget(id: "b", name: "blade"),
                    ])
            }
            #expect(Gadget.decodes.load(ordering: .relaxed) - afterPut == 1, "only the changed record decoded again")
        }
    }

    @Test func otherTypesAndProjectionsGetTheirOwnValues() async throws {
        try await withContext { context, store in
            try await put(store, "a", "anvil")
            #expect(try await context.get(gadgets, "a") == Gadget(id: "a", name: "anvil"))
            #expect(try await context.get(TableRef<GadgetName>("Gadget"), "a") == GadgetName(name: "anvil"))
            #expect(try await context.query(TableRef<GadgetName>("Gadget"), "select(name)") == [GadgetName(name: "anvil")])
            #expect(try await context.get(gadgets, "a") == Gadget(id: "a", name: "anvil"))
            let projected = try await context.query(TableRef<GadgetName>("Gadget"), "select(name)")
            #expect(projected == [GadgetName(name: "anvil")])
        }
    }

    @Test func classesAreDecodedForEveryReader() async throws {
        try await withContext { context, store in
            try await put(store, "a", "anvil")
            let objects = TableRef<GadgetObject>("Gadget")
            let before = GadgetObject.decodes.load(ordering: .relaxed)
            let first = try #require(try await context.get(objects, "a"))
            let second = try #require(try await context.get(objects, "a"))
            #expect(first !== second, "no instance is shared between readers")
            #expect(GadgetObject.decodes.load(ordering: .relaxed) - before == 2)
        }
    }
}
