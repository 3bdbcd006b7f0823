package server

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/hatcheck/hatcheck/internal/config"
)

// tuneRuntime applies the Go scheduler and collector settings of cfg to the
// whole process. It is called by Run only: tests start several servers in
// one process and keep the runtime's defaults.
//
// Why processors beyond the CPU count: Raft's log goroutine fsyncs in a
// blocking system call, which keeps its processor (P) until the Go runtime
// notices and hands it on, up to milliseconds later. With one CPU and one
// processor, every client waits for every fsync: measured with
// `hatcheck bench --scenario mix` against a server under `taskset -c 0`,
// the server used 42% of its CPU at GOMAXPROCS=1 and 82% at 4, and served
// twice the requests.
func tuneRuntime(cfg config.Config, getenv func(string) string, logger *slog.Logger) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procsFor(cfg.Procs, runtime.NumCPU()))
	}
	gogc := getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(cfg.GCPercent)
		gogc = strconv.Itoa(cfg.GCPercent)
	}
	logger.Info("runtime", "gomaxprocs", runtime.GOMAXPROCS(0), "gogc", gogc)
}

// procsFor is the GOMAXPROCS for a --procs setting on a machine with cpus
// usable CPUs.
func procsFor(procs, cpus int) int {
	if procs > 0 {
		return procs
	}
	return cpus + 2
}
