import Foundation
import Microlith

/// Categories and products.
public struct CatalogModule: Module {
    public let name = "catalog"
    /// Products per category on the home page.
    public static let featuredPerCategory = 4
    /// Related products on a product page.
    public static let relatedCount = 4
    /// The most product ids in one page of ``Catalog/productIDs`` (and the default).
    public static let productIDsPageLimit = 10_000
    /// The most products in one page of ``Catalog/listing``.
    public static let listingPageLimit = 100

    public init() {}

    public func register(_ builder: inout ModuleBuilder) {
        builder.handle(Catalog.categories) { _, context in
            try await context.query(Tables.categories, "sort(+position)")
        }
        builder.handle(Catalog.featured) { _, context in
            let categories = try await context.query(Tables.categories, "sort(+position)")
            let featured = try await context.query(Tables.products, "featured=true")
            let byCategory = Dictionary(grouping: featured, by: \.categoryId)
            return Featured(
                categories: categories.map { c in
                    CategoryProducts(
                        category: c, products: Array((byCategory[c.id] ?? []).sorted { $0.position < $1.position }.prefix(Self.featuredPerCategory)))
                })
        }
        builder.handle(Catalog.category) { request, context in
            guard let category = try await context.get(Tables.categories, RecordKey(request.id)) else {
                throw OperationError.notFound("no category '\(request.id)'")
            }
            let products = try await context.query(Tables.products, "categoryId=?", request.id)
            return CategoryProducts(category: category, products: products.sorted { $0.position < $1.position })
        }
        builder.handle(Catalog.listing) { request, context in
            guard request.sort == "name" || request.sort == "-name" else {
                throw OperationError.badRequest("a listing is sorted by name or -name, got '\(request.sort)'")
            }
            guard (0...(Int.max - Self.listingPageLimit)).contains(request.start), (1...Self.listingPageLimit).contains(request.count) else {
                throw OperationError.badRequest(
                    "start must be 0 or more and count 1 to \(Self.listingPageLimit), got \(request.start) and \(request.count)")
            }
            guard let category = try await context.get(Tables.categories, RecordKey(request.id)) else {
                throw OperationError.notFound("no category '\(request.id)'")
            }
            let total = try await context.count(Tables.products, "categoryId=?", request.id)
            let order = request.sort == "name" ? "+name" : "-name"
            let products = try await context.query(
                Tables.products, "categoryId=?&sort(\(order))&limit(\(request.start),\(request.start + request.count))", request.id)
            return ListingPage(category: category, total: total, products: products)
        }
        builder.handle(Catalog.product) { request, context in
            guard let product = try await context.get(Tables.products, RecordKey(request.id)) else {
                throw OperationError.notFound("no product '\(request.id)'")
            }
            guard let categoryRecord = try await context.get(Tables.categories, RecordKey(product.categoryId)) else {
                throw OperationError.internal("product \(product.id) names a missing category \(product.categoryId)")
            }
            // The next products of the same category, wrapping around to its first ones. The
            // query's text is the same for every product (parsed once), the values go apart.
            var related = try await context.query(
                Tables.products, "categoryId=?&position=gt=?&sort(+position)&limit(\(Self.relatedCount))", product.categoryId,
                product.position)
            if related.count < Self.relatedCount {
                let first = try await context.query(
                    Tables.products, "categoryId=?&sort(+position)&limit(\(Self.relatedCount + 1))", product.categoryId)
                related += first.filter { $0.id != product.id && !related.contains($0) }.prefix(Self.relatedCount - related.count)
            }
            return ProductDetail(product: product, category: categoryRecord, related: related)
        }
        builder.handle(Catalog.products) { request, context in
            var found: [Product] = []
            for id in request.ids {
                if let p = try await context.get(Tables.products, RecordKey(id)) { found.append(p) }
            }
            return found
        }
        builder.handle(Catalog.productIDs) { request, context in
            let limit = request.limit ?? Self.productIDsPageLimit
            guard (1...Self.productIDsPageLimit).contains(limit) else {
                throw OperationError.badRequest("limit must be 1 to \(Self.productIDsPageLimit), got \(limit)")
            }
            let products = TableRef<ID>("Product")
            // A keyset page: the primary key's own order from just past the cursor, so a page deep
            // in the table costs what the first one does.
            let page =
                if let after = request.after {
                    try await context.query(products, "id=gt=?&select(id)&sort(+id)&limit(\(limit))", after)
                } else {
                    try await context.query(products, "select(id)&sort(+id)&limit(\(limit))")
                }
            let ids = page.map(\.id)
            guard ids.count == limit, let last = ids.last else { return ProductIDPage(ids: ids, nextAfter: nil) }
            let more = try await context.query(products, "id=gt=?&select(id)&sort(+id)&limit(1)", last)
            return ProductIDPage(ids: ids, nextAfter: more.isEmpty ? nil : last)
        }
    }

    /// A value as a URL query-string literal.
    static func escape(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value
    }
}
