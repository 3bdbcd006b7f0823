package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hatcheck/hatcheck/internal/bench"
	"github.com/hatcheck/hatcheck/internal/config"
)

// runBench is `hatcheck bench`.
func runBench(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("hatcheck bench", flag.ContinueOnError)
	addrs := fs.String("addr", "127.0.0.1:6379", "server address(es), comma-separated; connections are spread over them")
	cfg := bench.Config{}
	fs.StringVar(&cfg.Protocol, "protocol", "redis", "redis, memcache-text or memcache-binary")
	fs.StringVar(&cfg.Scenario, "scenario", "mix", "workload (see below)")
	fs.IntVar(&cfg.Connections, "connections", 50, "client connections")
	fs.IntVar(&cfg.Pipeline, "pipeline", 1, "mix, writes, reads, login: requests sent per connection before reading the replies;\n"+
		"touch, lock, memcache-lock: sessions per connection side by side (each session's next request still waits\n"+
		"for the reply to its previous one, as PHP's does; 1 = exactly PHP)")
	fs.IntVar(&cfg.ValueSize, "value-size", 1024, "session size in bytes")
	fs.IntVar(&cfg.Keys, "keys", 100000, "distinct session ids")
	fs.DurationVar(&cfg.TTL, "ttl", 30*time.Minute, "session lifetime")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before it")
	fs.BoolVar(&cfg.Prefill, "prefill", true, "write every session once before the run, so reads hit")
	fs.IntVar(&cfg.Rate, "rate", 0, "target requests per second in total (0 = as fast as possible)")
	fs.IntVar(&cfg.WaitReplicas, "wait-replicas", 0, "Redis only: follow every write with WAIT n 100 (to compare with a Redis master + replica)")
	fs.StringVar(&cfg.Password, "password", getenv(config.EnvName("requirepass")), "Redis AUTH password")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	quiet := fs.Bool("quiet", false, "no progress lines")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: hatcheck bench [flags]\n\nScenarios:")
		names := make([]string, 0, len(bench.Scenarios))
		for n := range bench.Scenarios {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "  %-14s %s\n", n, bench.Scenarios[n])
		}
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	rest, code, ok := parseArgs(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "hatcheck bench: unexpected argument %q (run 'hatcheck bench -h')\n", rest[0])
		return 2
	}
	cfg.Addrs = strings.Split(*addrs, ",")
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "hatcheck bench:", err)
		return 1
	}
	if *asJSON {
		if err := res.WriteJSON(stdout); err != nil {
			return 1
		}
		return 0
	}
	res.WriteText(stdout)
	return 0
}
