import Logging
import MicrolithModules
import ServiceLifecycle

/// The modules' part in a server's lifecycle: when shutdown reaches it (after everything that
/// calls operations, the HTTP server and the job worker, has stopped) it releases what they hold,
/// such as the connection pool to modules running elsewhere (``Modules/shutdown()``).
struct ModulesService: Service, CustomStringConvertible {
    let modules: Modules
    let logger: Logger

    var description: String { "modules" }

    func run() async throws {
        try? await gracefulShutdown()
        await modules.shutdown()
        logger.debug("modules shut down")
    }
}
