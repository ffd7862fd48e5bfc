import Foundation

/// A product as a page lists it.
public struct ProductCard: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var priceCents: Int?
    /// `$12.34`, or `n/a` when the price is unknown.
    public var price: String
    public var stock: Int?
    public var inStock: Bool
}

/// The home page: featured products of every category.
public struct HomeView: Codable, Sendable, Equatable {
    public struct Section: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var products: [ProductCard]
    }
    public var categories: [Section]
}

/// A product listing page: one category, sorted, paginated.
public struct CategoryView: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// `name`, `-name`, `price` or `-price`.
    public var sort: String
    public var page: Int
    public var pages: Int
    public var total: Int
    public var products: [ProductCard]
    public var previousPage: Int?
    public var nextPage: Int?
}

/// A product detail page.
public struct ProductView: Codable, Sendable, Equatable {
    public var product: ProductCard
    public var description: String
    public var categoryId: String
    public var categoryName: String
    public var reviews: [ReviewView]
    public var averageRating: String?
    public var related: [ProductCard]
}

/// A review as shown.
public struct ReviewView: Codable, Sendable, Equatable {
    public var author: String
    public var rating: Int
    public var stars: String
    public var text: String
}

/// A cart or an order as shown.
public struct CartView: Codable, Sendable, Equatable {
    public struct Line: Codable, Sendable, Equatable {
        public var productId: String
        public var name: String
        public var quantity: Int
        public var unitCents: Int
        public var unit: String
        public var lineTotal: String
    }
    public var orderId: String?
    public var lines: [Line]
    public var empty: Bool
    public var totalCents: Int
    public var total: String
    /// `p1:2,p3:1`, to post to /checkout.
    public var items: String
}

/// What a checkout request names.
public struct CheckoutItems: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public var productId: String
        public var quantity: Int
        public init(productId: String, quantity: Int) {
            self.productId = productId
            self.quantity = quantity
        }
    }
    public var items: [Item]
    public init(items: [Item]) { self.items = items }
}

enum Money {
    static func format(_ cents: Int?) -> String {
        guard let cents else { return "n/a" }
        let c = cents % 100
        return "$\(cents / 100).\(c < 10 ? "0" : "")\(c)"
    }
}
