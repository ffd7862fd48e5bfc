public import Hummingbird
import Logging
import MicrolithJSON
import MicrolithModules
import MicrolithQuery
import MicrolithStore

/// Turns every error into an RFC 9457 problem response, so no client ever sees a bare 500 page
/// or a dropped connection for bad input.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error)
            if problem.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            }
            return problem.makeResponse()
        }
    }

    /// The problem describing `error`.
    public static func problem(for error: any Error) -> Problem {
        switch error {
        case let p as Problem:
            return p
        case let e as StoreError:
            var ext = JSONObject()
            if let a = e.attribute { ext["attribute"] = .string(a) }
            let status: HTTPResponse.Status
            switch e.code {
            case .invalidRecord, .invalidID: status = .badRequest
            case .versionMismatch: status = .preconditionFailed
            case .alreadyExists: status = .conflict
            case .unknownTable: status = .notFound
            case .closed: status = .serviceUnavailable
            default: status = .internalServerError
            }
            return Problem(status, e.message, extensions: ext)
        case let e as OperationError:
            return Problem(HTTPResponse.Status(code: e.status), e.message, title: e.code, extensions: ["code": .string(e.code)])
        case let e as QuerySyntaxError:
            return Problem(.badRequest, e.description, title: "Bad query", extensions: ["offset": .int(Int64(e.offset))])
        case let e as QueryError:
            return Problem(.badRequest, e.description, title: "Bad query")
        case let e as HTTPError:
            return Problem(e.status, e.body ?? e.status.reasonPhrase, headers: e.headers)
        case let e as any HTTPResponseError:
            return Problem(e.status, "\(e)")
        default:
            return Problem(.internalServerError, "internal error: \(error)")
        }
    }
}
