package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/rdb"
	"github.com/hatcheck/hatcheck/internal/server"
)

const backupUsage = `usage: hatcheck backup [flags] FILE

Writes every key and function library of the cluster, as one consistent
state holding every acknowledged write, to FILE: an RDB file, which redis-server loads and
'hatcheck restore' seeds a new cluster from. Any node serves it
(--http-addr). The file is checked (its checksum) before it replaces FILE.`

// runBackup is `hatcheck backup`.
func runBackup(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("hatcheck backup", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), backupUsage); fs.PrintDefaults() }
	httpAddr := fs.String("http-addr", envOr(getenv, "http-addr", config.Default().HTTPAddr), "HTTP address of any node")
	password := fs.String("password", getenv(config.EnvName("requirepass")), "the cluster's password (--requirepass)")
	rest, code, ok := parseArgs(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "hatcheck backup: want one FILE (run 'hatcheck backup -h')")
		return 2
	}
	keys, libs, size, err := backup(apiClient{base: "http://" + *httpAddr, password: *password, http: &http.Client{}}, rest[0])
	if err != nil {
		fmt.Fprintln(stderr, "hatcheck backup:", err)
		return 1
	}
	what := ""
	if libs > 0 {
		what = fmt.Sprintf(" and %d function libraries", libs)
	}
	fmt.Fprintf(stdout, "backed up %d keys%s (%d bytes) to %s\n", keys, what, size, rest[0])
	return 0
}

func backup(c apiClient, file string) (keys, libs int, size int64, err error) {
	resp, err := c.open(http.MethodGet, "/cluster/backup", nil)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.tmp")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if size, err = io.Copy(tmp, resp.Body); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("receiving the backup: %w", err)
	}
	if keys, libs, err = checkRDB(tmp.Name()); err != nil {
		return 0, 0, 0, fmt.Errorf("the backup received is incomplete or corrupt: %w", err)
	}
	return keys, libs, size, os.Rename(tmp.Name(), file)
}

// checkRDB reads a whole RDB file, its checksum too, and counts its keys
// and function libraries.
func checkRDB(path string) (keys, libs int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	_, err = rdb.ReadWith(f, rdb.ReadOptions{Library: func([]byte) error { libs++; return nil }},
		func(*rdb.Record) error { keys++; return nil })
	return keys, libs, err
}

const restoreUsage = `usage: hatcheck restore --data-dir DIR [flags] FILE

Seeds a new cluster of one node in DIR (which must not exist or be empty)
from FILE, an RDB file: a 'hatcheck backup' or one redis-server saved, its
function libraries too. Keys already expired are left out. Then start a node on DIR and join others to
it.`

// runRestore is `hatcheck restore`.
func runRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hatcheck restore", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), restoreUsage); fs.PrintDefaults() }
	var opts server.RestoreOptions
	dataDir := fs.String("data-dir", "", "the new node's data dir")
	fs.StringVar(&opts.NodeID, "node-id", "", "the new node's id (default: generated)")
	fs.IntVar(&opts.Databases, "databases", 16, "databases (as --databases of serve); the file's must fit")
	fs.BoolVar(&opts.SkipUnsupported, "skip-unsupported", false, "leave out what hatcheck does not hold (modules' values and data, streams' consumer groups), counted, instead of failing")
	rest, code, ok := parseArgs(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) != 1 || *dataDir == "" {
		fmt.Fprintln(stderr, "hatcheck restore: want --data-dir DIR and one FILE (run 'hatcheck restore -h')")
		return 2
	}
	f, err := os.Open(rest[0])
	if err != nil {
		fmt.Fprintln(stderr, "hatcheck restore:", err)
		return 1
	}
	defer f.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := server.Restore(ctx, *dataDir, f, opts)
	if err != nil {
		fmt.Fprintln(stderr, "hatcheck restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %d keys into %s (%d had expired)\n", st.Keys, *dataDir, st.Expired)
	if st.Libraries > 0 {
		fmt.Fprintf(stdout, "restored %d function libraries\n", st.Libraries)
	}
	// What was left out, by kind and count (never a value).
	kinds := make([]string, 0, len(st.Skipped))
	for k := range st.Skipped {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(stdout, "skipped %d: %s\n", st.Skipped[k], k)
	}
	return 0
}
