import MicrolithJobs
import MicrolithNATS
import MicrolithReplication
import Synchronization

/// What the running replication service holds that a status answer reads: the NATS connection
/// and the applier, once there are, the other nodes' progress, and the lease that decides which node fires schedules.
final class ReplicationMonitor: Sendable {
    private let state = Mutex<(client: NATSClient?, applier: ChangeApplier?, progress: PeerProgress?, lease: ClusterLease?)>((nil, nil, nil, nil))

    func running(client: NATSClient?, applier: ChangeApplier?, progress: PeerProgress?) {
        state.withLock {
            $0.client = client
            $0.applier = applier
            $0.progress = progress
        }
    }

    /// How far the other nodes applied this node's writes (while connected).
    var progress: PeerProgress? { state.withLock { $0.progress } }

    var client: NATSClient? { state.withLock { $0.client } }
    var applier: ChangeApplier? { state.withLock { $0.applier } }

    /// The lease of the schedules (set when the node replicates).
    var lease: ClusterLease? {
        get { state.withLock { $0.lease } }
        set { state.withLock { $0.lease = newValue } }
    }

    /// Whether this node fires the schedules: always alone; in a cluster, while it holds the lease.
    var scheduleTurn: ScheduleTurn {
        guard let lease else { return .fire }
        switch lease.holder {
        case .this: return .fire
        case .other: return .skip
        case .unknown: return .undecided
        }
    }
}
