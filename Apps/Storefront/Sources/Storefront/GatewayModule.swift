import Foundation
import Microlith

/// The shop's pages and their JSON, composed from the other modules' operations (in-process
/// calls in the microlith topology, bulk HTTP calls in the services one).
///
/// `/` home, `/c/{categoryId}` product listing (`?page=`, `?sort=name|-name|price|-price`),
/// `/p/{productId}` product, `/cart` and `POST /checkout`; the same data as JSON under `/api/`,
/// plus `/api/products` (every product id).
public struct GatewayModule: Module {
    public let name = "gateway"
    /// Products per listing page.
    public static let pageSize = 24
    static let sorts = ["name", "-name", "price", "-price"]

    let templates: TemplateLibrary

    /// A gateway rendering with `templates`. Its pages are kept by the runtime
    /// (`get(keep: true)`) while nothing they show changes.
    public init(templates: TemplateLibrary) {
        self.templates = templates
    }

    /// The templates every page needs.
    static let templateNames = ["home", "category", "product", "cart", "order", "error"]

    /// Loads and parses the templates of an app folder (`templates/*.mustache`); a syntax error
    /// or a missing template stops the start, naming the file.
    public static func loadTemplates(appDirectory: String) throws -> TemplateLibrary {
        let directory = (appDirectory as NSString).appendingPathComponent("templates")
        let library = try TemplateLibrary(directory: directory)
        for name in templateNames where !library.contains(name) {
            throw OperationError.internal("template \(name).mustache is missing from \(directory)")
        }
        return library
    }

    public func register(_ builder: inout ModuleBuilder) {
        let pages = Pages(templates: templates)
        for (path, template) in [("/", "home"), ("/api/home", nil)] as [(String, String?)] {
            builder.resource(path) { r in
                r.get(keep: true) { _, context in try await pages.render(html: template) { try await pages.home(context, html: $0) } }
            }
        }
        for (path, template) in [("/c/{categoryId}", "category"), ("/api/c/{categoryId}", nil)] as [(String, String?)] {
            builder.resource(path) { r in
                r.get(keep: true) { call, context in
                    let (id, page, sort) = try Pages.listing(call)
                    return try await pages.render(html: template) { try await pages.category(id, page: page, sort: sort, context, html: $0) }
                }
            }
        }
        for (path, template) in [("/p/{productId}", "product"), ("/api/p/{productId}", nil)] as [(String, String?)] {
            builder.resource(path) { r in
                r.get(keep: true) { call, context in
                    let id = call.request.parameters["productId"] ?? ""
                    return try await pages.render(html: template) { try await pages.product(id, context, html: $0) }
                }
            }
        }
        builder.resource("/api/products") { r in
            // `?after=ID&limit=N` (both optional): the ids after ID, at most N (10,000 by default
            // and at most); `next` (and a `Link` header) give the next page's path while more follow.
            r.get { call, context in
                let q = call.request.queryItems
                var limit: Int?
                if let text = q["limit"] {
                    guard let n = Int(text) else { throw OperationError.badRequest("limit must be an integer, got '\(text)'") }
                    limit = n
                }
                let page = try await context.modules.call(
                    Catalog.productIDs, ProductIDsRequest(after: q["after"], limit: limit), logger: context.logger)
                let next = page.nextAfter.map { after in
                    "/api/products?after=\(CatalogModule.escape(after))&limit=\(limit ?? CatalogModule.productIDsPageLimit)"
                }
                var response = try ResourceResponse.json(ProductIDList(ids: page.ids, next: next))
                if let next { response.headers["Link"] = "<\(next)>; rel=\"next\"" }
                return response
            }
        }
        builder.resource("/cart") { r in r.get { call, context in try await pages.cart(call, context) } }
        builder.resource("/checkout") { r in r.post { call, context in try await pages.checkoutForm(call, context) } }
        builder.resource("/api/checkout") { r in
            r.post { call, context in
                let request = try call.decode(CheckoutItems.self)
                return try .json(try await pages.checkout(request.items, context), status: 201)
            }
        }
    }
}
