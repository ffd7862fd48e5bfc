import Foundation
import NIOCore
import NIOPosix

/// Answers every request with the same bytes and closes: a `Connection: close` client's
/// request, as cheaply as NIO allows (one handler, no HTTP parser, no tasks).
final class FixedAnswer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let response: ByteBuffer
    private var seen: [UInt8] = []
    private var answered = false

    init(response: ByteBuffer) {
        self.response = response
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let bytes = unwrapInboundIn(data)
        seen += bytes.readableBytesView
        // The request head ends at the first empty line.
        guard seen.count >= 4, seen.suffix(4) == [13, 10, 13, 10] else { return }
        answered = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in channel.close(promise: nil) }
    }
}

@main
struct NIOFloor {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, let port = Int(arguments[1]) else {
            print("usage: NIOFloor PORT BODY-FILE")
            throw ExitCode()
        }
        let body = try String(contentsOfFile: arguments[2], encoding: .utf8)
        var head = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        head += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        let response = ByteBuffer(string: head + body)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FixedAnswer(response: response)) }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        print("listening on \(port)")
        try channel.closeFuture.wait()
    }
}

struct ExitCode: Error {}
