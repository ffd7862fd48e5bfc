import Foundation
import Microlith

/// Builds the gateway's pages from the modules' operations.
///
/// The page routes are declared with `get(keep: true)`: the runtime keeps each rendered page
/// until a commit touches something it read (a product, a price, the reviews of the product,
/// the related-products query). Stock figures are live slots (``StockDisplay``), so checkouts
/// leave pages kept.
struct Pages: Sendable {
    let templates: TemplateLibrary

    // MARK: Data

    func home(_ context: OperationContext, html: Bool) async throws -> HomeView {
        let featured = try await context.modules.call(Catalog.featured, Nothing(), logger: context.logger)
        let ids = featured.categories.flatMap { $0.products.map(\.id) }
        async let pricesCall = context.modules.call(Pricing.prices, ProductIDs(ids), logger: context.logger)
        let stock = try await StockDisplay.load(ids, html: html, context)
        let prices = try await pricesCall.values
        return HomeView(
            categories: featured.categories.map { c in
                HomeView.Section(id: c.category.id, name: c.category.name, products: c.products.map { card($0, prices, stock) })
            })
    }

    func category(_ id: String, page: Int, sort: String, _ context: OperationContext, html: Bool) async throws -> CategoryView {
        let size = GatewayModule.pageSize
        let category: Category
        let total: Int
        let shown: [Product]
        let prices: [String: Int]
        // A page past any category's end (and past what `start` can hold): no such page.
        guard page <= Int.max / size / 2 else { throw OperationError.notFound("there is no page \(page)") }
        if sort == "name" || sort == "-name" {
            // The catalog's name index gives the page; only its products' prices are needed.
            let listing = try await context.modules.call(
                Catalog.listing, ListingRequest(id: id, sort: sort, start: (page - 1) * size, count: size), logger: context.logger)
            (category, total, shown) = (listing.category, listing.total, listing.products)
            prices = try await context.modules.call(Pricing.prices, ProductIDs(shown.map(\.id)), logger: context.logger).values
        } else {
            // Sorting by price needs every price of the category: one bulk call.
            let listing = try await context.modules.call(Catalog.category, ID(id), logger: context.logger)
            let all = try await context.modules.call(Pricing.prices, ProductIDs(listing.products.map(\.id)), logger: context.logger).values
            var products = listing.products
            if sort == "price" {
                products.sort { (all[$0.id] ?? Int.max, $0.position) < (all[$1.id] ?? Int.max, $1.position) }
            } else {
                products.sort { (all[$0.id] ?? Int.min, -$0.position) > (all[$1.id] ?? Int.min, -$1.position) }
            }
            (category, total, shown, prices) = (
                listing.category, products.count, Array(products.dropFirst((page - 1) * size).prefix(size)), all
            )
        }
        let pages = max(1, (total + size - 1) / size)
        guard page <= pages else { throw OperationError.notFound("\(category.name) has \(pages) page(s); there is no page \(page)") }
        let stock = try await StockDisplay.load(shown.map(\.id), html: html, context)
        return CategoryView(
            id: category.id, name: category.name, sort: sort, page: page, pages: pages, total: total,
            products: shown.map { card($0, prices, stock) }, previousPage: page > 1 ? page - 1 : nil, nextPage: page < pages ? page + 1 : nil)
    }

    func product(_ id: String, _ context: OperationContext, html: Bool) async throws -> ProductView {
        async let detailCall = context.modules.call(Catalog.product, ID(id), logger: context.logger)
        async let reviewsCall = context.modules.call(Reviews.forProduct, ID(id), logger: context.logger)
        let detail = try await detailCall
        let reviews = try await reviewsCall
        let ids = [id] + detail.related.map(\.id)
        async let pricesCall = context.modules.call(Pricing.prices, ProductIDs(ids), logger: context.logger)
        let stock = try await StockDisplay.load(ids, html: html, blockFor: html ? id : nil, context)
        let prices = try await pricesCall.values
        let average = reviews.isEmpty ? nil : String(format: "%.1f", Double(reviews.map(\.rating).reduce(0, +)) / Double(reviews.count))
        return ProductView(
            product: card(detail.product, prices, stock), description: detail.product.description, categoryId: detail.category.id,
            categoryName: detail.category.name,
            reviews: reviews.map {
                ReviewView(
                    author: $0.author, rating: $0.rating,
                    stars: String(repeating: "★", count: $0.rating) + String(repeating: "☆", count: 5 - $0.rating), text: $0.text)
            },
            averageRating: average, related: detail.related.map { card($0, prices, stock) }, stockBlock: stock.block)
    }

