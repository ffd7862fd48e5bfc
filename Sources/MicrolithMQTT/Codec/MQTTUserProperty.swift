/// An MQTT 5 user property: a name/value pair of UTF-8 strings. Names may repeat, and order is kept.
package struct MQTTUserProperty: Sendable, Equatable {
    /// The property's name.
    package var name: String
    /// The property's value.
    package var value: String

    /// Creates a user property.
    package init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
