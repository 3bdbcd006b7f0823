package transport

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// countHandler counts received messages and ignores everything else.
type countHandler struct {
	n    atomic.Int64
	wake chan struct{} // capacity 1
}

func (h *countHandler) Receive(msgs []raftpb.Message) {
	h.n.Add(int64(len(msgs)))
	select {
	case h.wake <- struct{}{}:
	default:
	}
}
func (h *countHandler) ReceiveSnapshot(raftpb.Message, io.Reader) error { return nil }
func (h *countHandler) ReportUnreachable(uint64)                        {}
func (h *countHandler) ReportSnapshot(uint64, bool)                     {}

// BenchmarkSendReceive measures MsgApps of 1 KB entries from Send on one
// transport to Receive on another, over loopback TCP. Like a raft leader
// under MaxInflightMsgs, the sender keeps at most 256 messages in flight,
// and sends 16 per Send, as one Ready would.
func BenchmarkSendReceive(b *testing.B) {
	for _, entries := range []int{1, 64} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) { benchSendReceive(b, entries) })
	}
}

func benchSendReceive(b *testing.B, entries int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	recv := &countHandler{wake: make(chan struct{}, 1)}
	rt := New(Config{ID: 2, Dial: tcpDial, Handler: recv})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rt.Serve(c)
		}
	}()
	st := New(Config{ID: 1, Dial: tcpDial, Handler: &countHandler{wake: make(chan struct{}, 1)}})
	b.Cleanup(func() {
		st.Close()
		ln.Close()
		<-done
		rt.Close()
	})
	st.SetPeer(2, ln.Addr().String())

	const window, perSend = 256, 16
	batch := make([]raftpb.Message, perSend)
	for i := range batch {
		batch[i] = app(uint64(i), entries, 1024)
	}
	b.SetBytes(int64(batch[0].Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(perSend, b.N-sent)
		for int64(sent+k)-recv.n.Load() > window {
			<-recv.wake
		}
		st.Send(batch[:k])
		sent += k
	}
	for recv.n.Load() < int64(b.N) {
		<-recv.wake
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if d := st.Stats().Peers[0].Dropped; d != 0 {
		b.Fatalf("%d messages dropped", d)
	}
}
