// Package transport carries raft messages (go.etcd.io/raft/v3) between the
// nodes of a cluster over the peer port. The node's RawNode loop hands it
// Ready's messages with Send and receives what peers send through a Handler.
//
// # Connections
//
// The transport is given connections that the peer port has already
// authenticated: Config.Dial says the hello for outgoing ones, and the mux
// hands incoming ones to Serve. Every connection the transport opens then
// starts with a stream header saying what it carries and between whom:
//
//	kind byte | from uint64 | to uint64          (big endian)
//
// kind is 'm' for a message stream or 's' for a snapshot stream. A receiver
// refuses a stream whose to is not its own id, so a message meant for a node
// that used to live at an address never reaches the node that lives there now.
//
// # Message streams
//
// Each peer has one message connection, written by one goroutine that owns
// it. After the header the stream is a sequence of frames
//
//	length uint32 | raftpb.Message marshaled (gogo)
//
// The writer takes every message waiting in the peer's queue, marshals them
// straight into one buffer (up to Config.MaxBatchBytes; a larger message goes
// alone) and writes the buffer with one Write. The receiver never writes on a
// message stream; the sender reads from it only to learn at once when the
// receiver closes it.
//
// The receiver reads frames with one reused buffer and hands every frame that
// is already buffered to Handler.Receive in one call. A frame longer than
// Config.MaxFrameBytes (default 1 GiB: it must exceed the largest log entry,
// and max-value-size is 512 MB) or one that does not unmarshal closes that
// connection with a warning (keys peer, err); nothing else is affected, and
// the sender reconnects. The sender drops, counts and logs a message longer
// than its own MaxFrameBytes instead of breaking its connection with it. A new message stream from a peer closes the older one and waits
// until its last messages have been handed on before it delivers its own, so
// a reconnect never reorders messages that both arrive.
//
// # Ownership
//
// Send copies each raftpb.Message (the struct) into the peer's queue, but the
// byte slices it refers to (entries' Data, Context, the snapshot metadata)
// are read later, by the peer's goroutine, until the message is written: the
// caller must not modify them after Send. raft never changes a message it
// has emitted (v3.6 appends to its unstable log without overwriting slices it
// handed out), and the durable log's Storage.Entries must likewise never
// reuse the memory of entries it returned.
//
// Receive owns msgs and everything they refer to: the transport never touches
// them after the call, and the slice is new for each call. This holds because
// gogo's generated Unmarshal copies every byte field (Entry.Data,
// Message.Context, Snapshot.Data) out of the frame (append(m.Data[:0], ...)
// into a fresh Message), so the read buffer can be reused for the next frame.
//
// # Queues and back-pressure
//
// Send never blocks. Each peer has a bounded queue (Config.QueueSize). When it
// is full the message is dropped and counted, and Handler.ReportUnreachable is
// called once for the episode (which ends when the writer next completes a
// write or fails), not once per message: raft then stops streaming to that
// peer and probes it, and raft's own flow control (MaxInflightMsgs) is what
// slows the leader down. Messages to a peer the transport does not know are dropped and
// counted in Stats.DroppedUnknown.
//
// # Reconnecting
//
// A peer's goroutine dials on its own (never on the caller's), with backoff
// from 100 ms doubling to 1 s. Each failure (a dial that fails, a write that
// fails or times out after Config.WriteTimeout, the receiver closing the
// connection) is reported with one ReportUnreachable. While the peer is
// unreachable, messages sent to it are dropped and counted: they would be
// stale by the time it is back, and raft resends what matters. A connection
// that fails after living longer than the backoff cap is redialed at once.
// SetPeer with a new address closes the connection and dials the new one,
// keeping the queue; messages sent after SetPeer returns go to the new
// address (short of a batch being assembled at that very moment). Messages
// lost with a failed connection are not counted as dropped: some may have
// arrived.
//
// # Snapshots
//
// A MsgSnap never enters the message queue. Send starts a goroutine that
// opens a second connection and streams the snapshot:
//
//	header | length uint32 | MsgSnap marshaled, Snapshot.Data empty | size uint64
//	chunk*  : length uint32 | data             (1 ≤ length ≤ 256 KiB)
//	end     : 0 uint32 | CRC-32C of all data uint32
//	answer  : one status byte from the receiver: 0 stored, 1 failed
//
// The data comes from Config.Snapshots (or, when it is nil, from the message's
// own Snapshot.Data), read one chunk at a time: memory use is one chunk
// whatever the snapshot's size, on both sides. The receiver calls
// Handler.ReceiveSnapshot with a reader over the chunks that returns io.EOF
// only after the size and checksum were verified, and an error wrapping
// ErrTruncated or ErrChecksum otherwise. The sender then calls
// ReportSnapshot(to, ok), with ok false on any failure. One snapshot is in
// flight per peer: a second MsgSnap while one is sent is reported failed at
// once.
//
// # Concurrency
//
// Send, SetPeer, RemovePeer, Serve, Stats and Close may be called from any
// goroutine. Handler methods are called only from the transport's own
// goroutines, never from the caller of Send and never with a transport lock
// held: a Handler may hand its reports to the raft loop and wait for room,
// even though that loop is what calls Send (what Send itself finds out, a
// full queue or a snapshot it cannot start, goes through a report goroutine).
// A Handler that blocks stalls only the connection, peer or report goroutine
// it was called from. No Handler method is called after Close returns. Close stops dialing, closes every connection (including those
// given to Serve), and joins every goroutine; messages sent after Close are
// dropped.
package transport
