public import Logging

/// A log handler that keeps metadata as it is set and hands it to the handler it wraps only when
/// a message is logged.
///
/// Hummingbird gives every request's logger its own request id. swift-log's `StreamLogHandler`
/// (the logging system's default) formats all of its metadata into text each time a key is set,
/// so every request paid for a formatting no message used. Wrapped, setting a key is a
/// dictionary write; the wrapped handler sees the metadata (and formats it) once per message
/// logged. Whatever the process bootstrapped stays in charge of the output.
public struct DeferredMetadataLogHandler: LogHandler {
    private var wrapped: any LogHandler
    private var added: Logger.Metadata = [:]

    /// Wraps `handler`; the metadata it already has stays.
    public init(wrapping handler: any LogHandler) {
        wrapped = handler
    }

    /// `logger` with its handler wrapped (a logger already wrapped is returned as it is).
    public static func wrap(_ logger: Logger) -> Logger {
        guard !(logger.handler is DeferredMetadataLogHandler) else { return logger }
        return Logger(label: logger.label) { _ in DeferredMetadataLogHandler(wrapping: logger.handler) }
    }

    /// The wrapped handler's level.
    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    /// The wrapped handler's metadata provider.
    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    /// The wrapped handler's metadata with what was set here on top.
    public var metadata: Logger.Metadata {
        get { added.isEmpty ? wrapped.metadata : wrapped.metadata.merging(added) { _, set in set } }
        set {
            added = [:]
            wrapped.metadata = newValue
        }
    }

    /// One metadata value; setting it formats nothing.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { added[key] ?? wrapped[metadataKey: key] }
        set {
            if let newValue {
                added[key] = newValue
            } else {
                added[key] = nil
                if wrapped[metadataKey: key] != nil { wrapped[metadataKey: key] = nil }
            }
        }
    }

    /// Logs through the wrapped handler, with the metadata set here handed over first.
    public func log(event: LogEvent) {
        guard !added.isEmpty else {
            wrapped.log(event: event)
            return
        }
        var handler = wrapped
        handler.metadata = handler.metadata.merging(added) { _, set in set }
        handler.log(event: event)
    }
}
