package compat

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/clustertest"
)

// TestRedisPyJobQueueThroughFailover runs reliable-queue workers on
// redis-py (python/job_queue.py: BLMOVE to a processing list, LREM when
// done) on the two followers of a three-node cluster, pushes jobs through
// them, and kills the leader while the workers wait and work. Every job
// acknowledged to the producer must be done exactly once, or still be in
// the queue or a processing list (a BLMOVE whose reply the failover lost);
// none may be done twice.
func TestRedisPyJobQueueThroughFailover(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import redis").Run(); err != nil {
		missing(t, "python module redis", "python3-redis")
	}
	c := clustertest.Start(t, 3)
	ctx := clustertest.Ctx(t, 120*time.Second)
	leader := c.Leader()
	followers := c.Others(leader)
	stop := filepath.Join(t.TempDir(), "stop")

	var mu sync.Mutex
	done := map[string]int{}
	var workers sync.WaitGroup
	for i := range 4 {
		f := followers[i%2]
		cmd := exec.Command(py, "python/job_queue.py", fmt.Sprint("w", i), f.Cfg.RedisAddr)
		cmd.Env = append(os.Environ(), "STOP_FILE="+stop)
		out, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		ready := make(chan struct{})
		workers.Add(1)
		go func() {
			defer workers.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "ready":
					close(ready)
				case strings.HasPrefix(line, "done "):
					mu.Lock()
					done[strings.TrimPrefix(line, "done ")]++
					mu.Unlock()
				default:
					t.Logf("worker w%d: %s", i, line)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("worker w%d: %v\n%s", i, err, stderr.String())
			}
		}()
		select {
		case <-ready:
		case <-time.After(20 * time.Second):
			t.Fatalf("worker w%d did not start: %s", i, stderr.String())
		}
	}

	acked, maybe := map[string]bool{}, map[string]bool{}
	for i := 0; i < 300; i++ {
		if i == 100 {
			leader.Kill()
			t.Logf("killed the leader %s", leader.ID)
		}
		job := fmt.Sprint("job-", i)
		if err := followers[i%2].Client().LPush(ctx, "jobs", job).Err(); err != nil {
			maybe[job] = true
			continue
		}
		acked[job] = true
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	workers.Wait()

	cl := followers[0].Client()
	left := map[string]bool{}
	for _, list := range []string{"jobs", "jobs:processing:w0", "jobs:processing:w1", "jobs:processing:w2", "jobs:processing:w3"} {
		jobs, err := cl.LRange(ctx, list, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if left[j] || done[j] > 0 {
				t.Errorf("%s is in %s and done or elsewhere too", j, list)
			}
			left[j] = true
		}
	}
	for j, n := range done {
		if n > 1 {
			t.Errorf("%s done %d times", j, n)
		}
		if !acked[j] && !maybe[j] {
			t.Errorf("%s done but never pushed", j)
		}
	}
	for j := range acked {
		if done[j] == 0 && !left[j] {
			t.Errorf("%s acknowledged and lost", j)
		}
	}
	t.Logf("%d jobs done, %d left in lists, %d pushes acknowledged, %d of unknown outcome", len(done), len(left), len(acked), len(maybe))
}
