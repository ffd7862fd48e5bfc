import Foundation
import Microlith
import Mustache
import Testing

@testable import Storefront

/// The shop's pages rendered by the runtime's `TemplateLibrary` are byte for byte what
/// swift-mustache renders from the same templates and views.
@Suite struct TemplateCompatibilityTests {
    /// A template value as swift-mustache reads views: dictionaries, arrays and plain values.
    static func reference(_ value: TemplateValue) -> Any {
        switch value {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i
        case .double(let d): return d
        case .string(let s): return s
        case .list(let l): return l.map(reference)
        case .object(let o): return o.mapValues(reference)
        }
    }

    static let appDirectory = Storefront.bundledAppDirectory()

    /// `view` rendered with `template` by both; they must agree.
    func same(_ template: String, _ view: some Encodable) async throws {
        let directory = try #require(Self.appDirectory)
        let ours = String(decoding: try GatewayModule.loadTemplates(appDirectory: directory).render(view, template: template), as: UTF8.self)
        let mustache = try await MustacheLibrary(directory: (directory as NSString).appendingPathComponent("templates"))
        let theirs = try #require(mustache.render(Self.reference(try TemplateEncoder.encode(view)), withTemplate: template))
        #expect(ours == theirs, "template \(template)")
        #expect(ours.contains("</html>"), "the footer partial rendered")
    }

    static let awkward = "Mug <\"Big\"> & 'Co' – crème ☕️"

    static func card(_ id: String, price: Int?, stock: Int?) -> ProductCard {
        ProductCard(
            id: id, name: "\(awkward) \(id)", priceCents: price, price: Money.format(price), stock: stock.map { .value($0) },
            inStock: stock.map { .value($0 > 0) }, stockLabel: .live("\u{E000}\(id)\u{E001}"))
    }

    @Test func productPages() async throws {
        let related = [Self.card("p2", price: 150, stock: 0), Self.card("p3", price: nil, stock: nil)]
        var view = ProductView(
            product: Self.card("p1", price: 1234, stock: 3), description: "A <b>mug</b>\nfor \"tea\" & coffee.", categoryId: "c1",
            categoryName: "Kitchen & Home",
            reviews: [
                ReviewView(author: "Ann <a@b>", rating: 5, stars: "★★★★★", text: "Great & 'cheap'"),
                ReviewView(author: "Bob", rating: 1, stars: "★", text: ""),
            ], averageRating: "3.0", related: related, stockBlock: .live("\u{E000}0\u{E001}"))
        try await same("product", view)
        view.reviews = []
        view.averageRating = nil
        view.related = []
        view.stockBlock = .value("<p class=\"in\">In stock</p>")
        try await same("product", view)
    }

    @Test func listingsHomeCartOrderAndErrors() async throws {
        let cards = (1...5).map { Self.card("p\($0)", price: $0 * 199, stock: $0 - 2) }
        try await same(
            "category",
            CategoryView(
                id: "c1", name: "Kitchen & Home", sort: "-price", page: 2, pages: 3, total: 60, products: cards, previousPage: 1,
                nextPage: 3))
        try await same(
            "category",
            CategoryView(id: "c9", name: "Empty", sort: "name", page: 1, pages: 1, total: 0, products: [], previousPage: nil, nextPage: nil))
        try await same(
            "home",
            HomeView(categories: [
                .init(id: "c1", name: "Kitchen & Home", products: cards), .init(id: "c2", name: "<Garden>", products: []),
            ]))
        try await same("home", HomeView(categories: []))
        let lines = [
            CartView.Line(productId: "p1", name: Self.awkward, quantity: 2, unitCents: 150, unit: "$1.50", lineTotal: "$3.00"),
            CartView.Line(productId: "p2", name: "Plain", quantity: 1, unitCents: 99, unit: "$0.99", lineTotal: "$0.99"),
        ]
        let cart = CartView(orderId: nil, lines: lines, empty: false, totalCents: 399, total: "$3.99", items: "p1:2,p2:1")
        try await same("cart", cart)
        try await same("cart", CartView(orderId: nil, lines: [], empty: true, totalCents: 0, total: "$0.00", items: ""))
        try await same("order", CartView(orderId: "o-<1>", lines: lines, empty: false, totalCents: 399, total: "$3.99", items: "p1:2,p2:1"))
        try await same("error", Pages.ErrorView(status: 409, message: "only 1 of \(Self.awkward) left; 2 requested"))
    }
}
