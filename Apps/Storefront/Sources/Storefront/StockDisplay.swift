import Foundation
import Microlith

/// How the stock of products appears on a page being built.
///
/// When the page is being kept and the inventory runs in this process, each stock figure is a
/// live slot: the kept page shows the committed stock each time it is served, and a checkout
/// leaves it kept. Otherwise (services topology, caching off) the figures are fetched from the
/// inventory module now.
struct StockDisplay: Sendable {
    /// The stock fields of each product's card.
    var cards: [String: (stock: Shown<Int>?, inStock: Shown<Bool>?, label: Shown<String>?)] = [:]
    /// The product page's stock block, for the product it was asked for.
    var block: Shown<String>?

    /// Stock for `ids`; `html` gives the HTML fields, else the JSON ones; `blockFor` adds the
    /// product page's block for that product.
    static func load(_ ids: [String], html: Bool, blockFor: String? = nil, _ context: OperationContext) async throws -> StockDisplay {
        var display = StockDisplay()
        let unique = Array(Set(ids)).sorted()
        if context.isKeepingResponse, context.modules.localModules.contains("inventory") {
            for id in unique {
                if html {
                    let line = try await context.live(Tables.stock, RecordKey(id)) { Self.label(Self.quantity($0)) }
                    display.cards[id] = (nil, nil, .live(line))
                } else {
                    let stock = try await context.live(Tables.stock, RecordKey(id)) { Self.quantity($0).map(String.init) ?? "null" }
                    let inStock = try await context.live(Tables.stock, RecordKey(id)) { (Self.quantity($0) ?? 0) > 0 ? "true" : "false" }
                    display.cards[id] = (.live(stock), .live(inStock), nil)
                }
            }
            if html, let product = blockFor {
                let escaped = escape(product)
                display.block = .live(try await context.live(Tables.stock, RecordKey(product)) { Self.block(escaped: escaped, Self.quantity($0)) })
            }
            return display
        }
        let values = try await context.modules.call(Inventory.stock, ProductIDs(unique), logger: context.logger).values
        for id in unique {
            let q = values[id]
            display.cards[id] = html ? (nil, nil, .value(label(q))) : (q.map(Shown.value), .value((q ?? 0) > 0), nil)
        }
        if html, let product = blockFor { display.block = .value(block(escaped: escape(product), values[product])) }
        return display
    }

    static func quantity(_ record: JSONObject?) -> Int? {
        if case .int(let n)? = record?["quantity"] { return Int(n) }
        return nil
    }

    /// The stock line of a listing card.
    static func label(_ quantity: Int?) -> String {
        guard let quantity, quantity > 0 else { return #"<div class="out">Out of stock</div>"# }
        return #"<div class="in">\#(quantity) in stock</div>"#
    }

    /// The product page's stock line and add-to-cart form, for a product id already escaped for HTML.
    static func block(escaped product: String, _ quantity: Int?) -> String {
        guard let quantity, quantity > 0 else { return #"<p class="out">Out of stock</p>"# }
        return #"""
            <p class="in">\#(quantity) in stock</p>
            <form method="get" action="/cart">
            <input type="hidden" name="add" value="\#(product)">
            <label>Quantity <input type="number" name="quantity" value="1" min="1" max="\#(quantity)"></label>
            <button type="submit">Add to cart</button>
            </form>
            """#
    }

    static func escape(_ text: String) -> String {
        HTMLText.escaped(text)
    }
}
