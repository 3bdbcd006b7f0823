package admin

import (
	"context"
	"encoding/json"
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

// clusterTimeout bounds one cluster API request.
const clusterTimeout = 15 * time.Second

// clusterRoutes adds the cluster API:
//
//	GET  /cluster                       status (members, leader, indexes)
//	POST /cluster/remove?id=ID          remove a member
//	POST /cluster/transfer-leader[?id=ID]
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
