import Microlith

/// What a quantity of one product costs.
public struct Quote: Codable, Sendable, Equatable {
    public var sku: String
    public var quantity: Int
    /// Price of one unit, in cents, after the volume discount.
    public var unitCents: Int
    /// `unitCents × quantity`.
    public var totalCents: Int
}

/// A request for a ``Quote``.
public struct QuoteRequest: Codable, Sendable, Equatable {
    public var sku: String
    public var quantity: Int

    public init(sku: String, quantity: Int) {
        self.sku = sku
        self.quantity = quantity
    }
}

/// The operations of the pricing module.
public enum Pricing {
    /// Prices a quantity of one product; 10 or more units take 10% off.
    public static let quote = Operation<QuoteRequest, Quote>(module: "pricing", name: "quote")
}

/// Prices from a fixed list (a real shop would read a table).
public struct PricingModule: Module {
    public let name = "pricing"
    /// List prices in cents, by SKU.
    public let prices: [String: Int]

    public init(prices: [String: Int] = ["apple": 50, "bread": 250, "cheese": 899]) {
        self.prices = prices
    }

    public func register(_ builder: inout ModuleBuilder) {
        let prices = self.prices
        builder.handle(Pricing.quote) { request, _ in
            guard request.quantity > 0 else {
                throw OperationError.badRequest("quantity must be at least 1, got \(request.quantity)")
            }
            guard let list = prices[request.sku] else {
                throw OperationError.notFound("no price for '\(request.sku)'; priced: \(prices.keys.sorted().joined(separator: ", "))")
            }
            let unit = request.quantity >= 10 ? list * 9 / 10 : list
            return Quote(sku: request.sku, quantity: request.quantity, unitCents: unit, totalCents: unit * request.quantity)
        }
    }
}
