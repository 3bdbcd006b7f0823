package session

import (
	"context"
	"net/http"
	"time"
)

// LoadAndSave is the middleware that gives each request its session: it
// loads the session named by the request's cookie (with Lock, after taking
// its lock), serves the request, and stores what the handler changed
// before the response's first byte — so that the cookie can still be set —
// or when the handler returns without writing. It sets "Vary: Cookie", so
// that caches keep one user's pages from another. http.ResponseController
// works through it.
func (m *Manager) LoadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		var token string
		if c, err := r.Cookie(m.Cookie.Name); err == nil {
			token = c.Value
		}
		if m.Lock && validToken(token) {
			unlock, err := m.lock(r.Context(), token)
			if err != nil {
				m.ErrorFunc(w, r, err)
				return
			}
			// Released even if the client went away (its context is done
			// by then); a lock that cannot be released expires after
			// LockTTL.
			defer func() { _ = unlock(context.WithoutCancel(r.Context())) }()
		}
		ctx, err := m.Load(r.Context(), token)
		if err != nil {
			m.ErrorFunc(w, r, err)
			return
		}
		r = r.WithContext(ctx)
		sw := &writer{ResponseWriter: w, m: m, r: r}
		next.ServeHTTP(sw, r)
		sw.commit()
	})
}

// lock takes the session's lock, retrying with a growing pause until
// LockTimeout.
func (m *Manager) lock(ctx context.Context, token string) (func(context.Context) error, error) {
	l, ok := m.Store.(Locker)
	if !ok {
		return nil, ErrNoLocker
	}
	deadline := time.Now().Add(m.LockTimeout)
	pause := time.Millisecond
	for {
		unlock, ok, err := l.TryLock(ctx, token, m.LockTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			return unlock, nil
		}
		if time.Now().Add(pause).After(deadline) {
			return nil, ErrLockTimeout
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// writer stores the session before the response's header is written.
type writer struct {
	http.ResponseWriter
	m       *Manager
	r       *http.Request
	decided bool // the session was stored, or storing it failed
	failed  bool // … and it failed: ErrorFunc answered instead
}

// commit stores the session and sets its cookie, once; it reports whether
// the handler's response may go on.
func (w *writer) commit() bool {
	if !w.decided {
		w.decided = true
		if err := w.m.saveAndSetCookie(w.ResponseWriter, w.r); err != nil {
			w.failed = true
			w.m.ErrorFunc(w.ResponseWriter, w.r, err)
		}
	}
	return !w.failed
}

func (w *writer) WriteHeader(code int) {
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.commit() {
		return 0, ErrCommitFailed
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets handlers that assert http.Flusher stream through LoadAndSave.
func (w *writer) Flush() {
	if w.commit() {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap is for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// saveAndSetCookie stores a modified session and sets its cookie, or
// expires the cookie of a destroyed one.
func (m *Manager) saveAndSetCookie(w http.ResponseWriter, r *http.Request) error {
	d := m.data(r.Context())
	d.mu.Lock()
	status, persist := d.status, m.Cookie.Persist
	if d.persist != nil {
		persist = *d.persist
	}
	d.mu.Unlock()
	switch status {
	case Modified:
		token, expiry, err := m.Commit(r.Context())
		if err != nil {
			return err
		}
		m.setCookie(w, token, expiry, persist)
	case Destroyed:
		m.setCookie(w, "", time.Time{}, false)
	}
	return nil
}

// setCookie sets the session cookie; token "" expires it.
func (m *Manager) setCookie(w http.ResponseWriter, token string, expiry time.Time, persist bool) {
	c := &http.Cookie{
		Name: m.Cookie.Name, Value: token, Path: m.Cookie.Path, Domain: m.Cookie.Domain,
		Secure: m.Cookie.Secure, HttpOnly: m.Cookie.HttpOnly, SameSite: m.Cookie.SameSite,
	}
	switch {
	case token == "":
		c.Expires, c.MaxAge = time.Unix(1, 0), -1
	case persist:
		// Rounded up to the second, so the cookie never ends before the
		// session.
		c.Expires = time.Unix(expiry.Unix()+1, 0).UTC()
		c.MaxAge = int(time.Until(expiry).Seconds() + 1)
	}
	w.Header().Add("Set-Cookie", c.String())
	// A shared cache must not store a response that sets someone's
	// session cookie.
	w.Header().Add("Cache-Control", `no-cache="Set-Cookie"`)
}
