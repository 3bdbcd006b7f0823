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

// BenchmarkLoadAndSave serves one user's requests through the session
// middleware, in this process (no HTTP server: the cost is the library's
// and its store's), side by side: this package over an embedded node,
// over hatcheck's Redis port and over redis-server, and scs with its
// goredisstore over redis-server.
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
	targets := []target{
		{"session+embedded", benchApp(session.NewManager(session.EmbeddedStore(node)))},
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
