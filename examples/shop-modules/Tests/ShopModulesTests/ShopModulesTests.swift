import Microlith
import ShopModules
import Testing

@Suite struct ShopModulesTests {
    let modules: Modules

    init() throws {
        modules = try Modules([PricingModule(), CartModule()])
    }

    @Test func quotesApplyTheVolumeDiscount() async throws {
        #expect(try await modules.call(Pricing.quote, QuoteRequest(sku: "apple", quantity: 3)).totalCents == 150)
        #expect(try await modules.call(Pricing.quote, QuoteRequest(sku: "apple", quantity: 10)).totalCents == 450)
    }

    @Test func aCartIsPricedLineByLine() async throws {
        let cart = Cart(items: [QuoteRequest(sku: "bread", quantity: 2), QuoteRequest(sku: "cheese", quantity: 1)])
        let total = try await modules.call(Carts.total, cart)
        #expect(total.lines.map(\.sku) == ["bread", "cheese"])
        #expect(total.totalCents == 2 * 250 + 899)
    }

    @Test func pricingErrorsReachTheCartsCaller() async throws {
        let cart = Cart(items: [QuoteRequest(sku: "caviar", quantity: 1)])
        let error = await #expect(throws: OperationError.self) { try await modules.call(Carts.total, cart) }
        #expect(error?.code == "notFound")
        #expect(error?.message.contains("'caviar'") == true)
        await #expect(throws: OperationError.badRequest("the cart is empty")) { try await modules.call(Carts.total, Cart(items: [])) }
    }
}
