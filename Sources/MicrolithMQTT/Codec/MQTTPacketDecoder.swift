package import NIOCore

/// Decodes MQTT packets incrementally from a byte stream.
///
/// It decodes every packet type: the ones a client sends (CONNECT, PUBLISH, the four acks, SUBSCRIBE,
/// UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH) and, for tests and benchmark clients, the ones a server sends
/// (CONNACK, SUBACK, UNSUBACK, PINGRESP). Every violation of the wire format throws an ``MQTTCodecError``
/// whose reason code the server can send in DISCONNECT (or CONNACK) before closing:
///
/// - 0x81 Malformed Packet: reserved packet type 0, wrong fixed-header flags, PUBLISH QoS 3 or DUP at QoS 0,
///   a remaining length over 4 bytes, a field running past the packet's end, bytes left over, bad UTF-8 or
///   U+0000 in a string, bad CONNECT flags or protocol name, unknown or misplaced MQTT 5 properties.
/// - 0x82 Protocol Error: a first packet other than CONNECT (or CONNACK), AUTH in MQTT 3.1.1, a repeated
///   property or a forbidden property value, a PUBLISH topic that is empty (without topic alias) or has wildcards,
///   SUBSCRIBE or UNSUBSCRIBE without filters, MQTT 5 subscription QoS 3 or retain handling 3.
/// - 0x84 Unsupported Protocol Version: CONNECT with protocol name "MQIsdp" (MQTT 3.1) or a level other than 4 and 5.
/// - 0x95 Packet Too Large: a packet larger than `maximumPacketSize`, detected from its fixed header alone.
///
/// A packet identifier of 0 is a Protocol Error in MQTT 5 and, lacking reason codes there, Malformed in MQTT 3.1.1.
/// Topic filters of SUBSCRIBE and UNSUBSCRIBE are not validated (the server answers them per filter), and a
/// repeated CONNECT is decoded like the first (refusing it is the session's business).
package struct MQTTPacketDecoder: Sendable {
    /// The largest packet accepted, in bytes, fixed header included.
    package var maximumPacketSize: Int

    /// The protocol version of the connection: nil until a CONNECT has been decoded (then set from it) or given in init.
    /// Every packet but CONNECT is decoded in this version.
    package var version: MQTTProtocolVersion?

    /// Creates a decoder.
    /// - Parameters:
    ///   - maximumPacketSize: the largest packet accepted, in bytes, fixed header included.
    ///   - version: the protocol version, if known already (a client knows it; a server learns it from CONNECT).
    package init(maximumPacketSize: Int = 1 << 20, version: MQTTProtocolVersion? = nil) {
        self.maximumPacketSize = maximumPacketSize
        self.version = version
    }

    /// Decodes one packet from the front of `buffer` if it holds a whole one, moving the reader index past it;
    /// returns nil, leaving the buffer untouched, if more bytes are needed. On error the buffer is left untouched
    /// and the connection should be closed.
    ///
    /// Header errors are reported as soon as the bytes showing them have arrived: the packet type and flags with
    /// the first byte, and a packet over `maximumPacketSize` once the remaining length is complete, without
    /// waiting for its body.
    package mutating func decode(_ buffer: inout ByteBuffer) throws(MQTTCodecError) -> MQTTPacket? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        let type = try checkFixedHeader(first)

        var remainingLength = 0
        var headerLength = 1
        while true {
            guard let byte = buffer.getInteger(at: start + headerLength, as: UInt8.self) else { return nil }
            remainingLength |= Int(byte & 0x7F) << (7 * (headerLength - 1))
            headerLength += 1
            if byte & 0x80 == 0 { break }
            if headerLength == 5 {
                throw .malformedPacket("\(type.name): the remaining length is a variable byte integer longer than 4 bytes")
            }
        }
        let total = headerLength + remainingLength
        if total > maximumPacketSize {
            throw .packetTooLarge("\(type.name) of \(total) bytes exceeds the maximum packet size of \(maximumPacketSize) bytes")
        }
        guard let body = buffer.getSlice(at: start + headerLength, length: remainingLength) else { return nil }

        let packet = try decodeBody(type: type, flags: first & 0x0F, body: body)
        buffer.moveReaderIndex(forwardBy: total)
        return packet
    }

    /// Checks the first byte of a fixed header: a known type, the flags that type requires,
    /// and that the connection has started the way it must.
    private func checkFixedHeader(_ first: UInt8) throws(MQTTCodecError) -> MQTTPacketType {
        let flags = first & 0x0F
        guard let type = MQTTPacketType(rawValue: first >> 4) else {
            throw .malformedPacket("packet type 0 is reserved")
        }
        if type == .publish {
            if flags & 0x06 == 0x06 { throw .malformedPacket("PUBLISH: QoS is 3") }
            if flags & 0x06 == 0 && flags & 0x08 != 0 { throw .malformedPacket("PUBLISH: DUP is set on a QoS 0 message") }
        } else if flags != type.requiredFlags {
            throw .malformedPacket("\(type.name): fixed header flags must be \(type.requiredFlags), not \(flags)")
        }
        switch version {
        case nil:
            if type != .connect && type != .connack {
                throw .protocolError("the first packet must be CONNECT, not \(type.name)")
            }
        case .v3_1_1:
            if type == .auth { throw .protocolError("AUTH (packet type 15) does not exist in MQTT 3.1.1") }
        case .v5:
            break
        }
        return type
    }

    private mutating func decodeBody(type: MQTTPacketType, flags: UInt8, body: ByteBuffer) throws(MQTTCodecError) -> MQTTPacket {
        var reader = MQTTPacketReader(body, context: type.name)
        if type == .connect {
            let connect = try MQTTConnect.read(from: &reader)
            version = connect.version
            return .connect(connect)
        }
        // Only CONNACK gets here without a version (for clients that did not say theirs):
        // MQTT 3.1.1's always has remaining length 2, MQTT 5's at least 3.
        let version = self.version ?? (body.readableBytes == 2 ? .v3_1_1 : .v5)
        switch type {
        case .connect: preconditionFailure("handled above")
        case .connack: return .connack(try MQTTConnAck.read(from: &reader, version: version))
        case .publish: return .publish(try MQTTPublish.read(from: &reader, flags: flags, version: version))
        case .puback: return .ack(try MQTTAck.read(from: &reader, kind: .puback, version: version))
        case .pubrec: return .ack(try MQTTAck.read(from: &reader, kind: .pubrec, version: version))
        case .pubrel: return .ack(try MQTTAck.read(from: &reader, kind: .pubrel, version: version))
        case .pubcomp: return .ack(try MQTTAck.read(from: &reader, kind: .pubcomp, version: version))
        case .subscribe: return .subscribe(try MQTTSubscribe.read(from: &reader, version: version))
        case .suback: return .suback(try MQTTSubAck.read(from: &reader, version: version))
        case .unsubscribe: return .unsubscribe(try MQTTUnsubscribe.read(from: &reader, version: version))
        case .unsuback: return .unsuback(try MQTTUnsubAck.read(from: &reader, version: version))
        case .pingreq:
            try reader.expectEnd()
            return .pingreq
        case .pingresp:
            try reader.expectEnd()
            return .pingresp
        case .disconnect: return .disconnect(try MQTTDisconnect.read(from: &reader, version: version))
        case .auth: return .auth(try MQTTAuth.read(from: &reader))
        }
    }
}
