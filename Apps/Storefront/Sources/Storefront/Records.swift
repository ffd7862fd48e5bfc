import Microlith

/// A product category (catalog).
public struct Category: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var position: Int
}

/// A product (catalog).
public struct Product: Codable, Sendable, Equatable {
    public var id: String
    public var categoryId: String
    public var name: String
    public var description: String
    /// Shown on the home page.
    public var featured: Bool
    /// Order within the category.
    public var position: Int
}

/// Units in stock of one product (inventory); `id` is the product's id.
public struct Stock: Codable, Sendable, Equatable {
    public var id: String
    public var quantity: Int
}

/// A product's price in cents (pricing); `id` is the product's id.
public struct Price: Codable, Sendable, Equatable {
    public var id: String
    public var cents: Int
}

/// A review of a product (reviews).
public struct Review: Codable, Sendable, Equatable {
    public var id: String
    public var productId: String
    public var rating: Int
    public var author: String
    public var text: String
}

/// An order (inventory): what was bought at which price.
public struct Order: Codable, Sendable, Equatable {
    public var id: String
    public var lines: [OrderLine]
    public var totalCents: Int
    public var createdAt: Int64?
}

/// One line of an order.
public struct OrderLine: Codable, Sendable, Equatable {
    public var productId: String
    public var name: String?
    public var quantity: Int
    public var unitCents: Int
}

/// The storefront's tables.
public enum Tables {
    public static let categories = TableRef<Category>("Category")
    public static let products = TableRef<Product>("Product")
    public static let stock = TableRef<Stock>("Stock")
    public static let prices = TableRef<Price>("Price")
    public static let reviews = TableRef<Review>("Review")
    public static let orders = TableRef<Order>("Order")
}
