package server

import (
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/hatcheck/hatcheck/internal/config"
)

func TestProcsFor(t *testing.T) {
	for _, c := range []struct{ procs, cpus, want int }{
		{0, 1, 3}, {0, 2, 4}, {0, 32, 34}, {1, 2, 1}, {8, 2, 8},
	} {
		if got := procsFor(c.procs, c.cpus); got != c.want {
			t.Errorf("procsFor(%d, %d) = %d, want %d", c.procs, c.cpus, got, c.want)
		}
	}
}

func TestTuneRuntime(t *testing.T) {
	oldProcs, oldGC := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	defer func() { runtime.GOMAXPROCS(oldProcs); debug.SetGCPercent(oldGC) }()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg := config.Default()
	cfg.Procs, cfg.GCPercent = 5, 40
	tuneRuntime(cfg, func(string) string { return "" }, logger)
	if got := runtime.GOMAXPROCS(0); got != 5 {
		t.Errorf("GOMAXPROCS = %d, want 5 from --procs", got)
	}
	if got := debug.SetGCPercent(100); got != 40 {
		t.Errorf("GC percent = %d, want 40 from --gc-percent", got)
	}

	// The environment variables win: the runtime has already applied them.
	runtime.GOMAXPROCS(2)
	env := map[string]string{"GOMAXPROCS": "2", "GOGC": "100"}
	tuneRuntime(cfg, func(k string) string { return env[k] }, logger)
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS = %d, want 2 kept from the environment", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent = %d, want 100 kept from the environment", got)
	}
}
