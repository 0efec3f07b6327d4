// Package control is the node's control socket: an HTTP API on a unix socket (status,
// switchover, maintenance, backup) served by the node (Serve) and used by the CLI (Client).
package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// Loop is the HA loop as the control socket reads it.
type Loop interface {
	Status() ha.Status
}

// Cluster is what the control socket reads and changes in Consul (internal/cluster).
type Cluster interface {
	View(ctx context.Context) (ha.ClusterView, error)
	RequestSwitchover(ctx context.Context, sw *ha.Switchover) (bool, error)
	SetMaintenance(ctx context.Context, on bool) error
	// AcceptLoss drops what keeps the cluster waiting for a lost primary or sync-set
	// member, and says what it dropped.
	AcceptLoss(ctx context.Context) ([]string, error)
}

// Node is what the control socket steers.
type Node struct {
	Loop    Loop
	Cluster Cluster
	// Backup takes a snapshot of the local server now, named id; nil when snapshot.backend
	// is "none". It runs under the node's lifetime, not a request's.
	Backup BackupFunc
	Log    *slog.Logger
}

// Serve listens on a unix socket at path (mode 0600: only root in the container may steer)
// and serves n's API until the returned stop func is called.
func Serve(path string, n Node) (stop func(), err error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Loop.Status())
	})
	mux.HandleFunc("POST /switchover", func(w http.ResponseWriter, r *http.Request) {
		view, err := n.Cluster.View(r.Context())
		if err != nil || view.Leader == nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "no primary holds the lock: nothing to switch over"})
			return
		}
		to := r.URL.Query().Get("to")
		if to == view.Leader.Node {
			writeJSON(w, http.StatusConflict, map[string]string{"error": to + " is already the primary"})
			return
		}
		if to != "" && !liveEligible(view, to) {
			writeJSON(w, http.StatusConflict, map[string]string{"error": to + " is not a live, eligible member"})
			return
		}
		sw := &ha.Switchover{From: view.Leader.Node, To: to}
		ok, err := n.Cluster.RequestSwitchover(r.Context(), sw)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		if !ok {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "a switchover is already pending (switchover exists); wait for it"})
			return
		}
		writeJSON(w, http.StatusAccepted, sw)
	})
	mux.HandleFunc("POST /maintenance", func(w http.ResponseWriter, r *http.Request) {
		var on bool
		switch v := r.URL.Query().Get("on"); v {
		case "true", "false":
			on = v == "true"
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "on must be true or false, not " + strconv.Quote(v)})
			return
		}
		if err := n.Cluster.SetMaintenance(r.Context(), on); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"maintenance": on})
	})
	mux.HandleFunc("POST /accept-loss", func(w http.ResponseWriter, r *http.Request) {
		removed, err := n.Cluster.AcceptLoss(r.Context())
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		n.Log.Warn("operator accepted the loss of writes only an unreachable node may hold", "dropped", removed)
		writeJSON(w, http.StatusOK, map[string][]string{"dropped": removed})
	})
	if n.Backup != nil {
		mux.Handle("POST /backup", BackupHandler(n.Backup, n.Log))
	} else {
		mux.HandleFunc("POST /backup", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "snapshot.backend is \"none\": no backups on this node"})
		})
	}
	// No WriteTimeout: POST /backup answers when the backup is done. Idle keep-alive
	// connections are closed after a minute.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close(); _ = os.Remove(path) }, nil
}

func liveEligible(v ha.ClusterView, node string) bool {
	for _, m := range v.Members {
		if m.Node == node {
			return m.Live && m.Eligible
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
