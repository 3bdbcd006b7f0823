package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Cluster is what the cluster API asks of the node.
type Cluster interface {
	// Status describes the cluster; the result is encoded as JSON.
	Status(ctx context.Context) (any, error)
	Remove(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
}

// Backuper is a Cluster that can stream a backup.
type Backuper interface {
	// Backup writes a consistent RDB file of every key to w and returns
	// how many keys it holds.
	Backup(ctx context.Context, w io.Writer) (int, error)
}

// clusterTimeout bounds one cluster API request.
const clusterTimeout = 15 * time.Second

// clusterRoutes adds the cluster API:
//
//	GET  /cluster                       status (members, leader, indexes)
//	POST /cluster/remove?id=ID          remove a member
//	POST /cluster/transfer-leader[?id=ID]
//	GET  /cluster/backup                an RDB file of every key (if c is a Backuper)
//
// With a password set, every request must carry it as HTTP basic auth (any
// user name), as `hatcheck cluster` does.
func clusterRoutes(mux *http.ServeMux, c Cluster, password string) {
	guard := func(h func(w http.ResponseWriter, r *http.Request, ctx context.Context)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !authorized(r, password) {
				w.Header().Set("WWW-Authenticate", `Basic realm="hatcheck"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "password required"})
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), clusterTimeout)
			defer cancel()
			h(w, r, ctx)
		}
	}
	mux.HandleFunc("GET /cluster", guard(func(w http.ResponseWriter, _ *http.Request, ctx context.Context) {
		st, err := c.Status(ctx)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	}))
	mux.HandleFunc("POST /cluster/remove", guard(func(w http.ResponseWriter, r *http.Request, ctx context.Context) {
		id := r.FormValue("id")
		if id == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "id is required"})
			return
		}
		result(w, c.Remove(ctx, id))
	}))
	mux.HandleFunc("POST /cluster/transfer-leader", guard(func(w http.ResponseWriter, r *http.Request, ctx context.Context) {
		result(w, c.TransferLeadership(ctx, r.FormValue("id")))
	}))
	if b, ok := c.(Backuper); ok {
		mux.HandleFunc("GET /cluster/backup", guard(func(w http.ResponseWriter, r *http.Request, _ context.Context) {
			// The stream may take longer than clusterTimeout: it ends with
			// the client. Until its first byte an error is a JSON answer;
			// after, the connection is cut, and the file's checksum tells
			// the client it is incomplete.
			sw := &startedWriter{w: w}
			if _, err := b.Backup(r.Context(), sw); err != nil {
				if !sw.started {
					writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
					return
				}
				panic(http.ErrAbortHandler)
			}
		}))
	}
}

// startedWriter sets the backup's headers before its first byte.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/octet-stream")
		s.w.Header().Set("Content-Disposition", `attachment; filename="hatcheck.rdb"`)
	}
	return s.w.Write(p)
}

func result(w http.ResponseWriter, err error) {
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
