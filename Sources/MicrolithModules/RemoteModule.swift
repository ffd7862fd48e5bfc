import AsyncHTTPClient
import Foundation
import MicrolithJSON
import MicrolithStore
import NIOCore
import NIOHTTP1

/// Calls the operations of a module in another process: JSON over HTTP/1.1 with pooled
/// keep-alive connections (AsyncHTTPClient), a deadline per call, and errors turned back into
/// the ``OperationError`` the callee threw.
struct RemoteModule: Sendable {
    let name: String
    let endpoint: RemoteEndpoint
    let client: HTTPClient

    /// The largest answer accepted from a remote operation.
    static let maximumResponseBytes = 64 << 20

    func call<Input, Output>(_ operation: Operation<Input, Output>, _ input: Input) async throws -> Output {
        let body: Data
        do {
            // The conventions the callee decodes with (RecordCoder): a Date as ISO 8601 text.
            body = Data(try RecordCoder.encodeJSON(input))
        } catch {
            throw OperationError.badRequest("the input of \(operation.qualifiedName) cannot be encoded as JSON: \(error)")
        }
        let data = try await post(operation.path, body: body, operation: operation.qualifiedName)
        do {
            return try RecordCoder.decodeJSON(Output.self, from: data)
        } catch {
            throw OperationError.badResponse(
                "\(operation.qualifiedName) at \(endpoint.url) answered with something that is not a \(Output.self): "
                    + describe(error))
        }
    }

    /// Sends `body` to `path` and returns the body of a 200 answer; any other answer becomes the
    /// `OperationError` it describes.
    func post(_ path: String, body: Data, operation: String) async throws -> Data {
        var request = HTTPClientRequest(url: endpoint.url + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "accept", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let deadline = NIODeadline.now() + TimeAmount.nanoseconds(Self.nanoseconds(endpoint.timeout))
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(request, deadline: deadline)
            bytes = try await response.body.collect(upTo: Self.maximumResponseBytes)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw OperationError.timeout("\(operation) at \(endpoint.url) did not answer within \(endpoint.timeout)")
        } catch {
            throw OperationError.unavailable("module '\(name)' at \(endpoint.url) cannot be reached for \(operation): \(error)")
        }
        let data = Data(bytes.readableBytesView)
        if response.status == .ok { return data }
        throw Self.error(from: data, status: Int(response.status.code), operation: operation, url: endpoint.url)
    }

    /// The `OperationError` a problem+json answer carries (or one describing an answer that is not one).
    static func error(from data: Data, status: Int, operation: String, url: String) -> OperationError {
        struct ProblemBody: Decodable {
            var status: Int?
            var code: String?
            var detail: String?
        }
        if let problem = try? JSONDecoder().decode(ProblemBody.self, from: data), let detail = problem.detail {
            return OperationError(status: problem.status ?? status, code: problem.code ?? "http\(status)", message: detail)
        }
        let text = String(decoding: data.prefix(200), as: UTF8.self)
        return OperationError.badResponse("\(operation) at \(url) answered HTTP \(status): \(text)")
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.wholeNanoseconds
    }
}
