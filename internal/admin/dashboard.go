package admin

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"sort"
	"time"
)

// The dashboard is three static files, embedded: the page polls
// GET /cluster/overview once a second and draws what it gets. There is
// no build step; the files are served as they are in the tree.
//
//go:embed dashboard
var dashboardFiles embed.FS

// Overviewer is a Cluster that can describe every member for the
// dashboard.
type Overviewer interface {
	// Overview asks every member to describe itself, each within ctx; a
	// member that does not answer is in the result with Up false.
	Overview(ctx context.Context) (Overview, error)
}

// Overview is GET /cluster/overview's answer: the cluster as the node
// serving it sees it.
type Overview struct {
	Self     string       `json:"self"` // the node that answered
	LeaderID string       `json:"leader_id"`
	Term     uint64       `json:"term"`
	Time     time.Time    `json:"time"`
	Members  []MemberView `json:"members"`
	Events   []Event      `json:"events"` // newest first
}

// MemberView is one member as the dashboard shows it.
type MemberView struct {
	ID        string `json:"id"`
	PeerAddr  string `json:"peer_addr"`
	RedisAddr string `json:"redis_addr,omitempty"`
	Voter     bool   `json:"voter"`
	// Up: the member answered. If not, Error says why and the fields
	// below are zero.
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`

	Role    string `json:"role,omitempty"` // leader, follower, candidate, removed
	Term    uint64 `json:"term"`
	Commit  uint64 `json:"commit_index"`
	Applied uint64 `json:"applied_index"`
	// Lag is the leader's commit index minus this member's applied index
	// (nil when the leader did not answer).
	Lag        *uint64   `json:"lag,omitempty"`
	Health     string    `json:"health,omitempty"` // "ok" or why not
	Started    time.Time `json:"started,omitzero"`
	Keys       int       `json:"keys"`
	UsedMemory int64     `json:"used_memory"`
	Load       *Load     `json:"load,omitempty"` // nil from a node that does not measure it
}

// Event is one line of the dashboard's recent events.
type Event struct {
	Time time.Time `json:"time"`
	Node string    `json:"node"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
}

// maxOverviewEvents bounds the events an overview lists.
const maxOverviewEvents = 100

// Finish computes what an overview derives from its members: each
// answering member's lag behind the leader, and the events sorted newest
// first and cut to maxOverviewEvents.
func (o *Overview) Finish() {
	var commit uint64
	found := false
	for _, m := range o.Members {
		if m.Up && m.ID == o.LeaderID {
			commit, found = m.Commit, true
		}
	}
	for i := range o.Members {
		m := &o.Members[i]
		if !found || !m.Up {
			m.Lag = nil
			continue
		}
		lag := uint64(0)
		if commit > m.Applied {
			lag = commit - m.Applied
		}
		m.Lag = &lag
	}
	sort.SliceStable(o.Events, func(i, j int) bool { return o.Events[i].Time.After(o.Events[j].Time) })
	if len(o.Events) > maxOverviewEvents {
		o.Events = o.Events[:maxOverviewEvents]
	}
	if o.Events == nil {
		o.Events = []Event{}
	}
}

// overviewTimeout bounds GET /cluster/overview: the page asks once a
// second, and a member that does not answer within it is shown as down.
const overviewTimeout = time.Second

// contentSecurity keeps the page to its own files: no inline script or
// style, nothing from elsewhere.
const contentSecurity = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// dashboardRoutes serves the page at GET / and its overview, behind the
// password guard.
func dashboardRoutes(mux *http.ServeMux, o Overviewer, guard func(http.Handler) http.Handler) {
	static, _ := fs.Sub(dashboardFiles, "dashboard")
	files := http.StripPrefix("/dashboard/", http.FileServerFS(static))
	page := func(h http.Handler) http.Handler {
		return guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", contentSecurity)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "no-referrer")
			// Always the files of the running binary, after an upgrade too.
			w.Header().Set("Cache-Control", "no-cache")
			h.ServeHTTP(w, r)
		}))
	}
	mux.Handle("GET /{$}", page(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})))
	mux.Handle("GET /dashboard/", page(files))
	mux.Handle("GET /cluster/overview", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), overviewTimeout)
		defer cancel()
		ov, err := o.Overview(ctx)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		ov.Finish()
		writeJSON(w, http.StatusOK, ov)
	})))
}
