package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRewriteReplacesOnlyTheResults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "B.md")
	doc := "intro\n" + beginMark + "\nold table\n" + endMark + "\noutro\n"
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewrite(p, "new table\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "intro\n" + beginMark + "\nnew table\n" + endMark + "\noutro\n"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	if err := os.WriteFile(p, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewrite(p, "x"); err == nil || !strings.Contains(err.Error(), "section") {
		t.Fatalf("file without markers: %v", err)
	}
}

func TestSummaries(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median = %v", m)
	}
	rs := []result{{PerSec: 300}, {PerSec: 100}, {PerSec: 200}}
	if got := spread(rs); got != "200 (100–300)" {
		t.Fatalf("spread = %q", got)
	}
}

func TestServersStartFromAnEmptyDirectory(t *testing.T) {
	base := t.TempDir()
	dir, err := freshDir(base, "redis+replica")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "left-from-a-run"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := freshDir(base, "redis+replica")
	if err != nil || again != dir {
		t.Fatalf("second start: %q %v, want %q", again, err, dir)
	}
	if left, _ := os.ReadDir(again); len(left) != 0 {
		t.Fatalf("the second start found %d files of the first", len(left))
	}
}

// TestMemcachedBinaryRow runs the memcached binary row's workload briefly
// against both of its servers, as compare starts and loads them: hatcheck
// bench must finish without an error against memcached and hatcheck.
func TestMemcachedBinaryRow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hatcheck and starts servers")
	}
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Skip("no memcached")
	}
	var row *workload
	for i := range workloads {
		if workloads[i].protocol == "memcache-binary" {
			row = &workloads[i]
		}
	}
	if row == nil || row.ref != "memcached" || row.scenario != "mix" || row.pipeline != 1 {
		t.Fatalf("no mix 1:4, pipeline 1 row over the memcached binary protocol against memcached: %+v", row)
	}
	dir := t.TempDir()
	e := &env{dir: dir, hatcheck: filepath.Join(dir, "hatcheck"), servers: map[string]*server{}}
	if out, err := exec.Command("go", "build", "-o", e.hatcheck, "../../cmd/hatcheck").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	*duration, *warmup, *conns, *keys, *valueSz = 300*time.Millisecond, 0, 4, 1000, 100
	for _, name := range []string{row.ref, row.hc} {
		s, err := e.startServer(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.stop)
		r, err := e.bench(s.memcacheAddr(), row.protocol, row.scenario, row.pipeline, 0, true)
		if err != nil || r.PerSec == 0 {
			t.Fatalf("%s against %s: %+v, %v", row.name, name, r, err)
		}
	}
}
