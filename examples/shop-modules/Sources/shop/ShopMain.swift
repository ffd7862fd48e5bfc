import Microlith
import ShopModules

/// The shop's binary: `shop serve app` runs everything; `--roles` splits it.
@main
enum ShopMain {
    static func main() async {
        await Microlith.main(modules: [PricingModule(), CartModule(), OrdersModule()])
    }
}
