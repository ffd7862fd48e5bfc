public import Hummingbird
import NIOCore

/// The request context of the server's routes: Hummingbird's core context and the IP address of
/// the connection's peer, which sign-in failures are counted by (see ``ClientAddress`` for a peer
/// that is a trusted proxy).
public struct MicrolithRequestContext: RequestContext, PeerAddressContext {
    public var coreContext: CoreRequestContextStorage
    /// The IP address of the connection's peer (a proxy's, behind one); `nil` when unknown.
    public let peerAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress
    }
}

/// A request context that knows the IP address of the connection's peer.
public protocol PeerAddressContext: RequestContext {
    /// The IP address of the connection's peer, `nil` when unknown.
    var peerAddress: String? { get }
}
