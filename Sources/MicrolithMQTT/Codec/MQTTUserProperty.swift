/// An MQTT 5 user property: a name/value pair of UTF-8 strings. Names may repeat, and order is kept.
public struct MQTTUserProperty: Sendable, Equatable {
    /// The property's name.
    public var name: String
    /// The property's value.
    public var value: String

    /// Creates a user property.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
