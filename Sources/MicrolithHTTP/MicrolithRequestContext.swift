public import Hummingbird
public import NIOCore

/// The request context of the server's routes: Hummingbird's core context and the IP address of
/// the connection's peer, which sign-in failures are counted by (see ``ClientAddress`` for a peer
/// that is a trusted proxy).
public struct MicrolithRequestContext: RequestContext, PeerAddressContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection's peer, kept as it is: only a sign-in needs it as text.
    let peer: SocketAddress?
    /// The request's connection (an event stream writes its events to it on its event loop).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
        self.peer = source.channel.remoteAddress
    }

    /// The IP address of the connection's peer (a proxy's, behind one); `nil` when unknown.
    public var peerAddress: String? { peer?.ipAddress }
}

/// A request context that knows the IP address of the connection's peer.
public protocol PeerAddressContext: RequestContext {
    /// The IP address of the connection's peer, `nil` when unknown.
    var peerAddress: String? { get }
}
