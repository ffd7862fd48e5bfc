import Logging
import MicrolithStore
import ServiceLifecycle

/// The store's housekeeping (``Store/runMaintenance()``: expiry sweep, change-log trim,
/// statistics) as a service: it runs from start-up until shutdown reaches it, after the
/// services that use the store and before the store closes.
struct StoreMaintenanceService: Service, CustomStringConvertible {
    let store: Store
    let logger: Logger

    var description: String { "store maintenance" }

    func run() async throws {
        let store = self.store
        await cancelWhenGracefulShutdown { await store.runMaintenance() }
        logger.debug("store maintenance stopped")
    }
}
