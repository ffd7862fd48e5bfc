import Microlith

/// The deterministic storefront data: 8 categories of 111, 108, 110, 82, 85, 121, 131 and 265
/// products (1,013), each with a price, a stock level (0 to 120, or `stock` for every product)
/// and 0–5 reviews; `scale` multiplies the product counts. The same scale and stock always give
/// the same records.
public struct CatalogGenerator: Sendable {
    public static let categoryNames = ["Kitchen", "Garden", "Books", "Toys", "Tools", "Outdoor", "Music", "Home"]
    public static let productsPerCategory = [111, 108, 110, 82, 85, 121, 131, 265]

    public let scale: Int
    /// Every product's stock; `nil` gives each its own level from 0 to 120.
    public let stock: Int?

    public init(scale: Int = 1, stock: Int? = nil) {
        self.scale = max(1, scale)
        self.stock = stock.map { max(0, $0) }
    }

    /// How many products there are.
    public var productCount: Int { Self.productsPerCategory.reduce(0, +) * scale }

    public var categories: [Category] {
        Self.categoryNames.enumerated().map { i, name in Category(id: "c\(i + 1)", name: name, position: i) }
    }

    /// Everything about the `index`-th product (0-based, category by category).
    public func product(_ index: Int) -> (product: Product, price: Price, stock: Stock, reviews: [Review]) {
        var category = 0
        var position = index
        while position >= Self.productsPerCategory[category] * scale {
            position -= Self.productsPerCategory[category] * scale
            category += 1
        }
        var random = SplitMix64(seed: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ 17)
        let id = Self.productID(index)
        let adjective = Self.adjectives[Int(random.next() % UInt64(Self.adjectives.count))]
        let noun = Self.nouns[category][Int(random.next() % UInt64(Self.nouns[category].count))]
        let name = "\(adjective) \(noun) \(index + 1)"
        let product = Product(
            id: id, categoryId: "c\(category + 1)", name: name,
            description: "The \(adjective.lowercased()) \(noun.lowercased()) for every day: sturdy, simple and made to last.",
            featured: position < CatalogModule.featuredPerCategory, position: position)
        let price = Price(id: id, cents: 199 + Int(random.next() % 19_800))
        let level = Int(random.next() % 121)  // drawn either way: the records after it stay the same
        let stock = Stock(id: id, quantity: self.stock ?? level)
        let count = Int(random.next() % 6)
        let reviews = (0..<count).map { k in
            Review(
                id: "\(id)-r\(k + 1)", productId: id, rating: 1 + Int(random.next() % 5),
                author: Self.authors[Int(random.next() % UInt64(Self.authors.count))],
                text: Self.remarks[Int(random.next() % UInt64(Self.remarks.count))])
        }
        return (product, price, stock, reviews)
    }

    public static func productID(_ index: Int) -> String {
        let digits = String(index + 1)
        return "p" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// Writes the records of the tables in `tables` (names) unless they are already there.
    public func seed(_ store: Store, tables: Set<String>, logger: Logger) async throws {
        func has<R>(_ table: TableRef<R>, _ key: String) async throws -> Bool { try await store.get(table, RecordKey(key)) != nil }
        let first = Self.productID(0)
        let firstReview = (0..<productCount).lazy.compactMap { self.product($0).reviews.first?.id }.first ?? ""
        let pending: [String: Bool] = [
            "Category": tables.contains("Category") ? !(try await has(Tables.categories, "c1")) : false,
            "Product": tables.contains("Product") ? !(try await has(Tables.products, first)) : false,
            "Price": tables.contains("Price") ? !(try await has(Tables.prices, first)) : false,
            "Stock": tables.contains("Stock") ? !(try await has(Tables.stock, first)) : false,
            "Review": tables.contains("Review") ? !(try await has(Tables.reviews, firstReview)) : false,
        ]
        guard pending.values.contains(true) else { return }
        let started = ContinuousClock.now
        let categories = self.categories
        if pending["Category"]! {
            try await store.write { txn in for c in categories { try txn.put(Tables.categories, c) } }
        }
        let total = productCount
        let chunk = 1000
        for start in stride(from: 0, to: total, by: chunk) {
            let range = start..<min(total, start + chunk)
            let generator = self
            try await store.write { txn in
                for i in range {
                    let p = generator.product(i)
                    if pending["Product"]! { try txn.put(Tables.products, p.product) }
                    if pending["Price"]! { try txn.put(Tables.prices, p.price) }
                    if pending["Stock"]! { try txn.put(Tables.stock, p.stock) }
                    if pending["Review"]! { for r in p.reviews { try txn.put(Tables.reviews, r) } }
                }
            }
        }
        logger.info(
            "seeded the storefront",
            metadata: ["products": "\(total)", "tables": "\(tables.sorted())", "duration": "\(ContinuousClock.now - started)"])
    }

    static let adjectives = ["Classic", "Bright", "Compact", "Deluxe", "Everyday", "Handy", "Quiet", "Rugged", "Sleek", "Sunny", "Trusty", "Vintage"]
    static let nouns = [
        ["Mug", "Kettle", "Pan", "Knife", "Bowl", "Grater"], ["Rake", "Hose", "Planter", "Shears", "Trowel", "Bench"],
        ["Novel", "Atlas", "Cookbook", "Journal", "Anthology", "Guide"], ["Robot", "Puzzle", "Kite", "Yo-yo", "Train", "Blocks"],
        ["Hammer", "Wrench", "Drill", "Saw", "Level", "Clamp"], ["Tent", "Lantern", "Backpack", "Hammock", "Stove", "Compass"],
        ["Guitar", "Ukulele", "Drum", "Flute", "Harmonica", "Metronome"], ["Lamp", "Rug", "Clock", "Cushion", "Vase", "Shelf"],
    ]
    static let authors = ["Ada", "Bo", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ines", "Jon"]
    static let remarks = [
        "Does exactly what it says.", "Good value for the price.", "Arrived quickly and works well.", "Not what I expected.",
        "Would buy again.", "Solid, but a little heavy.", "My favourite purchase this year.",
    ]
}
