import Foundation

/// A value on a page: known when the page was built, or a live slot (a marker the runtime
/// replaces with the record's current value each time the kept page is served).
public enum Shown<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case value(Value)
    /// The marker from `OperationContext.live`.
    case live(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Value.self) {
            self = .value(value)
        } else {
            self = .live(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .value(let v): try container.encode(v)
        case .live(let marker): try container.encode(marker)
        }
    }
}

/// A product as a page lists it.
public struct ProductCard: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var priceCents: Int?
    /// `$12.34`, or `n/a` when the price is unknown.
    public var price: String
    /// Units in stock (JSON pages; absent when unknown).
    public var stock: Shown<Int>?
    public var inStock: Shown<Bool>?
    /// The stock line as HTML (HTML pages).
    public var stockLabel: Shown<String>?
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
    /// The stock line and the add-to-cart form as HTML (HTML pages).
    public var stockBlock: Shown<String>?
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
