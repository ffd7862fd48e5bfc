import Foundation
import MicrolithHTTP
import MicrolithJSON
import MicrolithJobs
import MicrolithMQTT
import MicrolithModules
import MicrolithRealtime
import MicrolithRuntime
import MicrolithStore
import Synchronization
import Testing

struct HoldRequest: Codable, Sendable {
    var id: String
}

struct Held: Codable, Sendable {
    var id: String
    var version: Int64
}

/// An operation that waits behind a gate, then writes a record: a request in flight for as long
/// as the test wants.
struct GateModule: Module {
    static let hold = Operation<HoldRequest, Held>(module: "gate", name: "hold")
    let name = "gate"
    let gate: Gate

    func register(_ builder: inout ModuleBuilder) {
        let gate = self.gate
        builder.handle(Self.hold) { request, context in
            await gate.pass()
            guard let todo = try context.store.table(exportName: "Todo") else { throw OperationError.notFound("no Todo table") }
            let record = try await context.write { txn in
                try txn.put(todo, id: .string(request.id), body: ["title": "written while shutting down"])
            }
            return Held(id: request.id, version: record.version)
        }
    }
}

/// A job that waits behind a gate, then writes a record: a job running for as long as the test wants.
struct GatedJobModule: Module {
    static let write = Job<HoldRequest>(module: "gatedjob", name: "write")
    let name = "gatedjob"
    let gate: Gate

    func register(_ builder: inout ModuleBuilder) {
        let gate = self.gate
        builder.job(Self.write) { request, context in
            await gate.pass()
            guard let todo = try context.store.table(exportName: "Todo") else { throw OperationError.notFound("no Todo table") }
            _ = try await context.write { txn in try txn.put(todo, id: .string(request.id), body: ["title": "written by a job"]) }
        }
    }
}

