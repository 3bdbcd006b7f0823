package session_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"testing"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
	"github.com/hatcheck/hatcheck/internal/transcript"
	"github.com/hatcheck/hatcheck/session"
)

// sessionAPI is what the benchmark's handler needs of a session library:
// this package's Manager and scs's SessionManager both have it.
type sessionAPI interface {
	LoadAndSave(http.Handler) http.Handler
	GetInt(ctx context.Context, key string) int
	GetString(ctx context.Context, key string) string
	Put(ctx context.Context, key string, val any)
}

// benchApp reads the session on every request and, for /write, counts.
func benchApp(s sessionAPI) http.Handler {
	return s.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.GetInt(r.Context(), "n")
		if r.URL.Path == "/write" || n == 0 {
			s.Put(r.Context(), "n", n+1)
		}
		fmt.Fprintf(w, "%s %d", s.GetString(r.Context(), "user"), n)
	}))
}

// nearCacheFollower opens a group of three embedded nodes with the
// near-cache on and returns one that does not lead: its session reads are
// served from memory once cached.
func nearCacheFollower(b *testing.B) *hatcheck.Node {
	var nodes []*hatcheck.Node
	for i := range 3 {
		cfg := hatcheck.Config{DataDir: b.TempDir(), NearCacheBytes: 64 << 20}
		if i > 0 {
			cfg.Join = []string{nodes[0].PeerAddr()}
		}
		n, err := hatcheck.Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if !n.IsLeader() {
			return n
		}
	}
	b.Fatal("no follower")
	return nil
}

// BenchmarkLoadAndSave serves one user's requests through the session
// middleware, in this process (no HTTP server: the cost is the library's
// and its store's), side by side: this package over an embedded node,
// over hatcheck's Redis port and over redis-server, and scs with its
// goredisstore over redis-server.
//
// The embedded follower with a near-cache reads its session from memory
// (after the first request), the way an application server of a group of
// three does.
//
//	go test -run XXX -bench LoadAndSave -benchmem ./session
func BenchmarkLoadAndSave(b *testing.B) {
	hc := servertest.Start(b)
	hcClient := goredis.NewClient(&goredis.Options{Addr: hc.RedisAddr()})
	defer hcClient.Close()
	type target struct {
		name string
		app  http.Handler
	}
	follower := nearCacheFollower(b)
	targets := []target{
		{"session+embedded", benchApp(session.NewManager(session.EmbeddedStore(node)))},
		{"session+embedded-follower-nearcache", benchApp(session.NewManager(session.EmbeddedStore(follower)))},
		{"session+RedisStore/hatcheck", benchApp(session.NewManager(session.RedisStore(hcClient)))},
	}
	if bin, _ := exec.LookPath("redis-server"); bin != "" {
		port := transcript.FreePort(b)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		transcript.StartServer(b, addr, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", b.TempDir())
		rc := goredis.NewClient(&goredis.Options{Addr: addr})
		defer rc.Close()
		sm := scs.New()
		sm.Store = goredisstore.New(rc)
		targets = append(targets,
			target{"session+RedisStore/redis-server", benchApp(session.NewManager(session.RedisStore(rc)))},
			target{"scs+goredisstore/redis-server", benchApp(sm)})
	} else {
		b.Log("redis-server not installed: no comparison")
	}
	for _, path := range []string{"/read", "/write"} {
		for _, tg := range targets {
			b.Run(path[1:]+"/"+tg.name, func(b *testing.B) {
				// The first request creates the session; the rest carry its cookie.
				rec := httptest.NewRecorder()
				tg.app.ServeHTTP(rec, httptest.NewRequest("GET", "/write", nil))
				cookies := rec.Result().Cookies()
				if len(cookies) == 0 {
					b.Fatal("no session cookie")
				}
				req := httptest.NewRequest("GET", path, nil)
				req.AddCookie(cookies[0])
				b.ResetTimer()
				for b.Loop() {
					rec := httptest.NewRecorder()
					tg.app.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