    func card(_ p: Product, _ prices: [String: Int], _ stock: StockDisplay) -> ProductCard {
        let s = stock.cards[p.id]
        return ProductCard(
            id: p.id, name: p.name, priceCents: prices[p.id], price: Money.format(prices[p.id]), stock: s?.stock, inStock: s?.inStock,
            stockLabel: s?.label)
    }

    // MARK: Cart and checkout

    /// Prices `items` and returns the order lines, refusing unknown products.
    func quote(_ items: [CheckoutItems.Item], _ context: OperationContext) async throws -> [OrderLine] {
        guard !items.isEmpty else { throw OperationError.badRequest("the cart is empty") }
        guard items.count <= 100 else { throw OperationError.badRequest("at most 100 different products per order, got \(items.count)") }
        let ids = items.map(\.productId)
        async let productsCall = context.modules.call(Catalog.products, ProductIDs(ids), logger: context.logger)
        async let pricesCall = context.modules.call(Pricing.prices, ProductIDs(ids), logger: context.logger)
        let names = Dictionary(try await productsCall.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let prices = try await pricesCall.values
        return try items.map { item in
            guard let name = names[item.productId], let price = prices[item.productId] else {
                throw OperationError.notFound("no product '\(item.productId)'")
            }
            guard item.quantity > 0 else { throw OperationError.badRequest("quantity of \(item.productId) must be at least 1, got \(item.quantity)") }
            return OrderLine(productId: item.productId, name: name, quantity: item.quantity, unitCents: price)
        }
    }

    func checkout(_ items: [CheckoutItems.Item], _ context: OperationContext) async throws -> Order {
        let lines = try await quote(items, context)
        return try await context.modules.call(Inventory.checkout, CheckoutRequest(lines: lines), logger: context.logger)
    }

    func cartView(_ lines: [OrderLine], orderId: String?) -> CartView {
        let total = lines.reduce(0) { $0 + $1.quantity * $1.unitCents }
        return CartView(
            orderId: orderId,
            lines: lines.map {
                CartView.Line(
                    productId: $0.productId, name: $0.name ?? $0.productId, quantity: $0.quantity, unitCents: $0.unitCents,
                    unit: Money.format($0.unitCents), lineTotal: Money.format($0.unitCents * $0.quantity))
            }, empty: lines.isEmpty, totalCents: total, total: Money.format(total),
            items: Cart.format(lines.map { .init(productId: $0.productId, quantity: $0.quantity) }))
    }

    /// `GET /cart`: the cart in the `cart` cookie; `?add=ID&quantity=N` adds to it, `?remove=ID` takes out.
    func cart(_ call: ResourceCall, _ context: OperationContext) async throws -> ResourceResponse {
        var items = Cart.parse(Cart.cookie(call.request.headers["cookie"]) ?? "")
        let q = call.request.queryItems
        var changed = false
        if let add = q["add"], !add.isEmpty {
            let quantity = Int(q["quantity"] ?? "1") ?? 0
            guard (1...InventoryModule.maximumQuantity).contains(quantity) else {
                return try html("error", ErrorView(status: 400, message: "quantity must be 1 to \(InventoryModule.maximumQuantity)"), status: 400)
            }
            if let i = items.firstIndex(where: { $0.productId == add }) {
                items[i].quantity += quantity
            } else {
                items.append(.init(productId: add, quantity: quantity))
            }
            changed = true
        }
        if let remove = q["remove"] {
            items.removeAll { $0.productId == remove }
            changed = true
        }
        let lines: [OrderLine]
        do {
            lines = items.isEmpty ? [] : try await quote(items, context)
        } catch let error as OperationError {
            return try html(
                "error", ErrorView(status: error.status, message: error.message), status: error.status, headers: ["Set-Cookie": Cart.setCookie("")])
        }
        var response = try html("cart", cartView(lines, orderId: nil))
        if changed { response.headers["Set-Cookie"] = Cart.setCookie(Cart.format(items)) }
        return response
    }

    /// `POST /checkout` from the cart page's form (`items=p1:2,p3:1`, or the cart cookie).
    func checkoutForm(_ call: ResourceCall, _ context: OperationContext) async throws -> ResourceResponse {
        let form = ResourceRequest(method: "POST", path: "/checkout", query: String(decoding: call.body, as: UTF8.self))
        let items = Cart.parse(form.queryItems["items"] ?? Cart.cookie(call.request.headers["cookie"]) ?? "")
        do {
            let order = try await checkout(items, context)
            var response = try html("order", cartView(order.lines, orderId: order.id), status: 201)
            response.headers["Set-Cookie"] = Cart.setCookie("")
            return response
        } catch let error as OperationError {
            return try html("error", ErrorView(status: error.status, message: error.message), status: error.status)
        }
    }

    // MARK: Rendering

    struct ErrorView: Encodable {
        var status: Int
        var message: String
    }

    /// Builds a page's view and renders it with `template`, or as JSON without one. An
    /// ``OperationError`` becomes the error page (HTML) or a problem (JSON).
    func render<View: Encodable>(html template: String?, _ build: (_ html: Bool) async throws -> View) async throws -> ResourceResponse {
        let view: View
        do {
            view = try await build(template != nil)
        } catch let error as OperationError where template != nil {
            return try html("error", ErrorView(status: error.status, message: error.message), status: error.status)
        }
        return try template.map { try html($0, view) } ?? (try .json(view))
    }

    func html(_ template: String, _ view: some Encodable, status: Int = 200, headers: [String: String] = [:]) throws -> ResourceResponse {
        let bytes = try templates.render(view, template: template)
        var all = headers
        all["Content-Type"] = "text/html; charset=utf-8"
        return ResourceResponse(status: status, headers: all, body: Data(bytes))
    }

    /// `/c/{id}?page=&sort=`, checked.
    static func listing(_ call: ResourceCall) throws -> (String, Int, String) {
        let q = call.request.queryItems
        let page = q["page"].map { Int($0) ?? 0 } ?? 1
        guard page >= 1 else { throw OperationError.badRequest("page must be a positive integer, got '\(q["page"] ?? "")'") }
        let sort = q["sort"] ?? "name"
        guard GatewayModule.sorts.contains(sort) else {
            throw OperationError.badRequest("sort must be one of \(GatewayModule.sorts.joined(separator: ", ")), got '\(sort)'")
        }
        return (call.request.parameters["categoryId"] ?? "", page, sort)
    }
}

/// The cart as the `cart` cookie carries it: `p000001:2,p000007:1`.
enum Cart {
    static func parse(_ text: String) -> [CheckoutItems.Item] {
        text.split(separator: ",").compactMap { part in
            let kv = part.split(separator: ":")
            guard kv.count == 2, let n = Int(kv[1]), n > 0, n <= InventoryModule.maximumQuantity,
                kv[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
            else { return nil }
            return .init(productId: String(kv[0]), quantity: n)
        }
    }

    static func format(_ items: [CheckoutItems.Item]) -> String {
        items.map { "\($0.productId):\($0.quantity)" }.joined(separator: ",")
    }

    static func cookie(_ header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == "cart" { return String(kv[1]).removingPercentEncoding }
        }
        return nil
    }

    static func setCookie(_ value: String) -> String {
        "cart=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""); Path=/; SameSite=Lax; HttpOnly"
    }
}
