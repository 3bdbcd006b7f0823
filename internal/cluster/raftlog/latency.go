package raftlog

import (
	"sync/atomic"
	"time"
)

// AppendBuckets are the upper bounds of the append-latency histogram:
// 50 µs doubling to about 1.6 s, and +Inf.
var AppendBuckets = func() []time.Duration {
	b := make([]time.Duration, 16)
	for i := range b {
		b[i] = 50 * time.Microsecond << i
	}
	return b
}()

// Latency is a histogram of how long appending entries took, the fsync
// included: the disk's share of every write's latency.
type Latency struct {
	Count   uint64
	Sum     time.Duration
	Buckets []uint64 // cumulative counts per AppendBuckets bound
}

// latency counts appends without locks; the writer is the only one that
// adds to it.
type latency struct {
	count, sum atomic.Uint64
	buckets    [16]atomic.Uint64 // per bucket, not cumulative; beyond the last: count − Σ
}

func (h *latency) observe(d time.Duration) {
	for i, b := range AppendBuckets {
		if d <= b {
			h.buckets[i].Add(1)
			break
		}
	}
	h.sum.Add(uint64(d))
	h.count.Add(1)
}

// AppendLatency is the histogram of entry appends (each one write and one
// fsync of the log) since Open.
func (l *Log) AppendLatency() Latency {
	out := Latency{Buckets: make([]uint64, len(AppendBuckets))}
	var cum uint64
	for i := range AppendBuckets {
		cum += l.appends.buckets[i].Load()
		out.Buckets[i] = cum
	}
	out.Sum = time.Duration(l.appends.sum.Load())
	out.Count = max(l.appends.count.Load(), cum)
	return out
}
