// Command sessions is an example web application whose servers hold the
// users' sessions themselves: each process embeds a hatcheck node, and the
// processes form one replicated group. Any process serves any user; kill
// one and the others go on, with every session and every acknowledged
// change.
//
// Three processes on one machine (put a load balancer in front, or try each
// port):
//
//	go run ./examples/sessions --http 127.0.0.1:8081 --data-dir /tmp/s1 --peer-addr 127.0.0.1:7501
//	go run ./examples/sessions --http 127.0.0.1:8082 --data-dir /tmp/s2 --peer-addr 127.0.0.1:7502 --join 127.0.0.1:7501
//	go run ./examples/sessions --http 127.0.0.1:8083 --data-dir /tmp/s3 --peer-addr 127.0.0.1:7503 --join 127.0.0.1:7501
//
// Each process keeps the sessions it served recently in a near-cache that
// is never stale (see hatcheck.Config.NearCacheBytes), so most requests
// read their session from memory.
//
// Pages: GET / (who you are and your counter), POST /login?user=NAME, POST
// /incr, POST /renew (a new session token, same session), POST /logout, GET
// /status (this process's node). What changes the session is a POST, so
// that a load balancer never replays it on another server after a server
// died mid-request (GETs are replayed: the increment would count twice).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hatcheck/hatcheck"
	"github.com/hatcheck/hatcheck/session"
)

func main() {
	httpAddr := flag.String("http", "127.0.0.1:8080", "address the application serves")
	cfg := hatcheck.Config{Secret: os.Getenv("HATCHECK_SECRET")}
	flag.StringVar(&cfg.DataDir, "data-dir", "sessions-data", "this process's node's data directory")
	flag.StringVar(&cfg.PeerAddr, "peer-addr", "127.0.0.1:7481", "this process's node's peer address")
	flag.StringVar(&cfg.NodeID, "node-id", "", "node id (default: kept in the data dir, or generated)")
	join := flag.String("join", "", "peer addresses of running processes, comma-separated (none: start a new group)")
	flag.StringVar(&cfg.RedisAddr, "redis-addr", "", "also serve the sessions over the Redis protocol here (e.g. for redis-cli)")
	flag.Int64Var(&cfg.NearCacheBytes, "near-cache-bytes", 64<<20, "memory for the sessions this process served recently (never stale; 0: none)")
	flag.Parse()
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.Logger = log.With("component", "hatcheck")
	if err := run(cfg, *httpAddr, log); err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfg hatcheck.Config, httpAddr string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	node, err := hatcheck.Open(openCtx, cfg)
	cancel()
	if err != nil {
		ln.Close()
		return err
	}
	// Tests read this line to learn the bound addresses.
	fmt.Printf("sessions: http=%s peer=%s node=%s\n", ln.Addr(), node.PeerAddr(), node.ID())

	srv := &http.Server{Handler: handler(session.NewManager(session.EmbeddedStore(node)), node), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shut), node.Close())
}

func handler(sessions *session.Manager, node *hatcheck.Node) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		user := sessions.GetString(r.Context(), "user")
		if user == "" {
			fmt.Fprintln(w, "not logged in: POST /login?user=NAME")
			return
		}
		fmt.Fprintf(w, "%s %d\n", user, sessions.GetInt(r.Context(), "count"))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.FormValue("user")
		if user == "" {
			http.Error(w, "POST /login?user=NAME", http.StatusBadRequest)
			return
		}
		// A new token for the new privileges: the one before is void.
		if err := sessions.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		sessions.Put(r.Context(), "user", user)
		fmt.Fprintf(w, "%s 0\n", user)
	})
	mux.HandleFunc("POST /incr", func(w http.ResponseWriter, r *http.Request) {
		if sessions.GetString(r.Context(), "user") == "" {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		n := sessions.GetInt(r.Context(), "count") + 1
		sessions.Put(r.Context(), "count", n)
		fmt.Fprintf(w, "%s %d\n", sessions.GetString(r.Context(), "user"), n)
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	status := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "node=%s leader=%s\n", node.ID(), node.Leader())
	})
	mux.Handle("GET /status", status)
	return sessions.LoadAndSave(mux)
}
