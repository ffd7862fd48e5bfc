import Foundation
public import Logging
import MicrolithJSON
import Synchronization

#if canImport(CoreFoundation)
// `timespec` and `tm` resolve to the declarations CoreFoundation re-exports; reading their members
// needs that module imported here (MemberImportVisibility; a whole-module build says so).
import CoreFoundation
#endif

/// The server's log handler: a level per subsystem (``LogLevels``), and lines of text (as
/// swift-log's stream handler writes them) or of JSON, one object per message, on standard error.
///
/// Metadata set on a logger (Hummingbird sets each request's id) is kept as it is and formatted
/// only when a message is logged. A JSON line holds `time` (ISO 8601, UTC, milliseconds),
/// `level`, `source` (the logging module), `message`, `requestId` when the message belongs to a
/// request, and the rest of the metadata under `metadata`.
public struct RuntimeLogHandler: LogHandler {
    /// How lines are written.
    public enum Format: String, Sendable, CaseIterable {
        /// `2026-12-06T07:40:00+0000 info microlith: key=value [MicrolithStore] message`.
        case text
        /// One JSON object per line.
        case json
    }

    private let label: String
    private let format: Format
    private let levels: LogLevels
    private var text: StreamLogHandler
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler for `label` writing `format`, at the levels of `levels`.
    public init(label: String, format: Format, levels: LogLevels) {
        self.label = label
        self.format = format
        self.levels = levels
        self.text = StreamLogHandler.standardError(label: label)
    }

    /// The lowest level any subsystem logs at; setting it sets the level of every subsystem without
    /// one of its own.
    public var logLevel: Logger.Level {
        get { levels.minimum }
        set { levels.set(base: newValue) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard event.level >= levels.level(for: event.source) else { return }
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let own = event.metadata { all.merge(own) { _, new in new } }
        switch format {
        case .text:
            text.log(
                event: LogEvent(
                    level: event.level, message: event.message, metadata: all, source: event.source, file: event.file,
                    function: event.function, line: event.line))
        case .json:
            var object: JSONObject = [
                "time": .string(Self.timestamp()), "level": .string(event.level.rawValue), "source": .string(event.source),
                "message": .string(event.message.description),
            ]
            if let id = all.removeValue(forKey: "hb.request.id") { object["requestId"] = .string(id.description) }
            if !all.isEmpty {
                var fields = JSONObject()
                for (key, value) in all.sorted(by: { $0.key < $1.key }) { fields[key] = Self.json(value) }
                object["metadata"] = .object(fields)
            }
            var line = JSONWriter.encode(.object(object))
            line.append(0x0A)
            Self.output.withLock { _ in FileHandle.standardError.write(Data(line)) }
        }
    }

    /// Lines from several threads stay whole.
    private static let output = Mutex(())

    static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let s): return .string(s.description)
        case .array(let values): return .array(values.map(json))
        case .dictionary(let members):
            var object = JSONObject()
            for (key, value) in members.sorted(by: { $0.key < $1.key }) { object[key] = json(value) }
            return .object(object)
        }
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var moment = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &moment)
        let milliseconds = Int(now.tv_nsec) / 1_000_000
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(moment.tm_year + 1900, 4))-\(pad(moment.tm_mon + 1, 2))-\(pad(moment.tm_mday, 2))T"
            + "\(pad(moment.tm_hour, 2)):\(pad(moment.tm_min, 2)):\(pad(moment.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }
}
