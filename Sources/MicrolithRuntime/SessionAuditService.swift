import Logging
import MicrolithAuth
import ServiceLifecycle

/// Checks the open subscriptions and MQTT connections of signed-in users against the store every
/// `auth.sessionCheckSeconds`: those whose user was removed, or changed roles or password since
/// they signed in, end (see ``LiveSessions``). Changes made through `/_users` are checked at once;
/// this catches those made by `microlith user …` in another process.
struct SessionAuditService: Service, CustomStringConvertible {
    let sessions: LiveSessions
    let interval: Duration
    let logger: Logger

    var description: String { "session audit" }

    func run() async throws {
        let (sessions, interval, logger) = (self.sessions, self.interval, self.logger)
        await cancelWhenGracefulShutdown {
            while (try? await Task.sleep(for: interval)) != nil {
                do {
                    let ended = try await sessions.audit()
                    if ended > 0 { logger.notice("ended \(ended) connection(s) whose user was removed or changed roles or password") }
                } catch {
                    logger.warning("could not check open connections against their users: \(error)")
                }
            }
        }
    }
}
