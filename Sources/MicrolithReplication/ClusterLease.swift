import Foundation
public import Logging
public import MicrolithNATS
import NIOCore
import Synchronization

/// A lease that one node of the cluster holds at a time, kept in a JetStream stream: the node
/// that holds the `schedules` lease is the one that fires scheduled tasks.
///
/// The lease is the latest message of its subject (the stream keeps one per subject). A node
/// takes it when the subject is empty, or names no node, or has not changed for a whole
/// ``Configuration/duration`` by this node's own clock; it renews it every third of that
/// duration. Every write names the sequence it replaces (`Nats-Expected-Last-Subject-Sequence`),
/// so of two nodes that try at once only one succeeds.
///
/// A holder counts its lease from the moment it *sent* the renewal and gives it up a tenth of
/// the duration early; another node counts from the moment it *saw* that renewal, which is
/// later. So while clocks run at the same rate, the holder stops before another node starts, and
/// no wall clock is compared across machines. A holder that cannot reach NATS stops holding
/// when its time runs out; a node that cannot reach NATS holds nothing. On a graceful stop the
/// holder frees the lease, so another node takes it within a third of the duration.
public final class ClusterLease: Sendable {
    /// Where the lease is kept and how long it lasts.
    public struct Configuration: Sendable, Equatable {
        /// The stream that keeps leases (one message per subject).
        public var stream: String
        /// The first token(s) of every lease's subject: the stream takes `<subjectPrefix>.>`.
        public var subjectPrefix: String
        /// The lease's name (one or more tokens): its subject is `<subjectPrefix>.<name>`.
        public var name: String
        /// How long a lease lasts without renewal.
        public var duration: Duration
        /// Copies the stream keeps in a JetStream cluster.
        public var replicas: Int

        public init(
            name: String, stream: String = "MICROLITH_LEASES", subjectPrefix: String = "microlith.lease", duration: Duration = .seconds(10),
            replicas: Int = 1
        ) {
            self.name = name
            self.stream = stream
            self.subjectPrefix = subjectPrefix
            self.duration = duration
            self.replicas = replicas
        }

        /// The lease's subject.
        public var subject: String { "\(subjectPrefix).\(name)" }
    }

    /// Who holds the lease, as far as this node knows.
    public enum Holder: Sendable, Equatable, CustomStringConvertible {
        /// Not known yet (no answer from NATS), or this node's own lease ran out unrenewed.
        case unknown
        /// This node, until its time runs out.
        case this
        /// Another node, by name.
        case other(String)

        public var description: String {
            switch self {
            case .unknown: return "unknown"
            case .this: return "this node"
            case .other(let node): return node
            }
        }
    }

