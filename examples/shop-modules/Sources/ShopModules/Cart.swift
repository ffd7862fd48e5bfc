import Microlith

/// A cart: quantities by SKU.
public struct Cart: Codable, Sendable, Equatable {
    public var items: [QuoteRequest]

    public init(items: [QuoteRequest]) {
        self.items = items
    }
}

/// A priced cart.
public struct CartTotal: Codable, Sendable, Equatable {
    public var lines: [Quote]
    public var totalCents: Int
}

/// The operations of the cart module.
public enum Carts {
    /// Prices every line through the pricing module and adds them up.
    public static let total = Operation<Cart, CartTotal>(module: "cart", name: "total")
}

/// Totals carts by calling the pricing module: a function call when pricing runs in the same
/// process, an HTTP call when configuration puts it elsewhere. The code is the same.
public struct CartModule: Module {
    public let name = "cart"

    public init() {}

    public func register(_ builder: inout ModuleBuilder) {
        builder.handle(Carts.total) { cart, context in
            guard !cart.items.isEmpty else { throw OperationError.badRequest("the cart is empty") }
            let lines = try await withThrowingTaskGroup(of: (Int, Quote).self) { group in
                for (i, item) in cart.items.enumerated() {
                    group.addTask { (i, try await context.modules.call(Pricing.quote, item)) }
                }
                var lines = [Quote?](repeating: nil, count: cart.items.count)
                for try await (i, quote) in group { lines[i] = quote }
                return lines.compactMap { $0 }
            }
            return CartTotal(lines: lines, totalCents: lines.reduce(0) { $0 + $1.totalCents })
        }
    }
}
