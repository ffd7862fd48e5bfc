import NIOCore

/// Sizes and limits of the MQTT primitive data types.
enum MQTTWire {
    /// The largest value a variable byte integer (and so a remaining length) can hold.
    static let maximumVariableByteInteger = 268_435_455
    /// The largest string or binary data length a two-byte length prefix can describe.
    static let maximumTwoByteLength = 65_535

    /// How many bytes `value` takes as a variable byte integer.
    @inline(__always)
    static func variableByteIntegerSize(_ value: Int) -> Int {
        if value < 128 { return 1 }
        if value < 16_384 { return 2 }
        if value < 2_097_152 { return 3 }
        return 4
    }

    /// How many bytes a UTF-8 string takes with its two-byte length prefix.
    @inline(__always)
    static func stringSize(_ string: String) -> Int {
        2 + string.utf8.count
    }
}

extension ByteBuffer {
    /// Writes the fixed header: the type and flags byte, then the remaining length.
    mutating func writeMQTTFixedHeader(_ type: MQTTPacketType, flags: UInt8 = 0, remainingLength: Int) {
        precondition(
            remainingLength <= MQTTWire.maximumVariableByteInteger,
            "MQTT \(type.name) of \(remainingLength) bytes exceeds the largest remaining length (268,435,455)"
        )
        writeInteger(type.rawValue << 4 | flags)
        writeMQTTVariableByteInteger(remainingLength)
    }

    /// Writes a variable byte integer: seven bits a byte, least significant first, high bit meaning "more".
    mutating func writeMQTTVariableByteInteger(_ value: Int) {
        var rest = value
        repeat {
            var byte = UInt8(truncatingIfNeeded: rest & 0x7F)
            rest >>= 7
            if rest > 0 { byte |= 0x80 }
            writeInteger(byte)
        } while rest > 0
    }

    /// Writes a UTF-8 string with its two-byte length prefix.
    mutating func writeMQTTString(_ string: String) {
        let length = string.utf8.count
        precondition(length <= MQTTWire.maximumTwoByteLength, "MQTT strings are at most 65,535 UTF-8 bytes; got \(length)")
        writeInteger(UInt16(length))
        writeString(string)
    }

    /// Writes binary data with its two-byte length prefix.
    mutating func writeMQTTBinary(_ data: ByteBuffer) {
        let length = data.readableBytes
        precondition(length <= MQTTWire.maximumTwoByteLength, "MQTT binary data is at most 65,535 bytes; got \(length)")
        writeInteger(UInt16(length))
        writeImmutableBuffer(data)
    }
}
