public import Hummingbird
import Logging
import MicrolithJSON
import MicrolithModules
import MicrolithQuery
import MicrolithStore
import MicrolithTables
import NIOCore

/// Turns every error into an RFC 9457 problem response, so no client ever sees a bare 500 page
/// or a dropped connection for bad input.
///
/// Every problem carries a stable `code` and the request's id (`requestId`, the same as the
/// `X-Request-Id` header). What the client reads is written for it: the cause of a server-side
/// failure (an SQLite message, SQL text, a Swift error) goes to the log, with the request id,
/// and never into the response.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error, requestID: context.id)
            Self.log(error, as: problem, request: request, logger: context.logger)
            return problem.makeResponse()
        }
    }

    /// The problem describing `error`, for the request `requestID`.
    public static func problem(for error: any Error, requestID: String? = nil) -> Problem {
        var problem = classify(error, requestID: requestID)
        problem.requestID = requestID
        return problem
    }

    private static func classify(_ error: any Error, requestID: String?) -> Problem {
        switch error {
        case let p as Problem:
            return p
        case let e as OperationError:
            if e.status >= 500 && e.code == "internal" { return internalError(requestID) }
            var headers = HTTPFields()
            if e.status == 503 { headers[.retryAfter] = Problem.retryAfterSeconds }
            return Problem(HTTPResponse.Status(code: e.status), e.message, code: e.code, title: e.code, headers: headers)
        case let e as AccessDenied:
            // Without credentials the answer is to sign in; with them, that they do not suffice.
            guard e.principal.user == nil else { return Problem(.forbidden, e.message, code: "forbidden") }
            return Problem(
                .unauthorized, e.message + "; sign in (HTTP Basic) as a user whose roles may", code: "unauthorized",
                headers: [.wwwAuthenticate: AuthenticationMiddleware<MicrolithRequestContext>.challenge])
        case let e as TableTargetError:
            return Problem(e.status == 404 ? .notFound : .badRequest, e.detail, code: e.code)
        case let e as QuerySyntaxError:
            return Problem(.badRequest, e.description, code: "querySyntax", title: "Bad query", extensions: ["offset": .int(Int64(e.offset))])
        case let e as QueryError:
            var ext = JSONObject()
            if let offset = e.offset { ext["offset"] = .int(Int64(offset)) }
            return Problem(.badRequest, e.description, code: "badQuery", title: "Bad query", extensions: ext)
        case let e as HTTPError:
            // Hummingbird's own server-side failures say no more than their status.
            if e.status.code >= 500 && e.status != .serviceUnavailable { return internalError(requestID) }
            return Problem(e.status, e.body ?? e.status.reasonPhrase, headers: e.headers)
        case is NIOTooManyBytesError:
            return Problem(.contentTooLarge, "the request body is larger than the limit")
        default:
            if let e = StoreError.classify(error) { return storeProblem(e, requestID: requestID) }
            if let e = error as? any HTTPResponseError {
                if e.status.code >= 500 { return internalError(requestID) }
                return Problem(e.status, e.status.reasonPhrase)
            }
            return internalError(requestID)
        }
    }

    private static func storeProblem(_ e: StoreError, requestID: String?) -> Problem {
        var ext = JSONObject()
        if let a = e.attribute { ext["attribute"] = .string(a) }
        switch e.code {
        case .invalidRecord, .invalidID: return Problem(.badRequest, e.message, code: e.code.description, extensions: ext)
        case .versionMismatch: return Problem(.preconditionFailed, e.message, code: e.code.description, extensions: ext)
        case .alreadyExists: return Problem(.conflict, e.message, code: e.code.description, extensions: ext)
        case .unknownTable: return Problem(.notFound, e.message, code: e.code.description, extensions: ext)
        case .busy:
            return Problem(
                .serviceUnavailable, "the store is busy: another connection holds the database's write lock; nothing was written, retry later",
                code: "storeBusy", headers: [.retryAfter: Problem.retryAfterSeconds])
        case .closed:
            return Problem(
                .serviceUnavailable, "the store is closed: the server is shutting down", code: "storeClosed",
                headers: [.retryAfter: Problem.retryAfterSeconds])
        default:
            return Problem(
                .internalServerError, "the store could not complete the request; see the server log for request \(requestID ?? "(unknown)")",
                code: "storage")
        }
    }

    private static func internalError(_ requestID: String?) -> Problem {
        Problem(.internalServerError, "internal error; see the server log for request \(requestID ?? "(unknown)")", code: "internal")
    }

    /// Logs the cause: server errors at `error` (an unavailable store at `warning`), with the
    /// error as thrown; refused requests at `debug`.
    static func log(_ error: any Error, as problem: Problem, request: Request, logger: Logger) {
        log(error, as: problem, method: request.method, path: request.uri.path, logger: logger)
    }

    /// ``log(_:as:request:logger:)`` for a request known by its method and path.
    static func log(_ error: any Error, as problem: Problem, method: HTTPRequest.Method, path: String, logger: Logger) {
        var metadata: Logger.Metadata = [
            "method": "\(method.rawValue)", "path": "\(path)", "status": "\(problem.status.code)", "code": "\(problem.code)",
        ]
        if let id = problem.requestID { metadata["requestId"] = "\(id)" }
        let cause: String
        switch error {
        case let p as Problem: cause = p.detail
        case let e as StoreError: cause = e.underlying.map { "\(e.message); cause: \(String(reflecting: $0))" } ?? e.message
        default: cause = String(reflecting: error)
        }
        metadata["error"] = "\(cause)"
        switch problem.status.code {
        case 503: logger.warning("request failed", metadata: metadata)
        case 500...: logger.error("request failed", metadata: metadata)
        default: logger.debug("request refused", metadata: metadata)
        }
    }
}
