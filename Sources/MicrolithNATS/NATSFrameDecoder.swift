import NIOCore

/// Turns the bytes of a NATS connection into ``NATSServerOperation``s (a ``NATSParser`` in a
/// NIO pipeline).
struct NATSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = NATSServerOperation

    let parser: NATSParser

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let op = try parser.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(op))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // What is left at the end is an unfinished operation: nothing to deliver.
        guard let op = try parser.next(&buffer) else {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        context.fireChannelRead(wrapInboundOut(op))
        return .continue
    }
}
