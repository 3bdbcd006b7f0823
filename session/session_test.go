package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck"
	"github.com/hatcheck/hatcheck/session"
)

// node is one embedded node shared by the tests of this package: the real
// store, not a fake.
var node *hatcheck.Node

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "session-test")
	if err != nil {
		panic(err)
	}
	node, err = hatcheck.Open(context.Background(), hatcheck.Config{DataDir: dir})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	node.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// app is a small application: /put?k=…&v=… stores a value, /get?k=…
// prints it, /incr counts, /login renews the token, /logout destroys.
func app(m *session.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), r.FormValue("k"), r.FormValue("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, m.GetString(r.Context(), r.FormValue("k")))
	})
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		n := m.GetInt(r.Context(), "n") + 1
		if d, _ := time.ParseDuration(r.FormValue("sleep")); d > 0 {
			time.Sleep(d) // widen the window between load and save
		}
		m.Put(r.Context(), "n", n)
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		m.Put(r.Context(), "user", r.FormValue("user"))
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return m.LoadAndSave(mux)
}

type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
}

func (b *browser) get(path string) (string, *http.Response) {
	b.t.Helper()
	resp, err := b.c.Get(b.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(body), resp
}

// token is the session cookie the browser holds ("" if none).
func (b *browser) token() string {
	u, _ := url.Parse(b.url)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

func TestSessionRoundTripAndCookie(t *testing.T) {
	m := session.NewManager(session.EmbeddedStore(node))
	b := newBrowser(t, app(m))
	_, resp := b.get("/put?k=user&v=alice")
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"session=", "Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=86400", "Expires="} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %q", set, want)
		}
	}
	if v := resp.Header.Get("Vary"); v != "Cookie" {
		t.Errorf("Vary = %q, want Cookie", v)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != `no-cache="Set-Cookie"` {
		t.Errorf("Cache-Control = %q", cc)
	}
	if got, _ := b.get("/get?k=user"); got != "alice" {
		t.Fatalf("get = %q, want alice", got)
	}
	// A request that changes nothing stores nothing and sets no cookie.
	if _, resp := b.get("/get?k=user"); resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("unmodified session set a cookie: %q", resp.Header.Get("Set-Cookie"))
	}
	// The session is in the store under its token, readable by any server.
	if _, ok, err := node.Get(context.Background(), "session:"+b.token()); !ok || err != nil {
		t.Fatalf("stored session: %v %v", ok, err)
	}
	// Another server (another Manager on the same store) sees it.
	other := newBrowser(t, app(session.NewManager(session.EmbeddedStore(node))))
	u, _ := url.Parse(other.url)
	other.c.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: b.token()}})
	if got, _ := other.get("/get?k=user"); got != "alice" {
		t.Fatalf("another server: get = %q, want alice", got)
	}
}

func TestCookieSettings(t *testing.T) {
	m := session.NewManager(session.EmbeddedStore(node))
	m.Cookie = session.Cookie{Name: "sid", Domain: "example.com", Path: "/app", Secure: true, SameSite: http.SameSiteStrictMode}
	rec := httptest.NewRecorder()
	app(m).ServeHTTP(rec, httptest.NewRequest("GET", "/put?k=a&v=b", nil))
	set := rec.Header().Get("Set-Cookie")
	for _, want := range []string{"sid=", "Domain=example.com", "Path=/app", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %q", set, want)
		}
	}
	// Not persistent: a browser-session cookie, no expiry.
	if strings.Contains(set, "Max-Age") || strings.Contains(set, "Expires") || strings.Contains(set, "HttpOnly") {
		t.Errorf("Set-Cookie %q has Max-Age, Expires or HttpOnly, which were not asked for", set)
	}
}

func TestRenewTokenDeletesTheOldOneAtOnce(t *testing.T) {
	m := session.NewManager(session.EmbeddedStore(node))
	b := newBrowser(t, app(m))
	b.get("/put?k=cart&v=3")
	before := b.token()
	b.get("/login?user=alice")
	after := b.token()
	if after == before || after == "" {
		t.Fatalf("token not renewed: %q → %q", before, after)
	}
	if _, ok, _ := node.Get(context.Background(), "session:"+before); ok {
		t.Fatal("the old token's session still exists after RenewToken")
	}
	// The values moved with the session.
	if got, _ := b.get("/get?k=cart"); got != "3" {
		t.Fatalf("cart after renewal = %q", got)
	}
	// The old token, presented again (a fixation attempt), is a new, empty session.
	fixed := newBrowser(t, app(m))
	u, _ := url.Parse(fixed.url)
	fixed.c.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: before}})
	if got, _ := fixed.get("/get?k=user"); got != "" {
		t.Fatalf("old token still logged in as %q", got)
	}
}

