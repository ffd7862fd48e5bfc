public import Logging
public import NIOCore
public import NIOPosix
import Synchronization

/// A client of a NATS server (or a cluster of them), on SwiftNIO.
///
/// `connect` tries the servers of the list in turn until one takes the handshake (`INFO`,
/// `CONNECT`, `PING`/`PONG`). When the connection is lost afterwards, the client reconnects on
/// its own, across the list and the servers the cluster announced, waiting a little longer after
/// each round of failures; it subscribes again on the new connection, and what was published
/// meanwhile (up to ``Configuration/reconnectBufferBytes``) is sent there, in order. A request in
/// flight when the connection drops gets no answer and times out. Every ``Configuration/pingInterval``
/// the client pings the server; a server that leaves ``Configuration/maximumPingsOut`` pings
/// unanswered is taken for dead and the connection replaced.
///
/// Call ``close()`` when done with it: until then it keeps its connection, and keeps
/// reconnecting when that is lost.
public final class NATSClient: Sendable {
    /// How the client connects and behaves.
    public struct Configuration: Sendable {
        /// The servers to try, in order.
        public var servers: [NATSServerAddress]
        /// Name and credentials for `CONNECT`.
        public var options: NATSConnectOptions
        /// How long one attempt (TCP connect and handshake) may take.
        public var connectTimeout: Duration = .seconds(5)
        /// The wait after the first round of failed reconnect attempts; it doubles after each
        /// round, up to ``maximumReconnectWait``.
        public var reconnectWait: Duration = .milliseconds(50)
        public var maximumReconnectWait: Duration = .seconds(2)
        /// How often the server is pinged.
        public var pingInterval: Duration = .seconds(30)
        /// Pings left unanswered before the connection is replaced.
        public var maximumPingsOut = 2
        /// What may be published while reconnecting (bytes as sent); past it, `publish` fails.
        public var reconnectBufferBytes = 8 << 20
        /// Messages a subscription holds for a reader that does not keep up; past it, the
        /// subscription ends with ``NATSError/Kind/slowConsumer``.
        public var maximumPendingMessages = 65_536
        /// The default time a request waits for its answer.
        public var requestTimeout: Duration = .seconds(5)

        public init(servers: [NATSServerAddress], options: NATSConnectOptions = NATSConnectOptions()) {
            self.servers = servers
            self.options = options
        }
    }

    let configuration: Configuration
    let group: any EventLoopGroup
    let logger: Logger
    let inboxPrefix: String
    private let state: Mutex<State>

    private enum Phase {
        case connecting
        case connected(any Channel)
        case reconnecting
        case closed
    }

    private enum PongWaiter {
        case flush(UInt64, CheckedContinuation<Void, any Error>, Scheduled<Void>?)
        /// A keep-alive ping's, or an abandoned flush's.
        case keepAlive
    }

    private struct Subscription {
        var subject: String
        var queueGroup: String?
        var continuation: AsyncThrowingStream<NATSMessage, any Error>.Continuation
        /// The connection its `SUB` was last sent on.
        var connection: Int
    }

    private struct PendingReply {
        var promise: EventLoopPromise<NATSMessage>
        var timeout: Scheduled<Void>?
    }

    private struct State {
        var phase = Phase.connecting
        var info: NATSServerInfo?
        var servers: [NATSServerAddress]
        var nextServer = 0
        /// Counts connections whose handshake succeeded.
        var connection = 0
        var nextSID: UInt64 = 1
        var subscriptions: [String: Subscription] = [:]
        var inboxSID: String?
        var pongWaiters: [PongWaiter] = []
        /// The connection being set up, whose handshake already carried `SUB`s.
        var establishing: Int?
        var nextFlush: UInt64 = 0
        var pingsOut = 0
        var nextReply: UInt64 = 0
        var replies: [UInt64: PendingReply] = [:]
        var buffered = ByteBuffer()
        var reconnects = 0
        var reconnectTask: Task<Void, Never>?
        var pingTimer: RepeatedTask?
    }

    /// A client that is not connected (`connect` connects one).
    init(configuration: Configuration, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.inboxPrefix = "_INBOX." + Self.randomToken()
        self.state = Mutex(State(servers: configuration.servers))
    }

