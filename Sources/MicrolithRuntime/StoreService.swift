import Logging
import MicrolithStore
import ServiceLifecycle

/// The store as the first service of a server's lifecycle: it closes the store when it stops,
/// which a graceful shutdown reaches last, once every service that uses the store has ended.
///
/// The store is opened before the lifecycle starts (``MicrolithServer/start(appDirectory:modules:environment:logger:metricsRegistry:configure:)``
/// migrates and seeds it); this service only owns its end. When the group is cancelled instead of
/// shut down gracefully, every service stops at once and the store closes as soon as this one
/// sees the cancellation.
struct StoreService: Service, CustomStringConvertible {
    let store: Store
    let logger: Logger

    var description: String { "store" }

    func run() async throws {
        try? await gracefulShutdown()
        store.close()
        logger.debug("store closed")
    }
}