func TestDestroyExpiresCookieAndDeletes(t *testing.T) {
	m := session.NewManager(session.EmbeddedStore(node))
	b := newBrowser(t, app(m))
	b.get("/login?user=alice")
	tok := b.token()
	_, resp := b.get("/logout")
	if set := resp.Header.Get("Set-Cookie"); !strings.Contains(set, "Max-Age=0") || !strings.Contains(set, "session=;") {
		t.Fatalf("logout Set-Cookie = %q, want an expired, empty cookie", set)
	}
	if b.token() != "" {
		t.Fatal("browser still holds the cookie")
	}
	if _, ok, _ := node.Get(context.Background(), "session:"+tok); ok {
		t.Fatal("destroyed session still stored")
	}
}

func TestIdleTimeoutAndLifetime(t *testing.T) {
	m := session.NewManager(session.EmbeddedStore(node))
	m.IdleTimeout = 400 * time.Millisecond
	b := newBrowser(t, app(m))
	b.get("/put?k=user&v=alice")
	// Active: each request moves the expiry, past several idle timeouts.
	for range 6 {
		time.Sleep(150 * time.Millisecond)
		if got, _ := b.get("/get?k=user"); got != "alice" {
			t.Fatalf("active session lost: %q", got)
		}
	}
	time.Sleep(time.Second)
	if got, _ := b.get("/get?k=user"); got != "" {
		t.Fatalf("session idle for 1s with a 400ms idle timeout still has %q", got)
	}

	m = session.NewManager(session.EmbeddedStore(node))
	m.Lifetime = 500 * time.Millisecond
	b = newBrowser(t, app(m))
	b.get("/put?k=user&v=bob")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := b.get("/get?k=user")
		if got == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session outlived its 500ms lifetime by 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestForeignCookieValuesAreIgnored(t *testing.T) {
	st := &countingStore{Store: session.EmbeddedStore(node)}
	m := session.NewManager(st)
	for _, v := range []string{"x", "../../etc", strings.Repeat("a", 42) + "!", strings.Repeat("a", 4096)} {
		req := httptest.NewRequest("GET", "/get?k=user", nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: v})
		rec := httptest.NewRecorder()
		app(m).ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.String() != "" {
			t.Fatalf("cookie %q: %d %q", v, rec.Code, rec.Body.String())
		}
	}
	if n := st.finds.Load(); n != 0 {
		t.Fatalf("%d store lookups for malformed tokens, want 0", n)
	}
}

// countingStore is the real store, counting loads.
type countingStore struct {
	session.Store
	finds atomic.Int64
}

func (s *countingStore) Find(ctx context.Context, token string) ([]byte, bool, error) {
	s.finds.Add(1)
	return s.Store.Find(ctx, token)
}

func TestLockSerialisesOneSessionsRequestsAcrossServers(t *testing.T) {
	st := session.EmbeddedStore(node)
	m1, m2 := session.NewManager(st), session.NewManager(st)
	m1.Lock, m2.Lock = true, true
	s1, s2 := httptest.NewServer(app(m1)), httptest.NewServer(app(m2))
	defer s1.Close()
	defer s2.Close()
	// Start the session.
	resp, err := http.Get(s1.URL + "/incr")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := s1.URL
			if i%2 == 1 {
				u = s2.URL
			}
			req, _ := http.NewRequest("GET", u+"/incr?sleep=20ms", nil)
			req.AddCookie(cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	req, _ := http.NewRequest("GET", s2.URL+"/incr", nil)
	req.AddCookie(cookie)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != fmt.Sprint(n+2) {
		t.Fatalf("counter = %s after %d increments, want %d: increments were lost", body, n+2, n+2)
	}
}

func TestLockTimeoutAndMissingLocker(t *testing.T) {
	st := session.EmbeddedStore(node)
	var gotErr error
	m := session.NewManager(st)
	m.Lock, m.LockTimeout = true, 100*time.Millisecond
	m.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}
	ctx, _ := m.Load(context.Background(), "")
	m.Put(ctx, "x", 1)
	token, _, err := m.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock, ok, err := st.(session.Locker).TryLock(context.Background(), token, time.Minute)
	if !ok || err != nil {
		t.Fatalf("TryLock = %v %v", ok, err)
	}
	if _, ok, _ := st.(session.Locker).TryLock(context.Background(), token, time.Minute); ok {
		t.Fatal("a held lock was taken again")
	}
	req := httptest.NewRequest("GET", "/incr", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: token})
	rec := httptest.NewRecorder()
	app(m).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !errors.Is(gotErr, session.ErrLockTimeout) {
		t.Fatalf("request on a held lock: %d, %v; want ErrorFunc with ErrLockTimeout", rec.Code, gotErr)
	}
	if err := unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	app(m).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("after unlock: %d", rec.Code)
	}

	plain := session.NewManager(struct{ session.Store }{st}) // hides TryLock
	plain.Lock = true
	plain.ErrorFunc = m.ErrorFunc
	rec = httptest.NewRecorder()
	app(plain).ServeHTTP(rec, req)
	if !errors.Is(gotErr, session.ErrNoLocker) {
		t.Fatalf("Lock on a store that cannot lock: %v, want ErrNoLocker", gotErr)
	}
}

