package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck"
)

// gatedStore is a real store whose loads, once they have read the store,
// wait for gate before they return.
type gatedStore struct {
	Store
	mu      sync.Mutex
	finds   int
	gate    chan struct{}
	entered chan struct{}
}

func (s *gatedStore) Find(ctx context.Context, token string) ([]byte, bool, error) {
	b, ok, err := s.Store.Find(ctx, token)
	s.mu.Lock()
	s.finds++
	first := s.finds == 1
	s.mu.Unlock()
	if first {
		s.entered <- struct{}{}
		<-s.gate
	}
	return b, ok, err
}

// TestConcurrentLoadsAreSharedButNeverStale: concurrent requests of one
// session share loads, yet a request never gets a load that read the
// store before it arrived — a write acknowledged in between would be
// missing, and the user would see the session go back in time.
func TestConcurrentLoadsAreSharedButNeverStale(t *testing.T) {
	n, err := hatcheck.Open(context.Background(), hatcheck.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	inner := EmbeddedStore(n)
	st := &gatedStore{Store: inner, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	m := NewManager(st)
	// A session holding v1, written by another server.
	other := NewManager(inner)
	ctx, _ := other.Load(context.Background(), "")
	other.Put(ctx, "v", "v1")
	token, _, err := other.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	load := func(out *string, wg *sync.WaitGroup) {
		defer wg.Done()
		ctx, err := m.Load(context.Background(), token)
		if err != nil {
			t.Error(err)
			return
		}
		*out = m.GetString(ctx, "v")
	}
	var wg sync.WaitGroup
	var first string
	wg.Add(1)
	go load(&first, &wg)
	<-st.entered // the first load has read v1 and is held

	// Another server writes v2, acknowledged after the first load read.
	ctx, _ = other.Load(context.Background(), token)
	other.Put(ctx, "v", "v2")
	if _, _, err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Eight requests arrive now: they must see v2, and share one load.
	later := make([]string, 8)
	for i := range later {
		wg.Add(1)
		go load(&later[i], &wg)
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.waiting(token) != len(later) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", m.waiting(token), len(later))
		}
		time.Sleep(time.Millisecond)
	}
	close(st.gate)
	wg.Wait()
	if first != "v1" {
		t.Errorf("first load = %q, want v1", first)
	}
	for i, g := range later {
		if g != "v2" {
			t.Errorf("request %d, arriving after the write, = %q, want v2 (it was given a stale load)", i, g)
		}
	}
	if st.finds != 2 {
		t.Errorf("%d loads for 9 concurrent requests, want 2 (one each side of the write)", st.finds)
	}
	if len(m.flights.m) != 0 {
		t.Errorf("%d tokens left in the flight table after every load ended", len(m.flights.m))
	}
}

// waiting is how many requests wait for the next load of token.
func (m *Manager) waiting(token string) int {
	m.flights.mu.Lock()
	defer m.flights.mu.Unlock()
	if tf := m.flights.m[token]; tf != nil && tf.next != nil {
		return tf.next.waiters
	}
	return 0
}
