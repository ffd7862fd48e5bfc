import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import MicrolithAuth
import MicrolithHTTP
import MicrolithMQTT
import NIOCore
import NIOWebSocket
import Synchronization

/// Decides what a WebSocket upgrade on the HTTP port becomes: MQTT (subprotocol `mqtt`), a
/// subscription to a table URL, or, for a URL naming no subscription, an `error` event and a
/// close with code 4000 + the HTTP status the same request would get.
struct WebSocketUpgrade: Sendable {
    let subscriptions: SubscriptionEndpoint?
    let broker: @Sendable () -> MQTTBroker?
    let maximumMessageBytes: Int
    let policy: BrowserPolicy
    /// Who a subscription's credentials name: the `Authorization` header, or an `access_token`
    /// query parameter (a browser cannot set headers on a WebSocket); `nil`: everyone is anonymous.
    var authenticator: Authenticator? = nil
    /// Whose address a sign-in counts towards (the peer, or what a trusted proxy says it saw).
    var clientAddress = ClientAddress()

    typealias Handler = WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>

    func decide(_ request: HTTPRequest, channel: any Channel) -> ShouldUpgradeResult<Handler> {
        // From here the connection carries WebSocket frames: HTTP deadlines and inspection end.
        HTTPConnectionGuard.upgrading(channel)
        // A page from elsewhere may not open a WebSocket (nor MQTT over one) in its visitor's name.
        if let refusal = policy.refusal(
            method: "GET", authority: request.authority, origin: request.headerFields[.origin],
            fetchSite: request.headerFields[HTTPField.Name("Sec-Fetch-Site")!], upgrade: true)
        {
            return reject(Problem(HTTPResponse.Status(code: refusal.status), refusal.detail, code: refusal.code))
        }
        // Whose address a sign-in counts towards: the peer, or the client a trusted proxy names.
        let address = clientAddress.of(peer: channel.remoteAddress?.ipAddress, headers: request.headerFields)
        let offered = (request.headerFields[.secWebSocketProtocol] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        if let wanted = offered.first(where: { $0 == "mqtt" || $0 == "mqttv3.1" }) {
            guard let broker = broker() else { return reject(Problem(.notFound, "the MQTT broker is turned off on this server")) }
            return .upgrade([.secWebSocketProtocol: wanted]) { inbound, _, _ in
                await Self.serveMQTT(broker: broker, channel: channel, address: address, inbound: inbound)
            }
        }
        guard let subscriptions else { return reject(Problem(.notFound, "this process does not serve tables (it lacks the api role)")) }
        let uri = URI(request.path ?? "/")
        let wanted: SubscriptionEndpoint.Request
        do {
            wanted = try subscriptions.request(path: uri.path, query: uri.query, headers: TableEndpoint.headers(request.headerFields))
        } catch {
            return reject(error)
        }
        let limit = maximumMessageBytes
        let credentials = request.headerFields[.authorization] ?? AuthenticationMiddleware<MicrolithRequestContext>.accessToken(query: uri.query)
        let authenticator = self.authenticator
        return .upgrade([:]) { inbound, outbound, _ in
            do {
                var wanted = wanted
                // The permissions are checked when the subscription starts, for whoever signed in here.
                if let credentials {
                    guard let authenticator else { throw Problem(.unauthorized, "this server has no users to sign in as", code: "unauthorized") }
                    switch await authenticator.authenticate(credentials, address: address) {
                    case .success(let verified):
                        wanted.principal = verified.principal
                        wanted.checkedSince = verified.checked
                    case .failure(let refusal):
                        throw Problem(
                            HTTPResponse.Status(code: refusal.status), refusal.message,
                            code: refusal.status == 429 ? "tooManySignIns" : "unauthorized")
                    }
                }
                try await subscriptions.serveWebSocket(wanted, channel: channel, inbound: inbound, outbound: outbound, maximumMessageBytes: limit)
            } catch {
                let r = SubscriptionEndpoint.rejection(error)
                try? await outbound.write(.text(r.json))
                try? await outbound.close(r.code, reason: r.reason)
            }
        }
    }

    private func reject(_ error: any Error) -> ShouldUpgradeResult<Handler> {
        let r = SubscriptionEndpoint.rejection(error)
        return .upgrade([:]) { _, outbound, _ in
            try await outbound.write(.text(r.json))
            try await outbound.close(r.code, reason: r.reason)
        }
    }

    /// MQTT over WebSocket: binary frames carry the byte stream (packets may span frames). The
    /// broker's writes go to the channel on its event loop, each a binary frame; the client's frames
    /// are read here. Returns when either side ends, and hummingbird-websocket then closes the socket.
    static func serveMQTT(broker: MQTTBroker, channel: any Channel, address: String?, inbound: WebSocketInboundStream) async {
        let transport = WebSocketMQTTTransport(channel: channel, address: address)
        let loop = channel.eventLoop
        let connection = broker.accept(transport)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // The broker closed the connection (after what it wrote: a CONNACK or DISCONNECT explaining why).
                try? await transport.closed.get()
            }
            group.addTask {
                do {
                    for try await frame in inbound {
                        let data = frame.data
                        try await loop.submit { connection.receive(data) }.get()
                        await transport.waitUntilReading()
                    }
                } catch {}
            }
            await group.next()
            // Whichever ended first, the other stops: the wait for `closed` by this, the reader by cancellation.
            transport.end()
            group.cancelAll()
        }
        loop.execute { connection.closed() }
    }
}

