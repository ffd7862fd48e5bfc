import NIOCore
import NIOHTTP1

/// Stands in for the router behind NIO's HTTP codec in pipeline tests: answers every complete
/// request with `200` and `body`, recording the heads it saw.
final class RecordingResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let body: String
    var heads: [HTTPRequestHead] = []

    init(body: String = "") {
        self.body = body
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): heads.append(head)
        case .body: break
        case .end:
            var response = HTTPResponseHead(version: .http1_1, status: .ok)
            response.headers.add(name: "content-length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(response)), promise: nil)
            if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
