public import NIOCore

/// Reads what a NATS server sends, one operation at a time, from bytes as they arrive.
///
/// Operation names are read in any case; fields may be separated by spaces or tabs; lines end
/// with CR LF (a bare LF is taken too). A payload must be followed by CR LF. Anything else is a
/// ``NATSProtocolError``, and so is a line or a payload past the limits (a server that never
/// ends its line cannot make the client buffer without bound).
public struct NATSParser: Sendable {
    /// The longest control line taken, `INFO` aside.
    public var maximumControlLine: Int
    /// The longest `INFO` line taken (a cluster's `connect_urls` can make it long).
    public var maximumInfoLine: Int
    /// The largest payload taken (headers and body of one message).
    public var maximumPayload: Int

    public init(maximumControlLine: Int = 4096, maximumInfoLine: Int = 1 << 20, maximumPayload: Int = 64 << 20) {
        self.maximumControlLine = maximumControlLine
        self.maximumInfoLine = maximumInfoLine
        self.maximumPayload = maximumPayload
    }

    /// The next whole operation at the start of `buffer`, whose bytes it consumes; `nil`, with
    /// nothing consumed, while `buffer` holds only part of one.
    public func next(_ buffer: inout ByteBuffer) throws(NATSProtocolError) -> NATSServerOperation? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: 10) else {
            let limit = Self.startsWith(view, "INFO") ? maximumInfoLine : maximumControlLine
            if view.count > limit { throw NATSProtocolError("a control line longer than \(limit) bytes") }
            return nil
        }
        let start = view.startIndex
        let end = lf > start && view[lf - 1] == 13 ? lf - 1 : lf
        let line = view[start..<end]
        let lineBytes = lf - start + 1
        let opEnd = line.firstIndex { $0 == 32 || $0 == 9 } ?? line.endIndex
        let op = line[start..<opEnd]
        let rest = line[opEnd...]
        let isInfo = Self.equals(op, "INFO")
        if line.count > (isInfo ? maximumInfoLine : maximumControlLine) {
            throw NATSProtocolError("a control line longer than \(isInfo ? maximumInfoLine : maximumControlLine) bytes")
        }
        if isInfo {
            let info = try NATSServerInfo.parse(Array(Self.trimmed(rest)))
            buffer.moveReaderIndex(forwardBy: lineBytes)
            return .info(info)
        }
        if Self.equals(op, "MSG") || Self.equals(op, "HMSG") {
            return try message(buffer: &buffer, headers: Self.equals(op, "HMSG"), fields: Self.fields(rest), lineBytes: lineBytes)
        }
        let result: NATSServerOperation
        if Self.equals(op, "-ERR") {
            var text = Self.trimmed(rest)
            if text.count >= 2, text.first == UInt8(ascii: "'"), text.last == UInt8(ascii: "'") { text = text.dropFirst().dropLast() }
            result = .error(String(decoding: text, as: UTF8.self))
        } else {
            if Self.equals(op, "PING") {
                result = .ping
            } else if Self.equals(op, "PONG") {
                result = .pong
            } else if Self.equals(op, "+OK") {
                result = .ok
            } else {
                throw NATSProtocolError("unknown operation '\(String(decoding: op.prefix(20), as: UTF8.self))'")
            }
            guard Self.trimmed(rest).isEmpty else { throw NATSProtocolError("\(String(decoding: op, as: UTF8.self)) takes no arguments") }
        }
        buffer.moveReaderIndex(forwardBy: lineBytes)
        return result
    }

    /// `MSG subject sid [reply] size` or `HMSG subject sid [reply] header-size total-size`,
    /// once its payload and the CR LF after it are there.
    private func message(
        buffer: inout ByteBuffer, headers: Bool, fields: [ByteBufferView.SubSequence], lineBytes: Int
    )
        throws(NATSProtocolError) -> NATSServerOperation?
    {
        let name = headers ? "HMSG" : "MSG"
        let sizes = headers ? 2 : 1
        guard fields.count == 2 + sizes || fields.count == 3 + sizes else {
            throw NATSProtocolError("\(name) takes \(2 + sizes) or \(3 + sizes) fields, got \(fields.count)")
        }
        let total = try Self.size(fields[fields.count - 1], name)
        let headerBytes = headers ? try Self.size(fields[fields.count - 2], name) : 0
        guard headerBytes <= total else { throw NATSProtocolError("HMSG header size \(headerBytes) is more than its total size \(total)") }
        guard total <= maximumPayload else { throw NATSProtocolError("a \(total)-byte message is over the \(maximumPayload)-byte limit") }
        guard buffer.readableBytes >= lineBytes + total + 2 else { return nil }
        let payloadStart = buffer.readerIndex + lineBytes
        guard buffer.getInteger(at: payloadStart + total, as: UInt16.self) == 0x0D0A else {
            throw NATSProtocolError("\(name) payload of \(total) bytes is not followed by CR LF")
        }
        var parsedHeaders: NATSHeaders?
        if headers {
            guard headerBytes > 0, let block = buffer.getSlice(at: payloadStart, length: headerBytes) else {
                throw NATSProtocolError("HMSG with an empty header block")
            }
            parsedHeaders = try NATSHeaders.parse(block.readableBytesView)
        }
        let payload = buffer.getSlice(at: payloadStart + headerBytes, length: total - headerBytes) ?? ByteBuffer()
        let message = NATSMessage(
            subject: String(decoding: fields[0], as: UTF8.self), sid: String(decoding: fields[1], as: UTF8.self),
            replyTo: fields.count == 3 + sizes ? String(decoding: fields[2], as: UTF8.self) : nil, headers: parsedHeaders, payload: payload)
        buffer.moveReaderIndex(forwardBy: lineBytes + total + 2)
        return .message(message)
    }

    private static func size(_ field: ByteBufferView.SubSequence, _ op: String) throws(NATSProtocolError) -> Int {
        guard !field.isEmpty, field.count <= 12, field.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let n = Int(String(decoding: field, as: UTF8.self))
        else {
            throw NATSProtocolError("\(op) size '\(String(decoding: field.prefix(20), as: UTF8.self))' is not a number of bytes")
        }
        return n
    }

    private static func fields(_ text: ByteBufferView.SubSequence) -> [ByteBufferView.SubSequence] {
        text.split { $0 == 32 || $0 == 9 }
    }

    private static func trimmed(_ text: ByteBufferView.SubSequence) -> ByteBufferView.SubSequence {
        let isSpace = { (b: UInt8) in b == 32 || b == 9 }
        guard let first = text.firstIndex(where: { !isSpace($0) }), let last = text.lastIndex(where: { !isSpace($0) }) else {
            return text[text.endIndex...]
        }
        return text[first...last]
    }

    /// Whether `bytes` are `word` (capitals) in any case.
    private static func equals(_ bytes: some Collection<UInt8>, _ word: StaticString) -> Bool {
        let wanted = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        return bytes.count == wanted.count && zip(bytes, wanted).allSatisfy { upper($0) == $1 }
    }

    private static func startsWith(_ bytes: ByteBufferView, _ word: StaticString) -> Bool {
        equals(bytes.prefix(word.utf8CodeUnitCount), word)
    }

    private static func upper(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") ? b - 32 : b
    }
}
