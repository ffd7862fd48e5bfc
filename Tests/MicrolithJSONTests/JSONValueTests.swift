import MicrolithJSON
import Testing

@Suite("JSONValue and JSONObject")
struct JSONValueTests {
    @Test func integersAndDoublesCompareNumerically() {
        #expect(JSONValue.int(5) == .double(5))
        #expect(JSONValue.double(5) == .int(5))
        #expect(JSONValue.int(5) != .double(5.5))
        #expect(JSONValue.int(1) != .string("1"))
        #expect(JSONValue.bool(true) != .int(1))
        #expect(JSONValue.null != .array([]))
    }

    @Test func objectEqualityIgnoresMemberOrder() {
        let a: JSONValue = ["x": 1, "y": [1, 2]]
        let b: JSONValue = ["y": [1, 2], "x": 1.0]
        #expect(a == b)
        #expect(a != ["x": 1])
        #expect(a != ["x": 1, "y": [2, 1]])
        #expect(a != ["x": 1, "z": [1, 2]])
    }

    @Test func accessors() {
        let value: JSONValue = ["s": "text", "n": 3, "d": 1.5, "a": [1], "o": ["k": nil]]
        #expect(value["s"]?.stringValue == "text")
        #expect(value["n"]?.doubleValue == 3)
        #expect(value["d"]?.doubleValue == 1.5)
        #expect(value["a"]?.arrayValue == [1])
        #expect(value["o"]?.objectValue?["k"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(JSONValue.string("x")["s"] == nil)
        #expect(JSONValue.string("x").doubleValue == nil)
        #expect(JSONValue.int(1).stringValue == nil)
    }

    @Test func typeNames() {
        let names = ([nil, true, 1, 1.5, "s", [], [:]] as [JSONValue]).map(\.typeName)
        #expect(names == ["null", "boolean", "number", "number", "string", "array", "object"])
    }

    @Test func settingAMemberAppendsOrReplacesInPlace() {
        var object = JSONObject()
        object["a"] = 1
        object["b"] = 2
        object["c"] = 3
        object["b"] = 20
        #expect(object.keys == ["a", "b", "c"])
        #expect(object.values == [1, 20, 3])
        #expect(object.count == 3)
        #expect(!object.isEmpty)
    }

    @Test func removingAMemberKeepsTheOthersReachable() {
        var object: JSONObject = ["a": 1, "b": 2, "c": 3, "d": 4]
        object["b"] = nil
        #expect(object.keys == ["a", "c", "d"])
        #expect(object["a"] == 1)
        #expect(object["c"] == 3)
        #expect(object["d"] == 4)
        #expect(object["b"] == nil)
        object["c"] = 30
        #expect(object.keys == ["a", "c", "d"])
        #expect(object["c"] == 30)
        object["b"] = 2
        #expect(object.keys == ["a", "c", "d", "b"])
        object["missing"] = nil
        #expect(object.count == 4)
        object["a"] = nil
        object["d"] = nil
        #expect(object.keys == ["c", "b"])
        #expect(Array(object.members.map(\.0)) == ["c", "b"])
        #expect(object["b"] == 2)
    }

    /// Objects past the linear-lookup limit (8 members) switch to a dictionary of positions: every
    /// operation agrees with a plain model on either side of the switch.
    @Test(arguments: [3, 8, 9, 30])
    func objectsOfEverySizeAgreeWithAModel(size: Int) {
        var object = JSONObject()
        var model: [(String, JSONValue)] = []
        for i in 0..<size {
            object["k\(i)"] = .int(Int64(i))
            model.append(("k\(i)", .int(Int64(i))))
        }
        func check(_ note: String) {
            #expect(object.keys == model.map(\.0), "\(note)")
            #expect(object.values == model.map(\.1), "\(note)")
            for (k, v) in model { #expect(object[k] == v, "\(note): \(k)") }
            #expect(object["absent"] == nil)
        }
        check("built")
        // Replace, remove from the middle and the front, re-add, add past the limit.
        object["k1"] = "one"
        if let i = model.firstIndex(where: { $0.0 == "k1" }) { model[i].1 = "one" }
        for gone in ["k2", "k0", "k\(size - 1)"] {
            object[gone] = nil
            model.removeAll { $0.0 == gone }
        }
        check("after removals")
        object["k0"] = true
        model.append(("k0", true))
        for i in size..<(size + 10) {
            let inserted = object.insertNew("n\(i)", .int(Int64(i)))
            #expect(inserted)
            model.append(("n\(i)", .int(Int64(i))))
        }
        let again = object.insertNew("k0", .null)
        #expect(!again, "a name already there is refused")
        check("after additions")
        var reversed = JSONObject()
        for (k, v) in model.reversed() { reversed[k] = v }
        #expect(reversed == object, "equality ignores order")
    }

    @Test func aNullMemberIsPresent() {
        var object = JSONObject()
        object["n"] = .null
        #expect(object.count == 1)
        #expect(object["n"] == .null)
    }
}
