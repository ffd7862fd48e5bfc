import Microlith

/// Nothing: the input of operations that take none.
public struct Nothing: Codable, Sendable, Equatable {
    public init() {}
}

/// Product ids, for the bulk operations (one call for a whole page, never one per product).
public struct ProductIDs: Codable, Sendable, Equatable {
    public var ids: [String]
    public init(_ ids: [String]) { self.ids = ids }
}

/// Which page of product ids to list: the ids after `after` (all ids when `nil`) in id order,
/// at most `limit` of them (``CatalogModule/productIDsPageLimit`` when `nil`, and at most that).
public struct ProductIDsRequest: Codable, Sendable, Equatable {
    public var after: String?
    public var limit: Int?
    public init(after: String? = nil, limit: Int? = nil) {
        self.after = after
        self.limit = limit
    }
}

/// A page of product ids in id order; `nextAfter` is the last id of the page when more ids
/// follow (pass it as ``ProductIDsRequest/after`` for the next page), `nil` on the last page.
public struct ProductIDPage: Codable, Sendable, Equatable {
    public var ids: [String]
    public var nextAfter: String?
    public init(ids: [String], nextAfter: String?) {
        self.ids = ids
        self.nextAfter = nextAfter
    }
}

/// `GET /api/products`: a page of product ids and, when more follow, `next`: the path of the
/// next page (`/api/products?after=ID&limit=N`).
public struct ProductIDList: Codable, Sendable, Equatable {
    public var ids: [String]
    public var next: String?
    public init(ids: [String], next: String?) {
        self.ids = ids
        self.next = next
    }
}

/// One id.
public struct ID: Codable, Sendable, Equatable {
    public var id: String
    public init(_ id: String) { self.id = id }
}

/// Values by product id.
public struct ValuesByProduct: Codable, Sendable, Equatable {
    public var values: [String: Int]
    public init(_ values: [String: Int]) { self.values = values }
}

/// The products of one category, in catalog order.
public struct CategoryProducts: Codable, Sendable, Equatable {
    public var category: Category
    public var products: [Product]
}

/// Which page of a category's products to list, in name order: `count` products from the
/// `start`th on; `sort` is `name` or `-name`.
public struct ListingRequest: Codable, Sendable, Equatable {
    public var id: String
    public var sort: String
    public var start: Int
    public var count: Int
    public init(id: String, sort: String, start: Int, count: Int) {
        self.id = id
        self.sort = sort
        self.start = start
        self.count = count
    }
}

/// One page of a category's products, and how many products the category has in all.
public struct ListingPage: Codable, Sendable, Equatable {
    public var category: Category
    public var total: Int
    public var products: [Product]
}

/// Every category with its featured products.
public struct Featured: Codable, Sendable, Equatable {
    public var categories: [CategoryProducts]
}

/// A product, and the others of its category shown beside it.
public struct ProductDetail: Codable, Sendable, Equatable {
    public var product: Product
    public var category: Category
    public var related: [Product]
}

/// A checkout as the inventory module takes it: lines with the prices the gateway quoted.
public struct CheckoutRequest: Codable, Sendable, Equatable {
    public var lines: [OrderLine]
}

/// Every module's operations.
public enum Catalog {
    public static let featured = Operation<Nothing, Featured>(module: "catalog", name: "featured")
    public static let categories = Operation<Nothing, [Category]>(module: "catalog", name: "categories")
    public static let category = Operation<ID, CategoryProducts>(module: "catalog", name: "category")
    /// One page of a category in name order, read through the indexes: the first pages cost the
    /// same however many products the category has (the planner walks the name index); a page
    /// deep in a large category costs more (its matches are found and sorted), and the price
    /// sorts still read every product of the category, since they need every price.
    public static let listing = Operation<ListingRequest, ListingPage>(module: "catalog", name: "listing")
    public static let product = Operation<ID, ProductDetail>(module: "catalog", name: "product")
    /// A page of product ids in id order (a cursor walk over the primary key: each page costs the
    /// same however deep it is).
    public static let productIDs = Operation<ProductIDsRequest, ProductIDPage>(module: "catalog", name: "productIds")
    public static let products = Operation<ProductIDs, [Product]>(module: "catalog", name: "products")
}

public enum Inventory {
    public static let stock = Operation<ProductIDs, ValuesByProduct>(module: "inventory", name: "stock")
    public static let checkout = Operation<CheckoutRequest, Order>(module: "inventory", name: "checkout")
}

public enum Pricing {
    public static let prices = Operation<ProductIDs, ValuesByProduct>(module: "pricing", name: "prices")
}

public enum Reviews {
    public static let forProduct = Operation<ID, [Review]>(module: "reviews", name: "forProduct")
}
