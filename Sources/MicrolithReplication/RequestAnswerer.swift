public import Logging
public import MicrolithNATS
public import NIOCore

/// Answers NATS requests on some subjects until the task is cancelled: what the repair and resync
/// responders share. A subscription that fails (the connection lost for good, say) is made again
/// after a wait that grows up to 5 s.
public struct RequestAnswerer: Sendable {
    let client: NATSClient
    /// The subjects listened on (wildcards allowed).
    let subjects: [String]
    /// What is answered, for the log ("repair requests").
    let what: String
    let logger: Logger

    public init(client: NATSClient, subjects: [String], what: String, logger: Logger) {
        self.client = client
        self.subjects = subjects
        self.what = what
        self.logger = logger
    }

    /// Answers each request with what `answer` gives (`nil`: no answer, left to another node).
    public func run(_ answer: @escaping @Sendable (NATSMessage) async -> ByteBuffer?) async {
        var wait: Duration = .milliseconds(100)
        while !Task.isCancelled {
            do {
                let subscriptions = try subjects.map { try client.subscribe($0) }
                defer { for subscription in subscriptions { subscription.unsubscribe() } }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for subscription in subscriptions {
                        group.addTask {
                            for try await request in subscription {
                                guard let reply = request.replyTo, let payload = await answer(request) else { continue }
                                try? client.publish(reply, payload: payload)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("replication: answering \(what) failed: \(error)")
                try? await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(5))
            }
        }
    }
}
