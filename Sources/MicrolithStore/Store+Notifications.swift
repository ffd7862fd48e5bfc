import Synchronization

extension WriteTransaction {
    /// Tells the listeners of `channel` (``Store/listen(_:_:)``), once this transaction has
    /// committed, that it did something they wait for; a transaction that rolls back tells
    /// nobody. Notifying a channel twice in one commit tells its listeners once.
    ///
    /// The store gives channels no meaning: the job queue, for one, notifies its channel when a
    /// job is enqueued, and its workers listen to wake up.
    package func notify(_ channel: String) {
        notifications.insert(channel)
    }
}

extension Store {
    /// Registers `listener`, called with the database's name after each commit of that database
    /// in which a transaction notified `channel` (``WriteTransaction/notify(_:)``).
    ///
    /// It is called on the writer's thread, after COMMIT and before the commit's writers are
    /// resumed: it should only hand the news on.
    package func listen(_ channel: String, _ listener: @escaping @Sendable (String) -> Void) {
        channelListeners.withLock { $0[channel, default: []].append(listener) }
    }

    /// Calls the listeners of every channel `transactions` notified, once per channel.
    func tellListeners(_ transactions: [WriteTransaction], database: String) {
        var channels: Set<String> = []
        for txn in transactions { channels.formUnion(txn.notifications) }
        let listeners = channelListeners.withLock { all in channels.sorted().flatMap { all[$0] ?? [] } }
        for listener in listeners { listener(database) }
    }
}
