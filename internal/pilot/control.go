package pilot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// serve starts the control socket and the metrics endpoint; the returned func stops both.
func (n *Node) serve(ctx context.Context) func() {
	var stops []func()
	if p := n.cfg.Control.Socket; p != "" {
		if stop, err := n.serveControl(p); err != nil {
			n.log.Warn("control socket disabled", "path", p, "err", err)
		} else {
			stops = append(stops, stop)
		}
	}
	if l := n.cfg.Metrics.Listen; l != "" {
		srv := &http.Server{Addr: l, Handler: n.metricsHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		ln, err := net.Listen("tcp", l)
		if err != nil {
			n.log.Warn("metrics endpoint disabled", "listen", l, "err", err)
		} else {
			go func() { _ = srv.Serve(ln) }()
			stops = append(stops, func() { _ = srv.Close() })
		}
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// serveControl listens on a unix socket (mode 0600: only root in the container may steer).
func (n *Node) serveControl(path string) (func(), error) {
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
		writeJSON(w, http.StatusOK, n.loop.Status())
	})
	mux.HandleFunc("POST /switchover", func(w http.ResponseWriter, r *http.Request) {
		view, err := n.cluster.View(r.Context())
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
		ok, err := n.cluster.RequestSwitchover(r.Context(), sw)
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
		on := r.URL.Query().Get("on") == "true"
		if err := n.cluster.SetMaintenance(r.Context(), on); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"maintenance": on})
	})
	if n.snap != nil {
		mux.Handle("POST /backup", n.snap.BackupHandler(n.ctx, n.db.DB))
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

// ControlClient talks to a node's control socket (the CLI side).
type ControlClient struct {
	http *http.Client
}

// NewControlClient dials the socket at path.
func NewControlClient(path string) *ControlClient {
	return &ControlClient{http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Do sends a request and decodes the JSON answer into out; a non-2xx answer is an error
// carrying the server's message.
func (c *ControlClient) Do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://mysqlpilot"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return fmt.Errorf("control socket: %w (is mysqlpilot running in this container?)", ne)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s", e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