/// MQTT bytes to a WebSocket: written to its channel on the event loop, each write one binary
/// frame (through the WebSocket frame encoder, behind hummingbird-websocket's handlers).
final class WebSocketMQTTTransport: MQTTTransport {
    let eventLoop: any EventLoop
    let peer: String
    let address: String?
    private let writes: MQTTChannelWrites
    private let ending: EventLoopPromise<Void>
    /// Whether the connection stopped reading, and the inbound task waiting for it to resume.
    private let reading = Mutex<(paused: Bool, ended: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, false, nil))

    init(channel: any Channel, address: String?) {
        self.eventLoop = channel.eventLoop
        self.peer = "ws:\(channel.remoteAddress?.description ?? "?")"
        self.address = address
        self.writes = MQTTChannelWrites(channel: channel) { NIOAny(WebSocketFrame(fin: true, opcode: .binary, data: $0)) }
        self.ending = channel.eventLoop.makePromise()
    }

    /// Completes once the broker has closed the connection, or the socket is done (``end()``).
    var closed: EventLoopFuture<Void> { ending.futureResult }

    func write(_ bytes: ByteBuffer) { writes.write(bytes) }

    func flush(written: @escaping @Sendable (Int) -> Void) { writes.flush(written: written) }

    func setReading(_ enabled: Bool) {
        let waiter = reading.withLock { r in
            r.paused = !enabled
            return enabled ? r.waiter.take() : nil
        }
        waiter?.resume()
    }

    /// Returns once the connection reads again (at once unless it paused), or the socket is done.
    func waitUntilReading() async {
        guard reading.withLock({ $0.paused && !$0.ended }) else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let now = reading.withLock { r -> Bool in
                    guard r.paused, !r.ended else { return true }
                    r.waiter = waiter
                    return false
                }
                if now { waiter.resume() }
            }
        } onCancel: {
            end()
        }
    }

    /// The socket is done: a paused reader stops waiting, and ``closed`` completes.
    func end() {
        let waiter = reading.withLock { r in
            r.ended = true
            return r.waiter.take()
        }
        waiter?.resume()
        ending.succeed(())
    }

    func close() {
        // After the writes already on their way to the loop (a CONNACK or DISCONNECT explaining why).
        eventLoop.execute { [self] in
            writes.flush { _ in }
            end()
        }
    }
}
