// Package session manages HTTP sessions for net/http applications, stored
// in hatcheck: a cluster reached over the Redis protocol (RedisStore), or
// nodes embedded in the application servers themselves (EmbeddedStore).
//
// Its shape is that of github.com/alexedwards/scs: a Manager wraps
// handlers with LoadAndSave, and handlers read and write the request's
// session through the Manager's methods, which take the request's context:
//
//	sessions := session.NewManager(session.RedisStore(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})))
//	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
//		sessions.RenewToken(r.Context())
//		sessions.Put(r.Context(), "user", r.FormValue("user"))
//	})
//	http.ListenAndServe(":8080", sessions.LoadAndSave(mux))
//
// A session is loaded once per request. Concurrent requests of one session
// in one process share their loads: while one load runs, the requests that
// arrive wait for it to end and then share the next load, so at most one
// load of a session is in flight per process, and every request still sees
// every write acknowledged before it arrived (a load that began before a
// request arrived is never handed to it).
//
// An existing scs application can keep scs and use hatcheck as its store:
// see SCS.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Status is what a request did to its session.
type Status int

// Statuses.
const (
	// Unmodified: the session was read, not changed.
	Unmodified Status = iota
	// Modified: the session will be stored when the response begins.
	Modified
	// Destroyed: the session was deleted; the response expires the cookie.
	Destroyed
)

// Cookie holds the settings of the session cookie.
type Cookie struct {
	// Name is the cookie's name (default "session").
	Name     string
	Domain   string
	Path     string // default "/"
	Secure   bool
	HttpOnly bool          // default true
	SameSite http.SameSite // default http.SameSiteLaxMode
	// Persist makes the cookie outlive the browser session: it carries
	// the session's expiry (default true). RememberMe overrides it per
	// session.
	Persist bool
}

// Errors.
var (
	// ErrLockTimeout: Manager.Lock is set and another request held the
	// session's lock for longer than LockTimeout.
	ErrLockTimeout = errors.New("session: timed out waiting for the session's lock")
	// ErrNoLocker: Manager.Lock is set but the Store is not a Locker.
	ErrNoLocker = errors.New("session: Manager.Lock is set but the store cannot lock")
	// ErrCommitFailed is what a handler's Write returns after the session
	// could not be stored (the client got ErrorFunc's response instead).
	ErrCommitFailed = errors.New("session: the session could not be stored; the response was replaced by ErrorFunc's")
)

// Manager loads and saves sessions. Set its fields before its first use;
// after that it is safe for concurrent use.
type Manager struct {
	// Store keeps the sessions.
	Store Store
	// Cookie is the session cookie's settings.
	Cookie Cookie
	// IdleTimeout, if set, ends a session that sees no request for this
	// long. Each request then stores the session again, to move its
	// expiry.
	IdleTimeout time.Duration
	// Lifetime is the absolute limit on a session's age, however active
	// (default 24 h). RenewToken starts it again.
	Lifetime time.Duration
	// Codec encodes sessions for the store (default GobCodec).
	Codec Codec
	// ErrorFunc answers a request whose session could not be loaded or
	// stored (default: 500 Internal Server Error, and the error logged
	// with the log package).
	ErrorFunc func(http.ResponseWriter, *http.Request, error)
	// Lock serialises the requests of one session across every server
	// that shares the store, as PHP's session handlers do: LoadAndSave
	// takes the session's lock before loading it and releases it after
	// the handler returns. The Store must be a Locker.
	Lock bool
	// LockTimeout is how long a request waits for the lock before it
	// fails with ErrLockTimeout (default 10 s).
	LockTimeout time.Duration
	// LockTTL bounds how long a lock is held, so that a server that dies
	// holding it does not block the session for longer (default 60 s).
	LockTTL time.Duration

	flights flightGroup
}

// NewManager returns a Manager over store with the default settings.
func NewManager(store Store) *Manager {
	return &Manager{
		Store:       store,
		Cookie:      Cookie{Name: "session", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Persist: true},
		Lifetime:    24 * time.Hour,
		Codec:       GobCodec{},
		ErrorFunc:   defaultErrorFunc,
		LockTimeout: 10 * time.Second,
		LockTTL:     time.Minute,
	}
}