    public let node: String
    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var holder = Holder.unknown
        /// Until when this node holds it (`holder == .this`).
        var validUntil: ContinuousClock.Instant?
        /// The latest sequence of the subject seen, and when this node first saw it.
        var seen: (sequence: UInt64, at: ContinuousClock.Instant)?
        /// When the subject was last read.
        var lastRead: ContinuousClock.Instant?
    }

    private struct Value: Codable {
        /// The holder, or empty when the lease was given up.
        var node: String
    }

    public init(node: String, configuration: Configuration, logger: Logger) {
        self.node = node
        self.configuration = configuration
        self.logger = logger
    }

    /// Who holds the lease now: this node only while its time has not run out; another node
    /// only while it renews it (the lease moved, and was read, within three quarters of a
    /// duration). Otherwise nobody is known: a holder that stopped renewing may be
    /// gone, and what it would have fired waits for the next holder instead of being passed over.
    public var holder: Holder {
        state.withLock { s in
            let now = ContinuousClock.now
            switch s.holder {
            case .this:
                if let until = s.validUntil, until <= now { return .unknown }
            case .other:
                // Renewed every third of a duration, read as often: three quarters without a
                // change, or without a read, is a holder that stopped.
                let limit = configuration.duration * 3 / 4
                guard let read = s.lastRead, now - read < limit, let seen = s.seen, now - seen.at < limit else { return .unknown }
            case .unknown:
                break
            }
            return s.holder
        }
    }

    /// Whether this node holds the lease now.
    public var isHeld: Bool { holder == .this }

    /// Keeps trying to take or renew the lease until the task is cancelled; then frees it if
    /// this node holds it.
    public func run(jetStream: NATSJetStream) async {
        var prepared = false
        while !Task.isCancelled {
            do {
                if !prepared {
                    try await prepare(jetStream)
                    prepared = true
                }
                try await step(jetStream)
            } catch let error as NATSJetStreamError where error.errorCode == 10071 {
                // Another node wrote first: read again at once.
                logger.debug("lease \(configuration.subject): another node wrote first (\(error))")
                continue
            } catch {
                if !Task.isCancelled {
                    logger.warning("lease \(configuration.subject): cannot reach NATS: \(error)")
                }
            }
            try? await Task.sleep(for: configuration.duration / 3)
        }
        // Not in this cancelled task: its requests would end at once.
        await Task { await self.release(jetStream) }.value
    }

    /// Creates the stream of leases unless it exists.
    func prepare(_ jetStream: NATSJetStream) async throws {
        let stream = NATSStreamConfiguration(
            name: configuration.stream, subjects: ["\(configuration.subjectPrefix).>"],
            replicas: configuration.replicas, maximumMessagesPerSubject: 1)
        do {
            _ = try await jetStream.createStream(stream)
        } catch let error as NATSJetStreamError where error.code == 400 {
            _ = try await jetStream.streamInfo(configuration.stream)  // it exists (with its own settings)
        }
    }

    /// One round: reads the lease, and takes or renews it when this node may.
    func step(_ jetStream: NATSJetStream) async throws {
        let latest = try await jetStream.lastMessage(stream: configuration.stream, subject: configuration.subject)
        // Counted from after the read: the holder's renewal was sent before.
        let now = ContinuousClock.now
        let current = latest.flatMap { try? JSONDecoder().decode(Value.self, from: Data($0.payload.readableBytesView)) }?.node ?? ""
        let sequence = latest?.sequence ?? 0
        let takeOver: Bool = state.withLock { s in
            s.lastRead = now
            if s.seen?.sequence != sequence { s.seen = (sequence, now) }
            if current.isEmpty || current == node { return true }
            if let seen = s.seen, now - seen.at >= configuration.duration { return true }
            s.holder = .other(current)
            s.validUntil = nil
            return false
        }
        guard takeOver else { return }
        let sent = ContinuousClock.now
        let ack = try await write(jetStream, node: node, replacing: sequence)
        let was = state.withLock { s in
            let was = s.holder
            s.holder = .this
            s.validUntil = sent + configuration.duration - configuration.duration / 10
            s.seen = (ack.sequence, sent)
            return was
        }
        if was != .this {
            logger.notice("lease \(configuration.subject): node \(node) holds it (from \(current.isEmpty ? "nobody" : current))")
        }
    }

    /// Frees the lease if this node holds it, so another takes it without waiting it out.
    func release(_ jetStream: NATSJetStream) async {
        let sequence: UInt64? = state.withLock { s in
            defer {
                s.holder = .unknown
                s.validUntil = nil
            }
            return s.holder == .this ? s.seen?.sequence : nil
        }
        guard let sequence else { return }
        do {
            _ = try await write(jetStream, node: "", replacing: sequence)
            logger.info("lease \(configuration.subject): node \(node) gave it up")
        } catch {
            logger.warning("lease \(configuration.subject): cannot give it up (another node takes it when it runs out): \(error)")
        }
    }

    private func write(_ jetStream: NATSJetStream, node: String, replacing sequence: UInt64) async throws -> NATSPublishAck {
        var headers = NATSHeaders()
        headers["Nats-Expected-Last-Subject-Sequence"] = String(sequence)
        let payload = ByteBuffer(bytes: try JSONEncoder().encode(Value(node: node)))
        return try await jetStream.publish(configuration.subject, payload: payload, headers: headers)
    }
}