/// Start-up and graceful shutdown of a whole server: every service ends, in reverse start order,
/// the store last; what is under way finishes; the ports are free afterwards.
@Suite struct ServerLifecycleTests {
    @Test func aGracefulShutdownEndsEveryServiceInReverseStartOrder() async throws {
        try await withLiveServer(["schema.graphql": todoSchema]) { live in
            let mqttPort = try #require(live.server.mqttPort, "the MQTT port is bound before the HTTP server announces itself")
            #expect(live.server.httpPort == live.httpPort)
            #expect(await !portIsFree(live.httpPort))
            #expect(await !portIsFree(mqttPort))
            let todo = try #require(live.server.store.table(exportName: "Todo"))
            let subscription = try await live.server.realtime.subscribe(.table(todo))
            #expect(await subscription.next()?.kind == .subscribed)

            try await live.shutDown()

            #expect(live.log.sequence(of: lifecycleEndings) == lifecycleEndings)
            #expect(live.server.store.isClosed)
            #expect(live.server.realtime.isStopped)
            // The subscription ended with the hub: its reader is told, not left waiting.
            let next = await withDeadline(.seconds(10)) { await subscription.next()?.kind.rawValue ?? "end" }
            #expect(next == "end")
            #expect(await portIsFree(live.httpPort), "the HTTP port is still taken after shutdown")
            #expect(await portIsFree(mqttPort), "the MQTT port is still taken after shutdown")
            await #expect(throws: StoreError.self) {
                try await live.server.store.write { txn in try txn.put(todo, id: .string("late"), body: ["title": "x"]) }
            }
        }
    }

    @Test func aRequestUnderWayFinishesAndItsWriteCommitsBeforeTheStoreCloses() async throws {
        let gate = Gate()
        try await withLiveServer(["schema.graphql": todoSchema], modules: [GateModule(gate: gate)]) { live in
            let port = live.httpPort
            try await withThrowingTaskGroup(of: (status: Int, body: String).self) { group in
                group.addTask {
                    try await RawConnection.http(port: port, "POST", "/_operations/gate/hold", json: #"{"id":"in-flight"}"#)
                }
                await gate.someoneArrived()
                group.addTask {
                    try await live.shutDown()
                    return (0, "")
                }
                // The shutdown waits for the request: the store stays open meanwhile.
                try await Task.sleep(for: .milliseconds(300))
                #expect(!live.server.store.isClosed, "the store closed while a request was under way")
                #expect(!live.log.messages.contains("HTTP server stopped"))
                gate.open()
                var answers: [(status: Int, body: String)] = []
                for try await answer in group { answers.append(answer) }
                let reply = try #require(answers.first { $0.status != 0 })
                #expect(reply.status == 200, "\(reply.body)")
                #expect(reply.body.contains("in-flight"))
            }
            #expect(live.log.sequence(of: lifecycleEndings) == lifecycleEndings)
            #expect(live.server.store.isClosed)
            // The write the request made is on disk.
            let reopened = try Store.open(schema: live.server.store.schema, configuration: live.server.configuration.store)
            defer { reopened.close() }
            let todo = try #require(reopened.table(exportName: "Todo"))
            #expect(try await reopened.get(todo, .string("in-flight"))?.record["title"] == "written while shutting down")
        }
    }

    @Test func aRunningJobFinishesAndItsWriteCommitsBeforeTheStoreCloses() async throws {
        let gate = Gate()
        try await withLiveServer(["schema.graphql": todoSchema], modules: [GatedJobModule(gate: gate)]) { live in
            _ = try await live.server.store.write { txn in try txn.enqueue(GatedJobModule.write, HoldRequest(id: "by-job")) }
            await gate.someoneArrived()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await live.shutDown() }
                // The worker lets the running job finish (within its grace): the store stays open meanwhile.
                try await Task.sleep(for: .milliseconds(300))
                #expect(!live.server.store.isClosed, "the store closed while a job was running")
                gate.open()
                try await group.waitForAll()
            }
            let endings = ["job worker stopped"] + lifecycleEndings
            #expect(live.log.sequence(of: endings) == endings)
            let reopened = try Store.open(schema: live.server.store.schema, configuration: live.server.configuration.store)
            defer { reopened.close() }
            let todo = try #require(reopened.table(exportName: "Todo"))
            #expect(try await reopened.get(todo, .string("by-job"))?.record["title"] == "written by a job")
        }
    }

    @Test func theMQTTListenerClosesItsConnectionsOnShutdown() async throws {
        try await withLiveServer(["schema.graphql": todoSchema]) { live in
            let mqttPort = try #require(live.server.mqttPort)
            let connection = try await RawConnection.open(port: mqttPort)
            try await withThrowingTaskGroup(of: Void.self) { group in
                let connected = AsyncStream.makeStream(of: Void.self)
                group.addTask {
                    // CONNECT (MQTT 3.1.1, clean session, client id "lc"); then read until the broker closes.
                    let connect: [UInt8] = [0x10, 14, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 2, 0x6C, 0x63]
                    let outcome = await withDeadline(.seconds(20)) {
                        var acknowledged = false
                        return try? await connection.exchange(connect) { received in
                            if !acknowledged && received.count >= 4 {
                                acknowledged = true
                                connected.continuation.yield()
                            }
                            return false
                        }
                    }
                    connected.continuation.finish()
                    let (bytes, closed) = try #require(outcome ?? nil, "the connection was still open 20 s after it connected")
                    #expect(Array(bytes.prefix(4)) == [0x20, 2, 0, 0], "CONNACK")
                    #expect(closed)
                }
                var iterator = connected.stream.makeAsyncIterator()
                await iterator.next()
                try await live.shutDown()
                try await group.waitForAll()
            }
            #expect(await portIsFree(mqttPort))
        }
    }

    @Test func anOpenEventStreamEndsOnShutdownInsteadOfHoldingItUp() async throws {
        try await withLiveServer(["schema.graphql": todoSchema]) { live in
            let connection = try await RawConnection.open(port: live.httpPort)
            try await withThrowingTaskGroup(of: Void.self) { group in
                let subscribed = AsyncStream.makeStream(of: Void.self)
                group.addTask {
                    let request = Array("GET /Todo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".utf8)
                    let outcome = await withDeadline(.seconds(20)) {
                        var told = false
                        return try? await connection.exchange(request) { received in
                            if !told && String(decoding: received, as: UTF8.self).contains("subscribed") {
                                told = true
                                subscribed.continuation.yield()
                            }
                            return false
                        }
                    }
                    subscribed.continuation.finish()
                    let (bytes, closed) = try #require(outcome ?? nil, "the event stream was still open 20 s after it began")
                    #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
                    #expect(closed)
                }
                var iterator = subscribed.stream.makeAsyncIterator()
                await iterator.next()
                let started = ContinuousClock.now
                try await live.shutDown()
                #expect(ContinuousClock.now - started < .seconds(10), "the shutdown waited for the event stream")
                try await group.waitForAll()
            }
            #expect(live.log.sequence(of: lifecycleEndings) == lifecycleEndings)
        }
    }

    @Test func aRunningServerSweepsExpiredRecords() async throws {
        // The store's maintenance runs as one of the server's services (and only then).
        let schema = "type Flash @table(expiration: 10) @export { id: ID @primaryKey }"
        let skew = Atomic<Int64>(0)
        try await withLiveServer(
            ["schema.graphql": schema],
            configure: { c in
                c.mqtt.enabled = false
                c.store.wallClock = { HybridLogicalClock.systemMilliseconds() + skew.load(ordering: .relaxed) }
            }
        ) { live in
            let store = live.server.store
            let flash = try #require(store.table(exportName: "Flash"))
            _ = try await store.write { txn in try txn.put(flash, id: .string("a"), body: [:]) }
            skew.store(11_000, ordering: .relaxed)
            // Expiration 10 s → a sweep every second.
            var deleted = false
            for _ in 0..<100 where !deleted {
                try await Task.sleep(for: .milliseconds(100))
                deleted = try await store.changes(after: 0).contains { $0.operation == .delete }
            }
            #expect(deleted, "the running server did not sweep the expired record within 10 s")
            try await live.shutDown()
        }
    }

    @Test func aTakenMQTTPortStopsTheStartBeforeHTTPServesAndClosesTheStore() async throws {
        let taken = try await HeldPort.listen()
        defer { taken.close() }
        let app = try TemporaryApp(["schema.graphql": todoSchema])
        defer { app.remove() }
        let log = LogRecorder()
        let server = try await MicrolithServer.start(appDirectory: app.path, environment: [:], logger: log.logger()) { c in
            c.http.port = 0
            c.mqtt.port = taken.port
            c.store.directory = app.file("data")
            c.logLevel = "debug"
        }
        let announced = Mutex(false)
        let error = await #expect(throws: RuntimeError.self) {
            try await server.run(gracefulShutdownSignals: []) { _ in announced.withLock { $0 = true } }
        }
        #expect(error?.message.contains("cannot listen for MQTT on 127.0.0.1:\(taken.port)") == true)
        #expect(!announced.withLock { $0 }, "the HTTP server served although the MQTT port was taken")
        #expect(server.store.isClosed)
        #expect(log.messages.filter { $0 == "store closed" }.count == 1)
    }

    @Test func aShutdownAskedForBeforeTheRunEndsItAtOnce() async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema])
        defer { app.remove() }
        let log = LogRecorder()
        let server = try await MicrolithServer.start(appDirectory: app.path, environment: [:], logger: log.logger()) { c in
            c.http.port = 0
            c.mqtt.enabled = false
            c.store.directory = app.file("data")
            c.logLevel = "debug"
        }
        await server.triggerGracefulShutdown()
        try await server.run()
        #expect(server.store.isClosed)
        #expect(log.messages.filter { $0 == "store closed" }.count == 1)
        // A server runs once: its store is closed.
        await #expect(throws: RuntimeError.self) { try await server.run() }
    }
}
