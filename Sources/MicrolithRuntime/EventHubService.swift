import Logging
import MicrolithRealtime
import ServiceLifecycle

/// The realtime hub's part in a server's lifecycle: when shutdown reaches it (after the HTTP and
/// MQTT servers, whose subscribers it feeds, have stopped), it ends delivery
/// (``EventHub/stop()``): live subscriptions end and later commits go nowhere.
struct EventHubService: Service, CustomStringConvertible {
    let hub: EventHub
    let logger: Logger

    var description: String { "realtime hub" }

    func run() async throws {
        try? await gracefulShutdown()
        await hub.stop()
        logger.debug("realtime delivery stopped")
    }
}
