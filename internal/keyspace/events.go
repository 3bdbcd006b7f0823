package keyspace

// EventClass is the notify-keyspace-events class of a keyspace event.
type EventClass uint8

// Classes, as redis's letters: g $ h s x e l z t.
const (
	EventGeneric EventClass = iota
	EventString
	EventHash
	EventSet
	EventExpired
	EventEvicted
	EventList
	EventZSet
	EventStream
)

// Events receives what applying the log publishes: PUBLISH messages and
// keyspace notifications. Every node applies every entry, so each node's
// subscribers see each event once, whichever node made the change. The
// receiver must not block: it runs on the apply path.
type Events interface {
	// Publish delivers message to the node's subscribers of channel and
	// returns how many there are.
	Publish(channel, message []byte) int64
	// Notify reports that event happened to key in db.
	Notify(db int, class EventClass, event string, key string)
}

// SetEvents sets the receiver of events (nil: none).
// A receiver that watches users (UserWatcher) is told the current ones.
func (ks *Keyspace) SetEvents(e Events) {
	ks.events = e
	ks.notifyUsers()
}

// Notify passes an event to the receiver, if any.
func (ks *Keyspace) Notify(db int, class EventClass, event, key string) {
	if ks.events != nil {
		ks.events.Notify(db, class, event, key)
	}
}

// Publish passes a message to the receiver, if any, and returns the number
// of subscribers it reached.
func (ks *Keyspace) Publish(channel, message []byte) int64 {
	if ks.events == nil {
		return 0
	}
	return ks.events.Publish(channel, message)
}

// PopWatcher is an optional capability of Events. A pop proposed for a
// blocked client (BLPOP and the like) carries the client's token, and
// applying it reports here, on every node, what it took: the node that
// holds the client learns the outcome from its own apply even when the
// proposal's reply was lost in a failover, so a popped element is never
// left with no one to receive it. The receiver must copy token (it aliases
// the log entry) and must not block.
type PopWatcher interface {
	// Popped reports the elements taken from key (none: nothing was
	// popped, key is "").
	Popped(token []byte, key string, elems [][]byte)
}

// Popped passes a served pop's outcome to the receiver, if it watches them.
func (ks *Keyspace) Popped(token []byte, key string, elems [][]byte) {
	if w, ok := ks.events.(PopWatcher); ok {
		w.Popped(token, key, elems)
	}
}

// ReplaceWatcher is an optional capability of Events: told when the
// keyspace was replaced whole (a snapshot installed) or two databases were
// swapped (Swap), which changes keys without an event for each. Blocked clients (see PopWatcher) then look at
// their keys again.
type ReplaceWatcher interface {
	Replaced()
}

// FlushEvents is an optional capability of an Events receiver: it is told
// when databases are emptied at once (FLUSHDB, FLUSHALL, a snapshot that
// replaces the keyspace), which publishes no event per key. Client-side
// caching needs it: redis tells tracking clients to drop everything then.
type FlushEvents interface {
	// Flushed reports that database db (-1: every database) was emptied.
	Flushed(db int)
}

// ApplyEvents is an optional capability of an Events receiver: it is told
// when a log entry has been applied, after the entry's events, so that it
// can deliver what they produced together (redis sends the client-side
// caching invalidations of one event loop iteration together).
type ApplyEvents interface {
	Applied(index uint64)
}

// NotifyFlush tells the receiver, if it wants to know, that database db
// (-1: every database) was emptied.
func (ks *Keyspace) NotifyFlush(db int) {
	if f, ok := ks.events.(FlushEvents); ok {
		f.Flushed(db)
	}
}
