// Command hatcheck runs a hatcheck node: a replicated session store that
// speaks the Redis protocol.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	sub := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "serve":
		cfg, err := config.Load(args, os.Getenv)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(stderr, "hatcheck:", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := server.Run(ctx, cfg, server.NewLogger(cfg, stderr), stdout); err != nil {
			fmt.Fprintln(stderr, "hatcheck:", err)
			return 1
		}
		return 0
	case "cluster":
		return runCluster(args, stdout, stderr, os.Getenv)
	case "bench":
		return runBench(args, stdout, stderr, os.Getenv)
	case "version":
		fmt.Fprintln(stdout, "hatcheck", server.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: hatcheck [serve] [flags] | hatcheck cluster status|remove|transfer-leader | hatcheck bench [flags] | hatcheck version\nRun 'hatcheck serve -h', 'hatcheck cluster -h' or 'hatcheck bench -h' for the flags.")
		return 0
	}
	fmt.Fprintf(stderr, "hatcheck: unknown command %q (want serve, cluster, bench or version)\n", sub)
	return 2
}
