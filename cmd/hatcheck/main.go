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

// usage is hatcheck -h.
const usage = `usage: hatcheck [command] [flags]

Commands:
  serve            run a node (the default when the first argument is a flag or absent)
  cluster          status, remove, transfer-leader: manage a running cluster
  backup           write every key of a running cluster to an RDB file
  restore          seed a new cluster's data dir from an RDB file (a backup, or redis-server's)
  bench            session-shaped load against a Redis or memcached server
  version          print the version (also --version)
  help             this text (also -h, --help)

Run 'hatcheck <command> -h' for a command's flags. Every serve flag is also an environment variable HATCHECK_<NAME> (dashes become
underscores: HATCHECK_REDIS_ADDR, HATCHECK_REQUIREPASS) and a line "name value" in the
file given with --config; flags beat the environment, which beats the file.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			args = append([]string{"help"}, args[1:]...)
		case "-version", "--version":
			args = append([]string{"version"}, args[1:]...)
		}
	}
	sub := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "serve":
		// Signals first: a SIGTERM that arrives while the node starts
		// (a long snapshot restore, a hung disk) stops the start.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cfg, err := config.Load(args, os.Getenv)
		if errors.Is(err, flag.ErrHelp) {
			config.PrintUsage(stdout)
			return 0
		}
		if err != nil {
			hint := ""
			if !errors.Is(err, config.ErrInvalid) {
				hint = " (run 'hatcheck serve -h' for the flags)"
			}
			fmt.Fprintf(stderr, "hatcheck: %v%s\n", err, hint)
			return 2
		}
		// SIGHUP reloads the TLS certificate files (server.Reload).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		err = server.Run(ctx, cfg, server.NewLogger(cfg, stderr), stdout, hup)
		if errors.Is(err, server.ErrInterrupted) {
			// A stop asked for is a clean exit, as after serving (systemd
			// counts 0 as success; 143 it would not, by default).
			return 0
		}
		if err != nil {
			fmt.Fprintln(stderr, "hatcheck:", err)
			return 1
		}
		return 0
	case "cluster":
		return runCluster(args, stdout, stderr, os.Getenv)
	case "bench":
		return runBench(args, stdout, stderr, os.Getenv)
	case "backup":
		return runBackup(args, stdout, stderr, os.Getenv)
	case "restore":
		return runRestore(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hatcheck", server.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hatcheck: unknown command %q (want serve, cluster, backup, restore, bench or version)\n", sub)
	return 2
}
