public import NIOCore

/// The headers of a NATS message: the `NATS/1.0` block that `HPUB` sends and `HMSG` delivers.
///
/// Names keep their case and are compared exactly (`Nats-Msg-Id` and `nats-msg-id` are two
/// names); a name may appear more than once. A message from the server may carry a status in
/// the block's first line instead of, or besides, headers: 503 when a request found no
/// responders, 404 and 408 when a JetStream pull found no messages, 100 for a heartbeat.
public struct NATSHeaders: Sendable, Equatable, Sequence {
    /// The status of the first line (`NATS/1.0 503`), if any.
    public var status: Int?
    /// The words after the status (`No Messages`), or empty.
    public var statusDescription: String
    /// The name and value pairs, in order.
    public private(set) var fields: [Field]

    /// One header line.
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Headers holding `fields`, with no status.
    public init(_ fields: [(name: String, value: String)] = []) {
        self.status = nil
        self.statusDescription = ""
        self.fields = fields.map { Field(name: $0.name, value: $0.value) }
    }

    /// The first value of `name`, or `nil`; setting replaces every value of `name` (`nil`
    /// removes them).
    public subscript(name: String) -> String? {
        get { fields.first { $0.name == name }?.value }
        set {
            guard let newValue else {
                fields.removeAll { $0.name == name }
                return
            }
            if let first = fields.firstIndex(where: { $0.name == name }) {
                fields[first].value = newValue
                fields = Array(fields[...first]) + fields[(first + 1)...].filter { $0.name != name }
            } else {
                fields.append(Field(name: name, value: newValue))
            }
        }
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }

    /// Adds a value for `name` after those it has.
    public mutating func add(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    public func makeIterator() -> IndexingIterator<[Field]> {
        fields.makeIterator()
    }

    /// Why these headers cannot be sent, or `nil`: a name must be printable ASCII without
    /// spaces or `:`, a value must hold no line break, and a status has three digits.
    public var problem: String? {
        if let status, !(100...999).contains(status) { return "a status has three digits, got \(status)" }
        if statusDescription.utf8.contains(where: { $0 == 13 || $0 == 10 }) { return "the status description holds a line break" }
        for field in fields {
            if field.name.isEmpty { return "a header name is empty" }
            if let bad = field.name.utf8.first(where: { $0 <= 32 || $0 >= 127 || $0 == UInt8(ascii: ":") }) {
                return "header name '\(field.name)' holds \(bad == 58 ? "':'" : "byte \(bad)"); names are printable ASCII without spaces or ':'"
            }
            if field.value.utf8.contains(where: { $0 == 13 || $0 == 10 }) { return "the value of header '\(field.name)' holds a line break" }
        }
        return nil
    }

    /// The block as it goes on the wire, ending with the empty line.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("NATS/1.0")
        if let status {
            buffer.writeString(" \(status)")
            if !statusDescription.isEmpty { buffer.writeString(" \(statusDescription)") }
        }
        buffer.writeStaticString("\r\n")
        for field in fields {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// Reads a block (`NATS/1.0[ status[ description]]`, then `Name: Value` lines, then an
    /// empty line; a final empty line may be missing when nothing follows the version line).
    public static func parse(_ block: ByteBufferView) throws(NATSProtocolError) -> NATSHeaders {
        var lines = Self.lines(block)
        guard !lines.isEmpty else { throw NATSProtocolError("an empty header block") }
        let first = lines.removeFirst()
        let version = Array("NATS/1.0".utf8)
        guard first.starts(with: version) else {
            throw NATSProtocolError("a header block must begin with NATS/1.0, got '\(String(decoding: first.prefix(40), as: UTF8.self))'")
        }
        var headers = NATSHeaders()
        let rest = first.dropFirst(version.count)
        if !rest.isEmpty {
            guard rest.first == UInt8(ascii: " ") else { throw NATSProtocolError("a header version line must be NATS/1.0 and a status") }
            let words = rest.dropFirst().drop { $0 == UInt8(ascii: " ") }
            let digits = words.prefix { $0 != UInt8(ascii: " ") }
            if !digits.isEmpty {
                guard digits.count == 3, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                    let status = Int(String(decoding: digits, as: UTF8.self))
                else {
                    throw NATSProtocolError("a header status must be three digits, got '\(String(decoding: digits.prefix(20), as: UTF8.self))'")
                }
                headers.status = status
                headers.statusDescription = String(decoding: words.dropFirst(digits.count).drop { $0 == UInt8(ascii: " ") }, as: UTF8.self)
            }
        }
        for line in lines where !line.isEmpty {
            // Another publisher's malformed line is passed over: it must not cost this client
            // its connection.
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, !name.contains(where: { $0 <= 32 }) else { continue }
            let value = line[line.index(after: colon)...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        return headers
    }

    /// The lines of `block`, each without its CR LF (a bare LF also ends a line).
    private static func lines(_ block: ByteBufferView) -> [ArraySlice<UInt8>] {
        let bytes = Array(block)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for i in bytes.indices where bytes[i] == 10 {
            let end = i > start && bytes[i - 1] == 13 ? i - 1 : i
            lines.append(bytes[start..<end])
            start = i + 1
        }
        if start < bytes.count { lines.append(bytes[start...]) }
        return lines
    }
}
