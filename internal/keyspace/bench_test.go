package keyspace

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sessionKey is the shape of a PHP session key, the common case.
func sessionKey(i int) string { return fmt.Sprintf("PHPREDIS_SESSION:%032x", i) }

func BenchmarkPut(b *testing.B) {
	ks := New(16)
	keys := make([]string, 100000)
	for i := range keys {
		keys[i] = sessionKey(i)
	}
	val := bytes.Repeat([]byte("v"), 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// A fresh value per write, as the executor hands over.
		ks.Put(0, keys[i%len(keys)], &Entry{Type: TypeString, Str: bytes.Clone(val), ExpireAt: 1 << 40}, 1)
		i++
	}
}

func BenchmarkGet(b *testing.B) {
	ks := New(16)
	keys := make([]string, 100000)
	val := bytes.Repeat([]byte("v"), 1024)
	for i := range keys {
		keys[i] = sessionKey(i)
		ks.Put(0, keys[i], &Entry{Type: TypeString, Str: bytes.Clone(val), ExpireAt: 1 << 40}, 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := ks.Get(0, keys[i%len(keys)], 2)
		if e == nil || len(e.Str) != len(val) {
			b.Fatal("missing")
		}
		i++
	}
}

// benchSessions is how many 1 KB sessions the memory and GC benchmarks
// store; HATCHECK_BENCH_SESSIONS overrides it.
func benchSessions() int {
	if n, err := strconv.Atoi(os.Getenv("HATCHECK_BENCH_SESSIONS")); err == nil && n > 0 {
		return n
	}
	return 1000000
}

// rss is the resident set size of this process, from /proc (Linux only).
func rss(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm")
	}
	f := strings.Fields(string(data))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// fillSessions stores n sessions of 1 KB with a TTL, as a session handler
// writes them.
func fillSessions(ks *Keyspace, n int) {
	val := bytes.Repeat([]byte("s"), 1024)
	for i := 0; i < n; i++ {
		ks.Put(0, sessionKey(i), &Entry{Type: TypeString, Str: bytes.Clone(val), ExpireAt: 1 << 40}, 1)
	}
}

// BenchmarkMemoryPerSession reports the resident memory a stored 1 KB
// session costs (RSS growth after a full collection, divided by the count)
// and the Go heap's share of it.
func BenchmarkMemoryPerSession(b *testing.B) {
	n := benchSessions()
	for b.Loop() {
		b.StopTimer()
		settle()
		before := rss(b)
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		b.StartTimer()
		ks := New(16)
		fillSessions(ks, n)
		b.StopTimer()
		settle()
		after := rss(b)
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(after-before)/float64(n), "rss-B/session")
		b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/float64(n), "heap-B/session")
		runtime.KeepAlive(ks)
		ks = nil
		// The arena's memory goes back to the system from a cleanup that
		// runs after the collector finds the keyspace unreachable: wait
		// for it, or the next round would measure against a stale RSS.
		for i := 0; i < 100 && rss(b) > before+(after-before)/4; i++ {
			settle()
			time.Sleep(10 * time.Millisecond)
		}
		b.StartTimer()
	}
}

// BenchmarkGC measures one full collection while the sessions are stored:
// the cost the collector pays for the keyspace on every cycle.
func BenchmarkGC(b *testing.B) {
	ks := New(16)
	fillSessions(ks, benchSessions())
	settle()
	var pause time.Duration
	b.ResetTimer()
	for b.Loop() {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		pause += time.Duration(ms1.PauseTotalNs - ms0.PauseTotalNs)
	}
	b.ReportMetric(float64(pause.Nanoseconds())/float64(b.N), "stw-ns/gc")
	runtime.KeepAlive(ks)
}