    /// Connects to the first server of `configuration` that takes the handshake.
    public static func connect(
        _ configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "microlith.nats")
    ) async throws -> NATSClient {
        guard !configuration.servers.isEmpty else { throw NATSError(.invalid, "no NATS server to connect to") }
        let client = NATSClient(configuration: configuration, group: group, logger: logger)
        var failures: [String] = []
        for server in configuration.servers {
            do {
                try await client.establish(server)
                return client
            } catch {
                failures.append("\(server): \(error)")
            }
        }
        await client.close()
        throw NATSError(.connectionFailed, "no NATS server took the connection: \(failures.joined(separator: "; "))")
    }

    // MARK: Publishing and subscribing

    /// What the server said of itself on the current (or last) connection.
    public var serverInfo: NATSServerInfo? { state.withLock { $0.info } }

    /// Whether a connection is up now.
    public var isConnected: Bool {
        state.withLock {
            if case .connected = $0.phase { return true }
            return false
        }
    }

    /// How many times the connection was replaced since `connect`.
    public var reconnectCount: Int { state.withLock { $0.reconnects } }

    /// Publishes `payload` to `subject` (with `headers`; with `replyTo`, the subject answers go
    /// to). It returns once the bytes are handed to the connection (or, while reconnecting, to
    /// the reconnect buffer); ``flush(timeout:)`` waits until the server has read them.
    public func publish(_ subject: String, payload: ByteBuffer, headers: NATSHeaders? = nil, replyTo: String? = nil) throws {
        // Empty headers are none: no HPUB for a server that may not take it.
        let headers = headers.flatMap { $0.fields.isEmpty && $0.status == nil ? nil : $0 }
        let op = NATSClientOperation.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload)
        if let problem = op.problem { throw NATSError(.invalid, problem) }
        if headers != nil, let info = serverInfo, !info.headers {
            throw NATSError(.invalid, "the server (\(info.version)) does not take headers")
        }
        var headerBlock = ByteBuffer()
        headers?.encode(into: &headerBlock)
        // The server's limit counts the header block with the payload.
        if let limit = serverInfo?.maxPayload, headerBlock.readableBytes + payload.readableBytes > limit {
            throw NATSError(
                .invalid,
                "a \(headerBlock.readableBytes + payload.readableBytes)-byte message (headers and payload) is over the server's \(limit)-byte limit")
        }
        var bytes = ByteBuffer()
        op.encode(into: &bytes)
        try send(bytes)
    }

    /// Subscribes to `subject` (`*` and a final `>` match tokens); with `queueGroup`, each
    /// message goes to one subscriber of the group. The subscription ends when its reader stops
    /// iterating, when ``NATSSubscription/unsubscribe()`` is called, or when the client closes.
    public func subscribe(_ subject: String, queueGroup: String? = nil) throws -> NATSSubscription {
        let (stream, continuation) = AsyncThrowingStream<NATSMessage, any Error>.makeStream(
            bufferingPolicy: .bufferingOldest(configuration.maximumPendingMessages))
        let sid = try addSubscription(subject, queueGroup: queueGroup, continuation: continuation)
        continuation.onTermination = { [weak self] _ in self?.removeSubscription(sid) }
        return NATSSubscription(sid: sid, subject: subject, messages: stream, client: self)
    }

    /// Sends `payload` to `subject` and waits for the first answer: a message to a fresh reply
    /// subject of this client's inbox. A request nobody subscribes to fails at once with
    /// ``NATSError/Kind/noResponders``; one left unanswered fails after `timeout` (default
    /// ``Configuration/requestTimeout``).
    public func request(
        _ subject: String, payload: ByteBuffer, headers: NATSHeaders? = nil, timeout: Duration? = nil
    ) async throws
        -> NATSMessage
    {
        let pending = try send(request: subject, payload: payload, headers: headers, timeout: timeout)
        return try await withTaskCancellationHandler {
            try await pending.answer.get()
        } onCancel: {
            finishReply(pending.token, .failure(CancellationError()))
        }
    }

    /// Sends a request now and returns the answer to come: requests sent one after the other
    /// from one task reach the server in that order, and their answers can be awaited later,
    /// so many are in flight at once (``request(_:payload:headers:timeout:)`` sends one and
    /// waits for it).
    public func send(
        request subject: String, payload: ByteBuffer, headers: NATSHeaders? = nil, timeout: Duration? = nil
    ) throws
        -> NATSPendingRequest
    {
        let timeout = timeout ?? configuration.requestTimeout
        let loop = group.any()
        let promise = loop.makePromise(of: NATSMessage.self)
        let token: UInt64
        do {
            token = try state.withLock { s -> UInt64 in
                if case .closed = s.phase { throw NATSError(.closed, "the NATS client is closed") }
                s.nextReply += 1
                s.replies[s.nextReply] = PendingReply(promise: promise, timeout: nil)
                return s.nextReply
            }
        } catch {
            promise.fail(error)
            throw error
        }
        let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout.nanoseconds))) { [weak self] () -> Void in
            self?.finishReply(token, .failure(NATSError(.timeout, "no answer from '\(subject)' within \(timeout)")))
        }
        state.withLock { s in
            if s.replies[token] != nil { s.replies[token]?.timeout = timer } else { timer.cancel() }
        }
        do {
            try publish(subject, payload: payload, headers: headers, replyTo: "\(inboxPrefix).\(token)")
        } catch {
            finishReply(token, .failure(error))
            throw error
        }
        return NATSPendingRequest(token: token, answer: promise.futureResult)
    }

    /// Waits until the server has read everything sent before (a `PING` and its `PONG`).
    public func flush(timeout: Duration = .seconds(5)) async throws {
        let id = state.withLock { s -> UInt64 in
            s.nextFlush += 1
            return s.nextFlush
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let channel = state.withLock { s -> (any Channel)? in
                    guard case .connected(let channel) = s.phase else { return nil }
                    return channel
                }
                guard let channel else {
                    continuation.resume(throwing: NATSError(.disconnected, "not connected to a NATS server"))
                    return
                }
                // The waiter joins the queue and its PING goes out in one step on the
                // connection's loop, where keep-alive pings are sent too: the PONGs answer the
                // queue in order. Writes made before this call reach the loop before it does.
                channel.eventLoop.execute {
                    // Scheduled on this loop, the timeout cannot fire before this task is done.
                    let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.nanoseconds))) { [weak self] () -> Void in
                        self?.abandonFlush(id, NATSError(.timeout, "the NATS server did not answer a PING within \(timeout)"))
                    }
                    let registered = self.state.withLock { s -> Bool in
                        guard case .connected(let current) = s.phase, current === channel else { return false }
                        s.pongWaiters.append(.flush(id, continuation, timer))
                        return true
                    }
                    guard registered else {
                        timer.cancel()
                        continuation.resume(throwing: NATSError(.disconnected, "the NATS connection was lost"))
                        return
                    }
                    channel.writeAndFlush(ByteBuffer(staticString: "PING\r\n"), promise: nil)
                }
            }
        } onCancel: {
            abandonFlush(id, CancellationError())
        }
    }

    /// Gives up waiting for flush `id`; its `PONG`, when it comes, is taken without a waiter.
    private func abandonFlush(_ id: UInt64, _ error: any Error) {
        let continuation = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            for (i, waiter) in s.pongWaiters.enumerated() {
                if case .flush(id, let continuation, let timer) = waiter {
                    timer?.cancel()
                    s.pongWaiters[i] = .keepAlive
                    return continuation
                }
            }
            return nil
        }
        continuation?.resume(throwing: error)
    }

    /// Closes the connection and ends every subscription and waiting call. Idempotent.
    public func close() async {
        let (channel, task, subscriptions, waiters, replies, timer) = state.withLock {
            s -> (
                (any Channel)?, Task<Void, Never>?, [Subscription], [PongWaiter], [PendingReply], RepeatedTask?
            ) in
            var channel: (any Channel)?
            if case .connected(let c) = s.phase { channel = c }
            s.phase = .closed
            defer {
                s.subscriptions = [:]
                s.pongWaiters = []
                s.replies = [:]
                s.reconnectTask = nil
                s.pingTimer = nil
            }
            return (channel, s.reconnectTask, Array(s.subscriptions.values), s.pongWaiters, Array(s.replies.values), s.pingTimer)
        }
        task?.cancel()
        timer?.cancel()
        let closed = NATSError(.closed, "the NATS client is closed")
        for subscription in subscriptions { subscription.continuation.finish() }
        for case .flush(_, let c, let timer) in waiters {
            timer?.cancel()
            c.resume(throwing: closed)
        }
        for reply in replies {
            reply.timeout?.cancel()
            reply.promise.fail(closed)
        }
        if let channel {
            try? await channel.close()
        }
    }

    // MARK: Internals

    func unsubscribe(_ sid: String) {
        removeSubscription(sid)
    }

    private func addSubscription(
        _ subject: String, queueGroup: String?, continuation: AsyncThrowingStream<NATSMessage, any Error>.Continuation
    ) throws -> String {
        let (sid, channel) = try state.withLock { s -> (String, (any Channel)?) in
            if case .closed = s.phase { throw NATSError(.closed, "the NATS client is closed") }
            let sid = String(s.nextSID)
            let op = NATSClientOperation.subscribe(subject: subject, queueGroup: queueGroup, sid: sid)
            if let problem = op.problem { throw NATSError(.invalid, problem) }
            s.nextSID += 1
            var channel: (any Channel)?
            if case .connected(let c) = s.phase { channel = c }
            // While connecting or reconnecting, the next handshake (or its catch-up) sends it.
            s.subscriptions[sid] = Subscription(
                subject: subject, queueGroup: queueGroup, continuation: continuation, connection: channel == nil ? -1 : s.connection)
            return (sid, channel)
        }
        if let channel {
            var bytes = ByteBuffer()
            NATSClientOperation.subscribe(subject: subject, queueGroup: queueGroup, sid: sid).encode(into: &bytes)
            channel.writeAndFlush(bytes, promise: nil)
        }
        return sid
    }

    private func removeSubscription(_ sid: String) {
        let (removed, channel) = state.withLock { s -> (Subscription?, (any Channel)?) in
            guard let removed = s.subscriptions.removeValue(forKey: sid) else { return (nil, nil) }
            if case .connected(let c) = s.phase, removed.connection == s.connection { return (removed, c) }
            if removed.connection == s.establishing {
                // Sent on the connection being set up: take it back there too.
                NATSClientOperation.unsubscribe(sid: sid, after: nil).encode(into: &s.buffered)
            }
            return (removed, nil)
        }
        guard let removed else { return }
        removed.continuation.finish()
        if let channel {
            var bytes = ByteBuffer()
            NATSClientOperation.unsubscribe(sid: sid, after: nil).encode(into: &bytes)
            channel.writeAndFlush(bytes, promise: nil)
        }
    }

    /// Hands `bytes` to the connection, or to the reconnect buffer while there is none.
    private func send(_ bytes: ByteBuffer) throws {
        let channel = try state.withLock { s -> (any Channel)? in
            switch s.phase {
            case .connected(let channel):
                return channel
            case .connecting, .reconnecting:
                guard s.buffered.readableBytes + bytes.readableBytes <= configuration.reconnectBufferBytes else {
                    throw NATSError(
                        .bufferFull, "not connected, and the reconnect buffer (\(configuration.reconnectBufferBytes) bytes) is full")
                }
                s.buffered.writeImmutableBuffer(bytes)
                return nil
            case .closed:
                throw NATSError(.closed, "the NATS client is closed")
            }
        }
        channel?.writeAndFlush(bytes, promise: nil)
    }

    private func finishReply(_ token: UInt64, _ result: Result<NATSMessage, any Error>) {
        guard let reply = state.withLock({ $0.replies.removeValue(forKey: token) }) else { return }
        reply.timeout?.cancel()
        reply.promise.completeWith(result)
    }

    /// What the connection's handler hands over once the handshake is done.
    private func received(_ op: NATSServerOperation) {
        switch op {
        case .message(let message):
            deliver(message)
        case .pong:
            let waiter = state.withLock { s -> PongWaiter? in
                s.pingsOut = 0
                return s.pongWaiters.isEmpty ? nil : s.pongWaiters.removeFirst()
            }
            if case .flush(_, let c, let timer)? = waiter {
                timer?.cancel()
                c.resume()
            }
        case .info(let info):
            learn(info)
        case .error(let text):
            logger.warning("NATS server error: \(text)")
        case .ping, .ok:
            break
        }
    }

    private func deliver(_ message: NATSMessage) {
        if message.sid == state.withLock({ $0.inboxSID }) {
            let prefix = inboxPrefix + "."
            guard message.subject.hasPrefix(prefix), let token = UInt64(message.subject.dropFirst(prefix.count)) else { return }
            if message.status == 503 {
                finishReply(token, .failure(NATSError(.noResponders, "nobody answers requests on that subject (503 no responders)")))
            } else {
                finishReply(token, .success(message))
            }
            return
        }
        guard let subscription = state.withLock({ $0.subscriptions[message.sid] }) else { return }
        if case .dropped = subscription.continuation.yield(message) {
            logger.warning(
                "NATS subscription to \(subscription.subject) ended: its reader fell \(configuration.maximumPendingMessages) messages behind")
            subscription.continuation.finish(
                throwing: NATSError(
                    .slowConsumer, "the subscription to '\(subscription.subject)' fell \(configuration.maximumPendingMessages) messages behind"))
        }
    }

    /// Keeps what `info` says: its limits, and the cluster's other servers for reconnects.
    private func learn(_ info: NATSServerInfo) {
        state.withLock { s in
            s.info = info
            for url in info.connectURLs {
                guard let address = try? NATSServerAddress(parsing: url),
                    !s.servers.contains(where: { $0.host == address.host && $0.port == address.port })
                else { continue }
                s.servers.append(address)
            }
        }
    }

    /// Opens a connection to `server` and completes the handshake on it, with the
    /// subscriptions (sent again) and what waited in the reconnect buffer.
    private func establish(_ server: NATSServerAddress) async throws {
        let loop = group.any()
        let deliver: @Sendable (NATSServerOperation) -> Void = { [weak self] op in self?.received(op) }
        let closed: @Sendable (any Channel, String) -> Void = { [weak self] channel, reason in self?.lost(channel, reason: reason) }
        let timeout = TimeAmount.nanoseconds(Int64(configuration.connectTimeout.nanoseconds))
        let parser = NATSParser()
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                let handler = NATSChannelHandler(eventLoop: channel.eventLoop, deliver: deliver, closed: closed)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(ByteToMessageHandler(NATSFrameDecoder(parser: parser)), handler)
                }
            }
            .connect(host: server.host, port: server.port).get()
        let handler: NATSChannelHandler
        do {
            handler = try await channel.pipeline.handler(type: NATSChannelHandler.self).get()
        } catch {
            try? await channel.close()
            throw NATSError(.connectionFailed, "\(server): the connection closed at once")
        }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            handler.firstInfo.fail(NATSError(.timeout, "\(server) sent no INFO within \(self.configuration.connectTimeout)"))
            handler.ready.fail(NATSError(.timeout, "\(server) did not finish the handshake within \(self.configuration.connectTimeout)"))
        }
        defer { deadline.cancel() }
        do {
            let info = try await handler.firstInfo.futureResult.get()
            learn(info)
            var options = configuration.options
            if server.user != nil || server.password != nil {
                options.user = server.user
                options.password = server.password
            }
            options.headers = info.headers
            options.noResponders = info.headers
            var hello = ByteBuffer()
            NATSClientOperation.connect(options).encode(into: &hello)
            let connection = state.withLock { s -> Int in
                if s.inboxSID == nil {
                    let sid = String(s.nextSID)
                    s.nextSID += 1
                    s.inboxSID = sid
                }
                resubscribe(&s, on: s.connection + 1, into: &hello, all: true)
                return s.connection + 1
            }
            hello.writeStaticString("PING\r\n")
            try await channel.writeAndFlush(hello)
            try await handler.ready.futureResult.get()
            try await catchUp(channel, connection: connection)
            logger.debug("connected to NATS server \(server) (\(info.version))")
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Adds `SUB` for this client's inbox and subscriptions (all, or those not yet sent on
    /// `connection`) to `bytes`, marking them sent there. Called with the lock held.
    private func resubscribe(_ s: inout State, on connection: Int, into bytes: inout ByteBuffer, all: Bool) {
        s.establishing = connection
        if all, let inbox = s.inboxSID {
            NATSClientOperation.subscribe(subject: inboxPrefix + ".*", queueGroup: nil, sid: inbox).encode(into: &bytes)
        }
        for (sid, subscription) in s.subscriptions where all || subscription.connection != connection {
            NATSClientOperation.subscribe(subject: subscription.subject, queueGroup: subscription.queueGroup, sid: sid).encode(into: &bytes)
            s.subscriptions[sid]?.connection = connection
        }
    }

    /// Sends what was published (and subscribed) while the handshake ran, then takes the
    /// connection into use, so that nothing sent later overtakes it. Publishes it could not
    /// send go back to the front of the reconnect buffer for the next connection.
    private func catchUp(_ channel: any Channel, connection: Int) async throws {
        while true {
            var subscriptions = ByteBuffer()
            let published = try state.withLock { s -> ByteBuffer? in
                if case .closed = s.phase { throw NATSError(.closed, "the NATS client is closed") }
                resubscribe(&s, on: connection, into: &subscriptions, all: false)
                let published = s.buffered
                s.buffered.clear()
                guard subscriptions.readableBytes == 0 && published.readableBytes == 0 else { return published }
                s.connection = connection
                s.establishing = nil
                s.phase = .connected(channel)
                s.pingsOut = 0
                s.pongWaiters = []
                return nil
            }
            guard let published else { break }
            do {
                try await channel.writeAndFlush(subscriptions)
                try await channel.writeAndFlush(published)
            } catch {
                state.withLock { s in
                    var restored = published
                    restored.writeImmutableBuffer(s.buffered)
                    s.buffered = restored
                }
                throw error
            }
        }
        startPinging(channel)
        // A close the handler reported before the connection was taken into use went unheard.
        if !channel.isActive { lost(channel, reason: "the connection closed") }
    }

    private func startPinging(_ channel: any Channel) {
        let interval = TimeAmount.nanoseconds(Int64(configuration.pingInterval.nanoseconds))
        let timer = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self else {
                task.cancel()
                return
            }
            let stale = self.state.withLock { s -> Bool? in
                guard case .connected(let current) = s.phase, current === channel else { return nil }
                if s.pingsOut >= self.configuration.maximumPingsOut { return true }
                s.pingsOut += 1
                s.pongWaiters.append(.keepAlive)
                return false
            }
            switch stale {
            case nil:
                task.cancel()
            case true?:
                self.logger.warning("NATS server left \(self.configuration.maximumPingsOut) pings unanswered: reconnecting")
                task.cancel()
                channel.close(promise: nil)
            case false?:
                channel.writeAndFlush(ByteBuffer(staticString: "PING\r\n"), promise: nil)
            }
        }
        let previous = state.withLock { s -> RepeatedTask? in
            defer { s.pingTimer = timer }
            return s.pingTimer
        }
        previous?.cancel()
    }

    /// The connection `channel` ended: fail what waited on it and reconnect.
    private func lost(_ channel: any Channel, reason: String) {
        let waiters = state.withLock { s -> [PongWaiter]? in
            guard case .connected(let current) = s.phase, current === channel else { return nil }
            s.phase = .reconnecting
            s.reconnects += 1
            defer { s.pongWaiters = [] }
            s.reconnectTask = Task { [weak self] in await self?.reconnect() }
            return s.pongWaiters
        }
        guard let waiters else { return }
        logger.warning("lost the NATS connection (\(reason)); reconnecting")
        let error = NATSError(.disconnected, "the NATS connection was lost: \(reason)")
        for case .flush(_, let c, let timer) in waiters {
            timer?.cancel()
            c.resume(throwing: error)
        }
    }

    private func reconnect() async {
        var wait = configuration.reconnectWait
        while !Task.isCancelled {
            let (servers, start) = state.withLock { s -> ([NATSServerAddress], Int) in
                defer { s.nextServer += 1 }
                return (s.servers, s.nextServer)
            }
            for offset in 0..<servers.count {
                let server = servers[(start + offset) % servers.count]
                if Task.isCancelled { return }
                do {
                    try await establish(server)
                    logger.notice("reconnected to NATS server \(server)")
                    return
                } catch let error as NATSError where error.kind == .closed {
                    return
                } catch {
                    logger.debug("NATS reconnect to \(server) failed: \(error)")
                }
            }
            // Jitter keeps a cluster's clients from all arriving at once.
            let jittered = wait * Double.random(in: 0.8...1.2)
            try? await Task.sleep(for: jittered)
            wait = min(wait * 2, configuration.maximumReconnectWait)
        }
    }

    /// 22 random letters and digits (about 131 bits): inbox names, instance tokens.
    public static func randomToken() -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<22).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }, as: UTF8.self)
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
