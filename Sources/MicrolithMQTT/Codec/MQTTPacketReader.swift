import NIOCore

/// Reads the fields of one packet body (or of one property section), checking every read
/// against its end so that nothing is read past the bytes the packet declared.
struct MQTTPacketReader {
    /// The unread rest of the body.
    var buffer: ByteBuffer
    /// The packet's name, starting every error message ("PUBLISH", "CONNECT", ...).
    let context: String
    /// The part of the packet being read, if not the whole body ("properties", "will properties").
    let section: String?

    init(_ buffer: ByteBuffer, context: String, section: String? = nil) {
        self.buffer = buffer
        self.context = context
        self.section = section
    }

    var remaining: Int { buffer.readableBytes }
    var isAtEnd: Bool { buffer.readableBytes == 0 }

    // Field names are autoclosures: error messages are built only when there is an error.

    func malformed(_ message: String) -> MQTTCodecError {
        .malformedPacket("\(location): \(message)")
    }

    func protocolError(_ message: String) -> MQTTCodecError {
        .protocolError("\(location): \(message)")
    }

    func truncated(_ field: String) -> MQTTCodecError {
        malformed("\(field) runs past the end of the \(section ?? "packet")")
    }

    /// `text` quoted for an error message, shortened to 64 characters: it comes from the peer.
    static func quoted(_ text: String) -> String {
        text.count <= 64 ? text.debugDescription : String(text.prefix(64)).debugDescription + "…"
    }

    private var location: String {
        guard let section else { return context }
        return "\(context) \(section)"
    }

    mutating func readByte(_ field: @autoclosure () -> String) throws(MQTTCodecError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw truncated(field()) }
        return value
    }

    mutating func readUInt16(_ field: @autoclosure () -> String) throws(MQTTCodecError) -> UInt16 {
        guard let value = buffer.readInteger(as: UInt16.self) else { throw truncated(field()) }
        return value
    }

    mutating func readUInt32(_ field: @autoclosure () -> String) throws(MQTTCodecError) -> UInt32 {
        guard let value = buffer.readInteger(as: UInt32.self) else { throw truncated(field()) }
        return value
    }

    /// Reads a variable byte integer of at most four bytes.
    mutating func readVariableByteInteger(_ field: @autoclosure () -> String) throws(MQTTCodecError) -> Int {
        var value = 0
        var shift = 0
        for _ in 0..<4 {
            let byte = try readByte(field())
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw malformed("\(field()) is a variable byte integer longer than 4 bytes")
    }

    mutating func readSlice(length: Int, _ field: @autoclosure () -> String) throws(MQTTCodecError) -> ByteBuffer {
        guard let slice = buffer.readSlice(length: length) else { throw truncated(field()) }
        return slice
    }

    /// Reads binary data: a two-byte length, then that many bytes.
    mutating func readBinary(_ field: @autoclosure () -> String) throws(MQTTCodecError) -> ByteBuffer {
        guard let length = buffer.readInteger(as: UInt16.self) else { throw truncated("\(field()) length") }
        return try readSlice(length: Int(length), field())
    }

    /// Reads a UTF-8 string: a two-byte length, then well-formed UTF-8 without U+0000.
    mutating func readString(_ field: @autoclosure () -> String) throws(MQTTCodecError) -> String {
        var containsWildcard = false
        return try readString(field(), containsWildcard: &containsWildcard)
    }

    /// Reads a UTF-8 string, also telling whether it contains `+` or `#` (found in the same pass over the bytes).
    mutating func readString(
        _ field: @autoclosure () -> String,
        containsWildcard: inout Bool
    ) throws(MQTTCodecError) -> String {
        guard let rawLength = buffer.readInteger(as: UInt16.self) else { throw truncated("\(field()) length") }
        let length = Int(rawLength)
        guard length <= buffer.readableBytes else { throw truncated(field()) }
        let checked = buffer.withUnsafeReadableBytes { raw in
            MQTTPacketReader.validatedString(UnsafeRawBufferPointer(rebasing: raw[0..<length]))
        }
        switch checked {
        case .valid(let string, let wildcard):
            buffer.moveReaderIndex(forwardBy: length)
            containsWildcard = wildcard
            return string
        case .containsNull:
            throw malformed("\(field()) contains the null character U+0000")
        case .invalidUTF8:
            throw malformed("\(field()) is not well-formed UTF-8")
        }
    }

    /// Takes all the bytes left.
    mutating func readRest() -> ByteBuffer {
        buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()
    }

    /// Reads a packet identifier; 0 is not allowed. In MQTT 5 that is a Protocol Error
    /// ([MQTT-2.2.1-3]); MQTT 3.1.1 has no reason codes and it is reported as Malformed Packet.
    mutating func readPacketID(version: MQTTProtocolVersion) throws(MQTTCodecError) -> UInt16 {
        let id = try readUInt16("packet identifier")
        if id == 0 {
            let message = "packet identifier must not be 0"
            throw version == .v5 ? protocolError(message) : malformed(message)
        }
        return id
    }

    /// Fails if bytes are left over where the layout says the packet ends.
    func expectEnd() throws(MQTTCodecError) {
        guard buffer.readableBytes == 0 else {
            throw malformed("\(buffer.readableBytes) unexpected byte(s) left at the end of the \(section ?? "packet")")
        }
    }

    enum CheckedString {
        case valid(String, containsWildcard: Bool)
        case containsNull
        case invalidUTF8
    }

    static func validatedString(_ bytes: UnsafeRawBufferPointer) -> CheckedString {
        var ascii = true
        var wildcard = false
        for byte in bytes {
            switch byte {
            case 0: return .containsNull
            case UInt8(ascii: "+"), UInt8(ascii: "#"): wildcard = true
            case 0x80...: ascii = false
            default: break
            }
        }
        if ascii { return .valid(String(decoding: bytes, as: UTF8.self), containsWildcard: wildcard) }
        guard let string = String(validating: bytes, as: UTF8.self) else { return .invalidUTF8 }
        return .valid(string, containsWildcard: wildcard)
    }
}
