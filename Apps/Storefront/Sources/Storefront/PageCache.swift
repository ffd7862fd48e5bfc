import Foundation
import Microlith
import NIOCore
import Synchronization

/// Rendered pages, kept until a record they show changes.
///
/// Each page names what it depends on (`Price:p000001`, `Stock:…`, `Review:…`); a commit to one of
/// those records drops the pages that show it, before the commit is acknowledged, so the next
/// request renders fresh data. A change to a category or a product (their membership and order)
/// drops everything.
///
/// The server also answers `GET`/`HEAD` of a kept page's target straight from here, in the event
/// loop (``ResponseCache``), so a cached page costs no routing and no handler.
public final class PageCache: ResponseCache {
    public struct Page: Sendable {
        public var body: Data
        public var contentType: String
    }

    private struct State {
        var pages: [String: (response: CachedResponse, dependencies: Set<String>)] = [:]
        var dependents: [String: Set<String>] = [:]
        var generation: UInt64 = 0

        /// Drops every page (the generation goes on).
        mutating func clear() {
            pages = [:]
            dependents = [:]
        }
    }

    private let state = Mutex(State())
    /// The most pages kept; past it the cache starts over.
    public let capacity: Int

    public init(capacity: Int = 20_000) {
        self.capacity = capacity
    }

    public func response(for target: String) -> CachedResponse? {
        state.withLock { $0.pages[target]?.response }
    }

    /// Changes each time something may have been invalidated; take it before reading the data
    /// of a page and pass it to ``store(_:key:dependencies:generation:)``.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Keeps `page` unless an invalidation happened since `generation` (its data may be stale).
    public func store(_ page: Page, key: String, dependencies: Set<String>, generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.pages.count >= capacity { s.clear() }
            let response = CachedResponse(
                headers: [("Content-Type", page.contentType), ("X-Page-Cache", "hit")], body: ByteBuffer(bytes: page.body))
            s.pages[key] = (response, dependencies)
            for d in dependencies { s.dependents[d, default: []].insert(key) }
        }
    }

    public var count: Int { state.withLock { $0.pages.count } }

    /// Drops the pages that show what `changes` touched.
    public func invalidate(_ changes: [Change]) {
        guard changes.contains(where: { $0.tableName != "Order" }) else { return }
        state.withLock { s in
            s.generation &+= 1
            for change in changes {
                let key: String
                switch change.tableName {
                case "Category", "Product":
                    s.clear()
                    return
                case "Review":
                    guard case .string(let product)? = change.record?.record["productId"] else {
                        // A deleted review: which page showed it is unknown; drop every page showing reviews.
                        for page in s.dependents.filter({ $0.key.hasPrefix("Review:") }).values.flatMap({ $0 }) { s.pages[page] = nil }
                        continue
                    }
                    key = "Review:\(product)"
                case "Order":
                    continue
                default:
                    key = "\(change.tableName):\(change.id)"
                }
                if let pages = s.dependents.removeValue(forKey: key) {
                    for page in pages { s.pages[page] = nil }
                }
            }
        }
    }
}
