/// Where a module that runs in another process is reached.
public struct RemoteEndpoint: Sendable, Equatable {
    /// The base URL of the process running the module, e.g. `http://10.0.0.5:9926`.
    public var url: String
    /// How long a call may take, connection included, before it fails with ``OperationError/timeout(_:)``.
    public var timeout: Duration

    public init(url: String, timeout: Duration = .seconds(5)) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.timeout = timeout
    }
}