// failingStore is the real store whose Commit fails.
type failingStore struct{ session.Store }

func (failingStore) Commit(context.Context, string, []byte, time.Time) error {
	return errors.New("disk on fire")
}

func TestStoreFailureAnswersWithErrorFunc(t *testing.T) {
	m := session.NewManager(failingStore{session.EmbeddedStore(node)})
	var writeErr error
	m.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "try again", http.StatusServiceUnavailable)
	}
	h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), "a", "b")
		_, writeErr = w.Write([]byte("welcome"))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "welcome") {
		t.Fatalf("response %d %q, want ErrorFunc's 503 alone", rec.Code, rec.Body.String())
	}
	if !errors.Is(writeErr, session.ErrCommitFailed) {
		t.Fatalf("handler's Write error = %v, want ErrCommitFailed", writeErr)
	}
	if rec.Header().Get("Set-Cookie") != "" {
		t.Fatal("a cookie was set for a session that was not stored")
	}
}

func TestFlushAndResponseControllerWorkThrough(t *testing.T) {
	m := session.NewManager(session.EmbeddedStore(node))
	h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Put(r.Context(), "a", "b")
		w.(http.Flusher).Flush()
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("ResponseController: %v", err)
		}
		fmt.Fprint(w, "streamed")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "streamed" || resp.Header.Get("Set-Cookie") == "" {
		t.Fatalf("body %q, Set-Cookie %q: the session must be stored before the flush", body, resp.Header.Get("Set-Cookie"))
	}
}

func TestTypedGettersThroughBothCodecs(t *testing.T) {
	when := time.Date(2026, 11, 27, 14, 0, 0, 123, time.UTC)
	for _, codec := range []session.Codec{session.GobCodec{}, session.JSONCodec{}} {
		m := session.NewManager(session.EmbeddedStore(node))
		m.Codec = codec
		ctx, _ := m.Load(context.Background(), "")
		m.Put(ctx, "s", "str")
		m.Put(ctx, "i", 42)
		m.Put(ctx, "i64", int64(1)<<40)
		m.Put(ctx, "f", 2.5)
		m.Put(ctx, "b", true)
		m.Put(ctx, "t", when)
		m.Put(ctx, "raw", []byte{0, 1, 2})
		token, _, err := m.Commit(ctx)
		if err != nil {
			t.Fatalf("%T: %v", codec, err)
		}
		ctx, err = m.Load(context.Background(), token)
		if err != nil {
			t.Fatalf("%T: %v", codec, err)
		}
		if m.GetString(ctx, "s") != "str" || m.GetInt(ctx, "i") != 42 || m.GetInt64(ctx, "i64") != 1<<40 ||
			m.GetFloat(ctx, "f") != 2.5 || !m.GetBool(ctx, "b") || !m.GetTime(ctx, "t").Equal(when) ||
			string(m.GetBytes(ctx, "raw")) != "\x00\x01\x02" || m.GetInt32(ctx, "i") != 42 {
			t.Fatalf("%T: typed getters after a round trip: %v", codec, m.Keys(ctx))
		}
		if m.GetInt(ctx, "s") != 0 || m.GetString(ctx, "missing") != "" {
			t.Fatalf("%T: wrong-type or missing key did not give the zero value", codec)
		}
		if got := m.Keys(ctx); strings.Join(got, ",") != "b,f,i,i64,raw,s,t" {
			t.Fatalf("%T: Keys = %v", codec, got)
		}
		if m.PopString(ctx, "s") != "str" || m.Exists(ctx, "s") || m.Status(ctx) != session.Modified {
			t.Fatalf("%T: Pop did not remove, or did not mark the session modified", codec)
		}
		m.Remove(ctx, "i")
		if m.Exists(ctx, "i") {
			t.Fatalf("%T: Remove left the key", codec)
		}
		_ = m.Clear(ctx)
		if len(m.Keys(ctx)) != 0 || m.Token(ctx) != token {
			t.Fatalf("%T: Clear: keys %v, token changed: %v", codec, m.Keys(ctx), m.Token(ctx) != token)
		}
	}
}
