package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
