package compat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/boj/redistore"
	"github.com/gorilla/securecookie"
	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck/internal/clustertest"
	"github.com/hatcheck/hatcheck/internal/server/servertest"
)

// Go session libraries, driven in-process through net/http: each request
// builds a new session manager and client, as a freshly started server
// would, and sends the session cookie back like a browser.

// goRequest runs one request through h with the cookie, and returns the
// response's last value for that cookie (empty if it did not set one).
func goRequest(t *testing.T, h http.Handler, name, cookie string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: name, Value: cookie})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	value := ""
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			value = c.Value
		}
	}
	return value
}

func sessionJSON(values map[string]any) string {
	if len(values) == 0 {
		return "[]"
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(values[k])
		b.Write(kj)
		b.WriteByte(':')
		b.Write(vj)
	}
	b.WriteByte('}')
	return b.String()
}

// scsRunner: github.com/alexedwards/scs/v2 with its goredisstore.
type scsRunner struct {
	t          *testing.T
	addr, pass string
}

func (scsRunner) locks() bool             { return false }
func (scsRunner) expires() bool           { return true }
func (scsRunner) stored(id string) string { return "scs:session:" + id }

func (r scsRunner) run(short bool, args ...string) string {
	r.t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: r.addr, Password: r.pass})
	defer rc.Close()
	m := scs.New()
	m.Store = goredisstore.New(rc)
	m.Lifetime = 1440 * time.Second
	if short {
		m.Lifetime = shortTTL * time.Second
	}
	var out string
	h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		switch args[0] {
		case "create":
			m.Put(ctx, "n", 0)
			m.Put(ctx, "user", "alice")
		case "read":
			values := map[string]any{}
			for _, k := range m.Keys(ctx) {
				values[k] = m.Get(ctx, k)
			}
			out = sessionJSON(values)
		case "incr":
			n := m.GetInt(ctx, "n")
			time.Sleep(30 * time.Millisecond)
			m.Put(ctx, "n", n+1)
		case "regenerate":
			if err := m.RenewToken(ctx); err != nil {
				r.t.Error(err)
			}
		case "destroy":
			if err := m.Destroy(ctx); err != nil {
				r.t.Error(err)
			}
		}
	}))
	id := ""
	if len(args) > 1 {
		id = args[1]
	}
	set := goRequest(r.t, h, m.Cookie.Name, id)
	if args[0] == "create" || args[0] == "regenerate" {
		return set
	}
	return out
}

// redistoreRunner: github.com/boj/redistore (gorilla/sessions over redigo).
type redistoreRunner struct {
	t          *testing.T
	addr, pass string
}

var redistoreKey = []byte("hatcheck-compat-secret-key-32byt")

func (redistoreRunner) locks() bool   { return false }
func (redistoreRunner) expires() bool { return true }

// stored decodes the cookie to the session id; the key is session_<id>.
func (redistoreRunner) stored(cookie string) string {
	var id string
	if err := securecookie.DecodeMulti("sess", cookie, &id, securecookie.CodecsFromPairs(redistoreKey)...); err != nil {
		return "undecodable cookie " + cookie
	}
	return "session_" + id
}

func (r redistoreRunner) run(short bool, args ...string) string {
	r.t.Helper()
	store, err := redistore.NewRediStore(2, "tcp", r.addr, "", r.pass, redistoreKey)
	if err != nil {
		r.t.Fatal(err)
	}
	defer store.Close()
	store.SetMaxAge(1440)
	if short {
		store.SetMaxAge(shortTTL)
	}
	var out string
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s, err := store.Get(req, "sess")
		if err != nil && args[0] != "read" {
			r.t.Errorf("%s: %v", args[0], err)
			return
		}
		switch args[0] {
		case "create":
			s.Values["n"], s.Values["user"] = 0, "alice"
		case "read":
			values := map[string]any{}
			for k, v := range s.Values {
				values[fmt.Sprint(k)] = v
			}
			out = sessionJSON(values)
			return
		case "incr":
			n := s.Values["n"].(int)
			time.Sleep(30 * time.Millisecond)
			s.Values["n"] = n + 1
		case "regenerate":
			// gorilla/sessions has no renew: the application deletes the
			// session and saves its values under a new id.
			values := s.Values
			s.Options.MaxAge = -1
			if err := store.Save(req, w, s); err != nil {
				r.t.Error(err)
			}
			s, _ = store.New(req, "sess")
			s.ID, s.IsNew, s.Values = "", true, values
			s.Options.MaxAge = store.Options.MaxAge
		case "destroy":
			s.Options.MaxAge = -1
		}
		if err := store.Save(req, w, s); err != nil {
			r.t.Error(err)
		}
	})
	id := ""
	if len(args) > 1 {
		id = args[1]
	}
	set := goRequest(r.t, h, "sess", id)
	if args[0] == "create" || args[0] == "regenerate" {
		return set
	}
	return out
}

func TestGoHandlerSessions(t *testing.T) {
	for _, pass := range []string{"", "s3cret"} {
		s := servertest.Start(t, func(c *servertest.Config) { c.RequirePass = pass })
		rc := goredis.NewClient(&goredis.Options{Addr: s.RedisAddr(), Password: pass})
		t.Cleanup(func() { rc.Close() })
		suffix := ""
		if pass != "" {
			suffix = " AUTH"
		}
		t.Run("scs goredisstore"+suffix, func(t *testing.T) {
			t.Parallel()
			testSessionLife(t, scsRunner{t, s.RedisAddr(), pass}, rc)
		})
		t.Run("redistore"+suffix, func(t *testing.T) {
			t.Parallel()
			testSessionLife(t, redistoreRunner{t, s.RedisAddr(), pass}, rc)
		})
	}
}

func TestGoHandlerSessionsAcrossFailover(t *testing.T) {
	for name, runner := range map[string]func(t *testing.T, addr string) sessionRunner{
		"scs goredisstore": func(t *testing.T, addr string) sessionRunner { return scsRunner{t, addr, ""} },
		"redistore":        func(t *testing.T, addr string) sessionRunner { return redistoreRunner{t, addr, ""} },
	} {
		t.Run(name, func(t *testing.T) {
			testFailoverLife(t, func(via *clustertest.Node) sessionRunner { return runner(t, via.Cfg.RedisAddr) })
		})
	}
}
