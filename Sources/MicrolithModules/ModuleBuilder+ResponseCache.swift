public import MicrolithCache

extension ModuleBuilder {
    /// Lets the server answer `GET`/`HEAD` requests from `cache` before routing them (for a cache
    /// the application keeps correct itself; resources declared with `get(keep: true)` need none).
    public mutating func serveCachedResponses(from cache: any ResponseCache) {
        responseCaches.append(cache)
    }
}
