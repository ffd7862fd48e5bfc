import Foundation
import Microlith

/// Stock levels and checkout.
public struct InventoryModule: Module {
    public let name = "inventory"
    /// The most units of one product a checkout may take.
    public static let maximumQuantity = 1000

    public init() {}

    public func register(_ builder: inout ModuleBuilder) {
        builder.handle(Inventory.stock) { request, context in
            var values: [String: Int] = [:]
            for id in Set(request.ids) {
                if let s = try await context.get(Tables.stock, RecordKey(id)) { values[id] = s.quantity }
            }
            return ValuesByProduct(values)
        }
        // Stock decrements and the order commit together; one short line refuses the whole order.
        builder.handle(Inventory.checkout) { request, context in
            guard !request.lines.isEmpty else { throw OperationError.badRequest("the order has no items") }
            var quantities: [String: Int] = [:]
            for line in request.lines {
                guard (1...Self.maximumQuantity).contains(line.quantity) else {
                    throw OperationError.badRequest("quantity of \(line.productId) must be 1 to \(Self.maximumQuantity), got \(line.quantity)")
                }
                quantities[line.productId, default: 0] += line.quantity
            }
            let lines = request.lines
            let wanted = quantities
            return try await context.write { txn in
                for (id, wanted) in wanted.sorted(by: { $0.key < $1.key }) {
                    // An addition, not a new value: on several nodes, every checkout's units count
                    // (a refusal throws, and the whole transaction is undone).
                    guard let stock = try txn.add(Tables.stock, RecordKey(id), "quantity", -wanted) else {
                        throw OperationError.notFound("no product '\(id)' in the inventory")
                    }
                    guard stock.quantity >= 0 else {
                        throw OperationError.conflict(
                            "only \(stock.quantity + wanted) of \(lines.first { $0.productId == id }?.name ?? id) left; \(wanted) requested")
                    }
                }
                let total = lines.reduce(0) { $0 + $1.quantity * $1.unitCents }
                return try txn.insert(Tables.orders, Order(id: RecordKey.uuidText(), lines: lines, totalCents: total))
            }
        }
    }
}

/// Prices.
public struct PricingModule: Module {
    public let name = "pricing"

    public init() {}

    public func register(_ builder: inout ModuleBuilder) {
        builder.handle(Pricing.prices) { request, context in
            var values: [String: Int] = [:]
            for id in Set(request.ids) {
                if let p = try await context.get(Tables.prices, RecordKey(id)) { values[id] = p.cents }
            }
            return ValuesByProduct(values)
        }
    }
}

/// Product reviews.
public struct ReviewsModule: Module {
    public let name = "reviews"

    public init() {}

    public func register(_ builder: inout ModuleBuilder) {
        builder.handle(Reviews.forProduct) { request, context in
            try await context.query(Tables.reviews, "productId=?&sort(+id)", request.id)
        }
    }
}
