import Logging
import Synchronization
import Testing

@testable import MicrolithRuntime

/// A handler that records what it logs and counts how often its metadata was set.
private struct RecordingLogHandler: LogHandler {
    final class Record: Sendable {
        let lines = Mutex<[(message: String, metadata: Logger.Metadata)]>([])
        let metadataSets = Atomic<Int>(0)
    }

    let record: Record
    var logLevel: Logger.Level = .info
    var metadataProvider: Logger.MetadataProvider?
    var metadata: Logger.Metadata = [:] {
        didSet { record.metadataSets.add(1, ordering: .relaxed) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        record.lines.withLock { $0.append(("\(event.message)", metadata.merging(event.metadata ?? [:]) { _, e in e })) }
    }
}

@Suite struct DeferredMetadataLogHandlerTests {
    @Test func settingMetadataReachesTheWrappedHandlerOnlyWhenAMessageIsLogged() {
        let record = RecordingLogHandler.Record()
        var base = Logger(label: "test") { _ in RecordingLogHandler(record: record) }
        base[metadataKey: "node"] = "a"
        let setsBefore = record.metadataSets.load(ordering: .relaxed)
        var logger = DeferredMetadataLogHandler.wrap(base)
        for i in 0..<100 { logger[metadataKey: "request"] = "\(i)" }
        #expect(record.metadataSets.load(ordering: .relaxed) == setsBefore)
        #expect(logger[metadataKey: "request"] == "99")
        #expect(logger[metadataKey: "node"] == "a")

        logger.info("hello", metadata: ["extra": "x"])
        let lines = record.lines.withLock { $0 }
        #expect(lines.count == 1)
        #expect(lines.first?.message == "hello")
        #expect(lines.first?.metadata == ["node": "a", "request": "99", "extra": "x"])
    }

    @Test func levelsRemovalsAndWholeMetadataGoThrough() {
        let record = RecordingLogHandler.Record()
        var logger = DeferredMetadataLogHandler.wrap(Logger(label: "test") { _ in RecordingLogHandler(record: record) })
        logger.logLevel = .warning
        logger[metadataKey: "a"] = "1"
        logger.info("not shown")
        logger[metadataKey: "a"] = nil
        logger.warning("shown")
        logger[metadataKey: "b"] = "2"
        logger.handler.metadata = ["c": "3"]
        logger.error("whole")
        let lines = record.lines.withLock { $0 }
        #expect(lines.map(\.message) == ["shown", "whole"])
        #expect(lines.first?.metadata == [:])
        #expect(lines.last?.metadata == ["c": "3"])
        #expect(DeferredMetadataLogHandler.wrap(logger).handler is DeferredMetadataLogHandler)
    }
}
