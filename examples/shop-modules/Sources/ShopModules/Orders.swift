import Foundation
import Microlith

/// An order as the `Order` table stores it.
public struct Order: Codable, Sendable, Equatable {
    public var id: String
    public var totalCents: Int
    /// `placed`, then `fulfilled` once the fulfilment job has run.
    public var status: String
    public var lines: [Quote]
    public var fulfilledAt: Int64?
    public var createdAt: Int64?
}

/// A daily report as the `Report` table stores it.
public struct Report: Codable, Sendable, Equatable {
    public var id: String
    public var orders: Int
    public var revenueCents: Int
}

/// A checkout: the cart, and how long fulfilment takes (a stand-in for calling a warehouse).
public struct Checkout: Codable, Sendable, Equatable {
    public var cart: Cart
    public var processingMs: Int?

    public init(cart: Cart, processingMs: Int? = nil) {
        self.cart = cart
        self.processingMs = processingMs
    }
}

/// What the fulfilment job needs.
public struct Fulfilment: Codable, Sendable, Equatable {
    public var orderId: String
    public var processingMs: Int
}

/// The orders module's tables, operations and jobs.
public enum Orders {
    public static let table = TableRef<Order>("Order")
    public static let reports = TableRef<Report>("Report")
    /// Prices the cart (through the cart and pricing modules), stores the order and queues its
    /// fulfilment, in one transaction.
    public static let checkout = Operation<Checkout, Order>(module: "orders", name: "checkout")
    /// Marks an order fulfilled after its processing time; retried with backoff when it fails.
    public static let fulfil = Job<Fulfilment>(module: "orders", name: "fulfil", retry: RetryPolicy(maximumAttempts: 5))
    public static let statuses: Set<String> = ["placed", "fulfilled"]
}

/// Orders: checkout, a fulfilment job, a daily report, rules on the `Order` table and an
/// `/orders/{id}/status` resource.
public struct OrdersModule: Module {
    public let name = "orders"

    public init() {}

    public func register(_ builder: inout ModuleBuilder) {
        builder.handle(Orders.checkout) { checkout, context in
            let total = try await context.modules.call(Carts.total, checkout.cart, logger: context.logger)
            let order = Order(
                id: RecordKey.uuidText(), totalCents: total.totalCents, status: "placed", lines: total.lines)
            let processing = max(0, min(checkout.processingMs ?? 0, 60_000))
            // The order and its fulfilment job commit together, or neither does.
            return try await context.write { txn in
                let stored = try txn.insert(Orders.table, order)
                try txn.enqueue(Orders.fulfil, Fulfilment(orderId: order.id, processingMs: processing))
                return stored
            }
        }

        builder.job(Orders.fulfil) { fulfilment, context in
            if fulfilment.processingMs > 0 { try await Task.sleep(for: .milliseconds(fulfilment.processingMs)) }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let updated = try await context.write { txn in
                try txn.update(Orders.table, RecordKey(fulfilment.orderId)) { order in
                    order.status = "fulfilled"
                    order.fulfilledAt = now
                }
            }
            guard updated != nil else { throw OperationError.notFound("order \(fulfilment.orderId) is gone") }
            context.logger.info("order fulfilled", metadata: ["order": "\(fulfilment.orderId)"])
        }

        // At 00:05 UTC: the orders so far and their revenue, one Report row per day. A day
        // missed while no cron process ran is reported once when one starts again.
        builder.schedule("daily-report", .cron("5 0 * * *"), missed: .runOnce) { run, context in
            let day = String(DateValue.format(run.dueAt).prefix(10))
            try await context.write { txn in
                let orders = try txn.records(Orders.table)
                try txn.put(Orders.reports, Report(id: day, orders: orders.count, revenueCents: orders.reduce(0) { $0 + $1.totalCents }))
            }
        }

        // Rules every write to Order follows, whoever makes it (REST clients included).
        builder.table(Orders.table) { hooks in
            hooks.write { order, write in
                guard order.totalCents >= 0 else { throw OperationError.badRequest("totalCents must be ≥ 0, got \(order.totalCents)") }
                guard Orders.statuses.contains(order.status) else {
                    throw OperationError.badRequest(
                        "status must be one of \(Orders.statuses.sorted().joined(separator: ", ")), got '\(order.status)'")
                }
                if write.previous?.status == "fulfilled" && order.status != "fulfilled" {
                    throw OperationError.conflict("order \(order.id) is fulfilled; it cannot go back to \(order.status)")
                }
                return order
            }
            hooks.delete { order, _ in
                if order.status == "fulfilled" { throw OperationError.conflict("fulfilled orders are kept; order \(order.id) cannot be deleted") }
            }
        }

        builder.resource("/orders/{id}/status") { r in
            r.get { call, context in
                let id = call.request.parameters["id"] ?? ""
                guard let order = try await context.get(Orders.table, RecordKey(id)) else { throw OperationError.notFound("no order \(id)") }
                return try .json(["id": order.id, "status": order.status])
            }
        }
    }
}
