import Logging
import MicrolithTLS
import ServiceLifecycle
import UnixSignals

/// Reads the TLS certificate and key again on SIGHUP (a renewed certificate, written by certbot or
/// the like): connections accepted afterwards use the new files, those open keep theirs. Files
/// that cannot be used are logged as an error and the certificate in use stays. Runs only when
/// the server has a certificate (otherwise SIGHUP keeps its default: the process ends).
struct TLSReloadService: Service, CustomStringConvertible {
    let source: TLSContextSource
    let logger: Logger

    var description: String { "TLS reload on SIGHUP" }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                let summary = try source.reload()
                logger.notice("SIGHUP: TLS reloaded, new connections get the \(summary)")
            } catch {
                logger.error("SIGHUP: TLS not reloaded, still serving the \(source.certificateSummary): \(error.description)")
            }
        }
    }
}
