package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"time"

	"github.com/alexedwards/scs/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck"
	"github.com/hatcheck/hatcheck/session"
)

// A login, a visit counter and a logout, with the sessions held by a node
// embedded in the application (here a group of one; see hatcheck.Open for
// more).
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	n, err := hatcheck.Open(context.Background(), hatcheck.Config{DataDir: dir})
	if err != nil {
		panic(err)
	}
	defer n.Close()

	sessions := session.NewManager(session.EmbeddedStore(n))
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		// A new token whenever privileges change: no session fixation.
		if err := sessions.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sessions.Put(r.Context(), "user", r.FormValue("user"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		visits := sessions.GetInt(r.Context(), "visits") + 1
		sessions.Put(r.Context(), "visits", visits)
		fmt.Fprintf(w, "hello %s, visit %d", sessions.GetString(r.Context(), "user"), visits)
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		_ = sessions.Destroy(r.Context())
	})
	srv := httptest.NewServer(sessions.LoadAndSave(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(path string) {
		resp, err := browser.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) > 0 {
			fmt.Println(string(body))
		}
	}
	get("/login?user=alice")
	get("/")
	get("/")
	get("/logout")
	get("/")
	// Output:
	// hello alice, visit 1
	// hello alice, visit 2
	// hello , visit 1
}

// An scs application keeps scs and moves its sessions to hatcheck with one
// line.
func ExampleSCS() {
	sessionManager := scs.New()
	sessionManager.Store = session.SCS(session.RedisStore(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})))
	http.ListenAndServe("127.0.0.1:8080", sessionManager.LoadAndSave(http.NotFoundHandler()))
}

// Sessions on a hatcheck cluster found through Sentinel discovery: the
// client follows the leader across failovers.
func ExampleRedisStore() {
	client := goredis.NewFailoverClient(&goredis.FailoverOptions{
		MasterName:    "hatcheck",
		SentinelAddrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		Password:      os.Getenv("HATCHECK_REQUIREPASS"),
	})
	sessions := session.NewManager(session.RedisStore(client))
	sessions.IdleTimeout = 30 * time.Minute
	http.ListenAndServe("127.0.0.1:8080", sessions.LoadAndSave(http.NotFoundHandler()))
}
