package clustertest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/cluster"
	"github.com/hatcheck/hatcheck/internal/config"
)

// TestSnapshotCatchUp: a follower is down while sessions are written; the
// leader has compacted its log past the follower's position, so on restart
// the follower catches up by installing a snapshot. It logs how long that
// took. The figure in docs/RELIABILITY.md comes from
//
//	HATCHECK_CATCHUP_SESSIONS=1000000 go test -run TestSnapshotCatchUp -v -timeout 30m ./internal/clustertest
func TestSnapshotCatchUp(t *testing.T) {
	sessions := 20000
	if v, err := strconv.Atoi(os.Getenv("HATCHECK_CATCHUP_SESSIONS")); err == nil && v > 0 {
		sessions = v
	}
	c := Start(t, 3, func(cfg *config.Config) {
		// The default snapshot settings, except in the small (CI) run: there
		// the log is compacted often and kept short, in small files (raft-wal
		// deletes old entries a file at a time and still serves those of a
		// file not yet deleted), so that the lagging node really is behind
		// the log's start.
		if sessions < 100000 {
			cfg.SnapshotThreshold = 128
			cfg.SnapshotInterval = 200 * time.Millisecond
			cfg.TrailingLogs = 64
			cfg.LogSegmentSize = 256 << 10
		}
	})
	ctx := Ctx(t, 30*time.Minute)
	leader := c.Leader()
	lagging := c.Others(leader)[0]
	lagging.Kill()
	killedAt := leader.Server().Node().Stats().CommitIndex

	value := strings.Repeat("s", 200) // a typical serialized session
	writeStart := time.Now()
	const writers = 32
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One SET per request, as session handlers write: a pipeline
			// would become one log entry, and the test needs many entries
			// so that the leader compacts its log past the lagging node.
			cl := c.Others(lagging)[w%2].Client()
			for i := w; i < sessions; i += writers {
				if err := cl.Set(ctx, fmt.Sprintf("sess:%d", i), value, time.Hour).Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wrote := time.Since(writeStart)
	// Let the leader snapshot and compact past the lagging node's position
	// (it keeps TrailingLogs entries behind its snapshot).
	for st := leader.Server().Node().Stats(); st.LastSnapshotIndex <= killedAt+c.Nodes[0].Cfg.TrailingLogs; st = leader.Server().Node().Stats() {
		if ctx.Err() != nil {
			t.Fatal("leader did not snapshot past the lagging node")
		}
		time.Sleep(50 * time.Millisecond)
	}

	lagging.Start()
	start := time.Now()
	restoresAtStart := lagging.Server().Node().Stats().Restores
	// Caught up = holds every acknowledged session. (Waiting for the
	// leader's commit index instead can stop early on a loaded machine,
	// where leadership may have moved during the writes and the node read
	// as leader lags the real commit index.)
	var st cluster.Stats
	deadline := time.Now().Add(2*time.Minute + time.Duration(sessions)*time.Millisecond)
	for st = lagging.Server().Node().Stats(); st.Keys[0] != sessions; st = lagging.Server().Node().Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("follower did not catch up: it holds %d sessions, want %d", st.Keys[0], sessions)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	if st.Restores <= restoresAtStart {
		t.Fatalf("the follower caught up without installing a snapshot (restores %d); the test must exercise snapshot install", st.Restores)
	}
	t.Logf("%d sessions (200-byte values) written in %v (%.0f/s); the restarted follower caught up by snapshot install in %v, used memory %d MB",
		sessions, wrote.Round(time.Millisecond), float64(sessions)/wrote.Seconds(), took.Round(time.Millisecond), st.UsedMemory>>20)
}
