import MicrolithCache
public import MicrolithJSON
public import MicrolithStore

extension OperationContext {
    /// Whether the response being built may be kept (a resource declared with
    /// `get(keep: true)`, and nothing read so far rules it out): ``live(_:_:render:)`` then
    /// hands out live slots.
    public var isKeepingResponse: Bool {
        guard let recording = ReadObservation.observer as? KeptRecording else { return false }
        return recording.untrackedReason == nil
    }

    /// Text showing the record `key` of `table` that stays current on a kept response.
    ///
    /// While a resource declared with `get(keep: true)` builds its response, this returns a
    /// marker to put in the body where the text goes; each time the kept response is served the
    /// marker is replaced with `render` of the committed record (from the record cache, `nil`
    /// when there is none). The record is not part of what the response depends on, so writes to
    /// it leave the response kept: a page shell stays cached while a stock level on it changes.
    /// Anywhere else (no kept response being built) it returns `render` of the record now.
    ///
    /// `render`'s text is inserted as it is: escape it for the body's format. In a JSON body a
    /// marker that is a whole string value (`"stock": "<marker>"`) is replaced with its quotes,
    /// so `render` gives JSON (`12`, `true`, `"text"`). It runs on the event loop for every
    /// request served: keep it short.
    /// - Throws: ``OperationError`` for an unknown table or a key that does not fit it.
    public func live<Record>(
        _ table: TableRef<Record>, _ key: RecordKey, render: @escaping @Sendable (JSONObject?) -> String
    ) async throws -> String {
        let store = try self.store
        do {
            let layout = try table.layout(in: store)
            let id = try table.id(key, table: layout)
            if let recording = ReadObservation.observer as? KeptRecording, recording.untrackedReason == nil {
                // Read it into the record cache, outside the read set: serving fills it from there.
                _ = try await ReadObservation.$observer.withValue(nil) { try await store.get(layout, id) }
                return recording.addSlot(LiveSlot(table: layout, id: id, render: render))
            }
            return render(try await store.get(layout, id)?.record)
        } catch let error as StoreError {
            throw OperationError(error)
        }
    }
}
