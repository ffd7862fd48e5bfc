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

    @Test func aNullMemberIsPresent() {
        var object = JSONObject()
        object["n"] = .null
        #expect(object.count == 1)
        #expect(object["n"] == .null)
    }
}
