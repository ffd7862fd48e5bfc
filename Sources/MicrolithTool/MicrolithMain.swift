import Microlith

/// The `microlith` executable: the runtime with no modules of its own.
@main
enum MicrolithMain {
    static func main() async {
        await Microlith.main(modules: [])
    }
}
