import MicrolithNATS
import MicrolithReplication
import Synchronization

/// What the running replication service holds that a status answer reads: the NATS connection
/// and the applier, once there are.
final class ReplicationMonitor: Sendable {
    private let state = Mutex<(client: NATSClient?, applier: ChangeApplier?)>((nil, nil))

    func running(client: NATSClient?, applier: ChangeApplier?) {
        state.withLock { $0 = (client, applier) }
    }

    var client: NATSClient? { state.withLock { $0.client } }
    var applier: ChangeApplier? { state.withLock { $0.applier } }
}
