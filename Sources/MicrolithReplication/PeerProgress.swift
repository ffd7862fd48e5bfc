public import Logging
public import MicrolithNATS
import Synchronization

/// How far the other nodes have applied this node's change log, from their ``AppliedNotice``s:
/// what a write made with `X-Replicate-To: N` waits on.
public final class PeerProgress: Sendable {
    public let node: String
    public let stream: ReplicationStream
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        /// Per database, per peer, its latest notice.
        var notices: [String: [String: AppliedNotice]] = [:]
        var waiters: [Int: Waiter] = [:]
        /// Waiters whose time ran out before they were registered.
        var expired: Set<Int> = []
        var nextWaiter = 0
    }

    private struct Waiter {
        var database: String
        var sequence: Int64
        var peers: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    public init(node: String, stream: ReplicationStream, logger: Logger) {
        self.node = node
        self.stream = stream
        self.logger = logger
    }

    /// Takes the other nodes' notices until the task is cancelled (or the connection closes).
    public func run(client: NATSClient) async {
        do {
            let subscription = try client.subscribe("\(stream.appliedPrefix).\(node).>")
            defer { subscription.unsubscribe() }
            for try await message in subscription {
                do {
                    record(try AppliedNotice(json: message.payload))
                } catch {
                    logger.warning("replication: a notice of applied changes this node cannot read on \(message.subject): \(error)")
                }
            }
        } catch {
            if !Task.isCancelled { logger.warning("replication: cannot follow other nodes' progress: \(error)") }
        }
    }

    /// Takes one notice, and wakes the waiters it satisfies.
    public func record(_ notice: AppliedNotice) {
        guard notice.node != node else { return }
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { s in
            if let known = s.notices[notice.database]?[notice.node], known.through > notice.through { return [] }
            s.notices[notice.database, default: [:]][notice.node] = notice
            var ready: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in s.waiters where Self.count(s, waiter.database, waiter.sequence) >= waiter.peers {
                ready.append(waiter.continuation)
                s.waiters[id] = nil
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// The other nodes that have applied entry `sequence` of this node's log of `database`.
    public func nodes(applied sequence: Int64, database: String) -> [String] {
        state.withLock { s in (s.notices[database] ?? [:]).filter { $0.value.covers(sequence) }.map(\.key).sorted() }
    }

    private static func count(_ s: State, _ database: String, _ sequence: Int64) -> Int {
        (s.notices[database] ?? [:]).values.filter { $0.covers(sequence) }.count
    }

    /// Waits until `peers` other nodes have applied entry `sequence` of this node's log of
    /// `database`, or `timeout` passes; returns how many had.
    public func wait(database: String, sequence: Int64, peers: Int, timeout: Duration) async -> Int {
        let id: Int? = state.withLock { s in
            guard Self.count(s, database, sequence) < peers else { return nil }
            s.nextWaiter += 1
            return s.nextWaiter
        }
        guard let id else { return nodes(applied: sequence, database: database).count }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now: Bool = self.state.withLock { s in
                        if s.expired.remove(id) != nil || Self.count(s, database, sequence) >= peers { return true }
                        s.waiters[id] = Waiter(database: database, sequence: sequence, peers: peers, continuation: continuation)
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                // Out of time (or the waiter was satisfied and this task cancelled): wake the
                // waiter, or mark it so it does not wait when it registers after this.
                let waiter: Waiter? = self.state.withLock { s in
                    if let waiter = s.waiters.removeValue(forKey: id) { return waiter }
                    s.expired.insert(id)
                    return nil
                }
                waiter?.continuation.resume()
            }
            await group.next()
            group.cancelAll()
        }
        state.withLock { _ = $0.expired.remove(id) }
        return nodes(applied: sequence, database: database).count
    }
}