func defaultErrorFunc(w http.ResponseWriter, r *http.Request, err error) {
	log.Printf("%s %s: %v", r.Method, r.URL.Path, err) // err begins "session: "
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// data is one request's session.
type data struct {
	mu       sync.Mutex
	token    string // "" until the session is first stored
	deadline time.Time
	values   map[string]any
	status   Status
	persist  *bool // RememberMe's choice, nil: Cookie.Persist
}

// contextKey finds a Manager's sessions in a context: several Managers
// may serve one request.
type contextKey struct{ m *Manager }

func (m *Manager) data(ctx context.Context) *data {
	d, ok := ctx.Value(contextKey{m}).(*data)
	if !ok {
		panic("session: no session in the context (is the handler wrapped in this Manager's LoadAndSave?)")
	}
	return d
}

// tokenLen is the length of a token: 32 random bytes in unpadded base64url.
const tokenLen = 43

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether t has a token's shape. Anything else a
// client sends as its cookie is ignored, and never becomes part of a key.
func validToken(t string) bool {
	if len(t) != tokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Load returns ctx carrying the session stored under token, or a new,
// empty session when there is none (token "" or unknown or expired). For
// use outside LoadAndSave; Commit stores what changed.
func (m *Manager) Load(ctx context.Context, token string) (context.Context, error) {
	if _, ok := ctx.Value(contextKey{m}).(*data); ok {
		return ctx, nil
	}
	d := &data{deadline: time.Now().Add(m.Lifetime), values: map[string]any{}}
	if validToken(token) {
		b, found, err := m.flights.find(ctx, m.Store, token)
		if err != nil {
			return nil, fmt.Errorf("session: load: %w", err)
		}
		if found {
			deadline, values, err := m.Codec.Decode(b)
			if err != nil {
				return nil, fmt.Errorf("session: decode: %w", err)
			}
			if time.Now().Before(deadline) {
				d.token, d.deadline = token, deadline
				if values != nil {
					d.values = values
				}
				if m.IdleTimeout > 0 {
					d.status = Modified // store it again, to move its expiry
				}
			}
		}
	}
	return context.WithValue(ctx, contextKey{m}, d), nil
}

// Commit stores the session in ctx, giving it a token if it has none, and
// returns the token and when the stored session expires.
func (m *Manager) Commit(ctx context.Context) (token string, expiry time.Time, err error) {
	d := m.data(ctx)
	d.mu.Lock()
	if d.token == "" {
		d.token = newToken()
	}
	token, expiry = d.token, d.deadline
	b, err := m.Codec.Encode(d.deadline, d.values)
	d.mu.Unlock()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("session: encode: %w", err)
	}
	if m.IdleTimeout > 0 {
		if idle := time.Now().Add(m.IdleTimeout); idle.Before(expiry) {
			expiry = idle
		}
	}
	if err := m.Store.Commit(ctx, token, b, expiry); err != nil {
		return "", time.Time{}, fmt.Errorf("session: store: %w", err)
	}
	return token, expiry, nil
}

// Put sets key to val in the session.
func (m *Manager) Put(ctx context.Context, key string, val any) {
	d := m.data(ctx)
	d.mu.Lock()
	d.values[key] = val
	d.status = Modified
	d.mu.Unlock()
}

// Get returns key's value, nil when the session has none.
func (m *Manager) Get(ctx context.Context, key string) any {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.values[key]
}

// Pop returns key's value and removes it from the session.
func (m *Manager) Pop(ctx context.Context, key string) any {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.values[key]
	if ok {
		delete(d.values, key)
		d.status = Modified
	}
	return v
}

// Remove deletes key from the session.
func (m *Manager) Remove(ctx context.Context, key string) {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.values[key]; ok {
		delete(d.values, key)
		d.status = Modified
	}
}

// Exists reports whether the session has key.
func (m *Manager) Exists(ctx context.Context, key string) bool {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.values[key]
	return ok
}

// Keys returns the session's keys, sorted.
func (m *Manager) Keys(ctx context.Context) []string {
	d := m.data(ctx)
	d.mu.Lock()
	keys := make([]string, 0, len(d.values))
	for k := range d.values {
		keys = append(keys, k)
	}
	d.mu.Unlock()
	sort.Strings(keys)
	return keys
}

// Clear removes every key from the session; the session itself (its token
// and deadline) stays.
func (m *Manager) Clear(ctx context.Context) error {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.values) > 0 {
		d.values = map[string]any{}
		d.status = Modified
	}
	return nil
}

// Destroy deletes the session from the store at once and empties it; the
// response expires the cookie. A Put after Destroy starts a new session.
func (m *Manager) Destroy(ctx context.Context) error {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.token != "" {
		if err := m.Store.Delete(ctx, d.token); err != nil {
			return fmt.Errorf("session: destroy: %w", err)
		}
	}
	d.token, d.values, d.status = "", map[string]any{}, Destroyed
	d.deadline = time.Now().Add(m.Lifetime)
	return nil
}

// RenewToken gives the session a new token and deletes it under the old
// one at once, keeping its values: call it when the user's privileges
// change (log in, log out), so that a token an attacker planted or saw
// before is worth nothing after (session fixation). It also starts the
// session's Lifetime again.
func (m *Manager) RenewToken(ctx context.Context) error {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.token != "" {
		if err := m.Store.Delete(ctx, d.token); err != nil {
			return fmt.Errorf("session: renew token: %w", err)
		}
	}
	d.token = newToken()
	d.deadline = time.Now().Add(m.Lifetime)
	d.status = Modified
	return nil
}

// RememberMe sets whether this session's cookie persists after the browser
// closes, overriding Cookie.Persist.
func (m *Manager) RememberMe(ctx context.Context, persist bool) {
	d := m.data(ctx)
	d.mu.Lock()
	d.persist = &persist
	d.status = Modified
	d.mu.Unlock()
}

// Status is what this request did to its session so far.
func (m *Manager) Status(ctx context.Context) Status {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Token is the session's token, "" for a session not stored yet.
func (m *Manager) Token(ctx context.Context) string {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.token
}

// Deadline is when the session ends however active it is (Lifetime after
// it began or its token was last renewed).
func (m *Manager) Deadline(ctx context.Context) time.Time {
	d := m.data(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadline
}
