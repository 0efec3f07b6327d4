// Package web is the node's HTTP front (metrics.listen): role endpoints for load balancers
// (Patroni's convention: 200 or 503), the cluster as JSON, the topology page, and the
// Prometheus metrics. Every answer comes from the HA loop's last observation: a request
// never queries mysqld or Consul.
package web

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// Options are what the handlers need besides the loop's status.
type Options struct {
	Status  func() ha.Status // the loop's last observation and decision
	Metrics http.Handler     // served at /metrics
	MaxLag  time.Duration    // mysql.maxLag: a replica above it is not served to readers
	// Stale: a status older than this answers 503 everywhere (the loop is stuck or frozen).
	Stale time.Duration
	Now   func() time.Time // time.Now when nil
}

//go:embed page.html
var page []byte

// Handler serves:
//
//	GET /primary    200 on the primary with writes open and its lock fresh, else 503
//	GET /replica    200 on a replica streaming from the primary, lag <= maxLag (or ?lag=5s)
//	GET /read-only  200 on any node that can serve reads under the same lag rule
//	GET /health     200 while mysqld answers
//	GET /cluster    the cluster as JSON (no secret, no replication error text)
//	GET /metrics    Prometheus
//	GET /           the topology page
//
// HEAD works wherever GET does.
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	mux := http.NewServeMux()
	role := func(ok func(st ha.Status, r *http.Request) (bool, string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			st := o.Status()
			good, why := ok(st, r)
			if good && o.Stale > 0 && o.Now().Sub(st.Updated) > o.Stale {
				good, why = false, "the last observation is too old"
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			if !good {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			if r.Method != http.MethodHead {
				if good {
					why = "ok"
				}
				_, _ = w.Write([]byte(why + "\n"))
			}
		}
	}
	mux.HandleFunc("GET /primary", role(func(st ha.Status, _ *http.Request) (bool, string) {
		return isPrimary(st, o.Now()), "not the writable primary"
	}))
	mux.HandleFunc("GET /replica", role(func(st ha.Status, r *http.Request) (bool, string) {
		bound, err := lagBound(r, o.MaxLag)
		if err != "" {
			return false, err
		}
		return isReplica(st, bound)
	}))
	mux.HandleFunc("GET /read-only", role(func(st ha.Status, r *http.Request) (bool, string) {
		bound, err := lagBound(r, o.MaxLag)
		if err != "" {
			return false, err
		}
		if isPrimary(st, o.Now()) {
			return true, ""
		}
		return isReplica(st, bound)
	}))
	mux.HandleFunc("GET /health", role(func(st ha.Status, _ *http.Request) (bool, string) {
		return st.MySQLUp, "mysqld does not answer"
	}))
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(Cluster(o.Status(), o.Now()))
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
		_, _ = w.Write(page)
	})
	return mux
}

func isPrimary(st ha.Status, now time.Time) bool {
	return st.Role == ha.RolePrimary && st.Writable && st.MySQLUp && now.Before(st.WritableUntil)
}

func isReplica(st ha.Status, bound time.Duration) (bool, string) {
	r := st.Replica
	switch {
	case st.Role != ha.RoleReplica || r == nil:
		return false, "not a replica"
	case !st.MySQLUp:
		return false, "mysqld does not answer"
	case !r.IORunning || !r.SQLRunning:
		return false, "replication is not running"
	case r.Lag < 0:
		return false, "replication lag unknown"
	case r.Lag > bound:
		return false, "replication lag " + r.Lag.String() + " above " + bound.String()
	}
	return true, ""
}

// lagBound is ?lag= (a Go duration, or seconds) or the configured maximum; it may only tighten.
func lagBound(r *http.Request, max time.Duration) (time.Duration, string) {
	q := r.URL.Query().Get("lag")
	if q == "" {
		return max, ""
	}
	d, err := time.ParseDuration(q)
	if err != nil {
		if d, err = time.ParseDuration(q + "s"); err != nil {
			return 0, "lag: " + q + " is not a duration (e.g. 5s)"
		}
	}
	if max > 0 && d > max {
		d = max
	}
	return d, ""
}

// ClusterJSON is GET /cluster.
type ClusterJSON struct {
	Node        string        `json:"node"` // the node that answered
	Leader      string        `json:"leader"`
	Maintenance bool          `json:"maintenance"`
	Members     []MemberJSON  `json:"members"`
	SyncSet     []string      `json:"sync_set,omitempty"`
	Snapshot    *SnapshotJSON `json:"snapshot,omitempty"`
	History     []ha.Failover `json:"history"`
	Updated     time.Time     `json:"updated"`
}

// MemberJSON is one member in /cluster.
type MemberJSON struct {
	Node       string  `json:"node"`
	Address    string  `json:"address"`
	Role       string  `json:"role"`
	Live       bool    `json:"live"`
	Healthy    bool    `json:"healthy"`
	Eligible   bool    `json:"eligible"`
	LagSeconds float64 `json:"lag_seconds"`
	GTID       string  `json:"gtid"`
	Decision   string  `json:"decision"`
	Alone      bool    `json:"alone,omitempty"`
	Acking     bool    `json:"acking,omitempty"`
	InSyncSet  bool    `json:"in_sync_set,omitempty"`
	Updated    string  `json:"updated"`
}

// SnapshotJSON is the latest snapshot in /cluster.
type SnapshotJSON struct {
	ID         string    `json:"id"`
	Completed  time.Time `json:"completed"`
	Size       int64     `json:"size"`
	AgeSeconds float64   `json:"age_seconds"`
	// Verify is what its restore drill found: "verified", "failed" or "unverified";
	// VerifiedAt when it ran, VerifyError why it failed.
	Verify      string    `json:"verify"`
	VerifiedAt  time.Time `json:"verified_at,omitzero"`
	VerifyError string    `json:"verify_error,omitempty"`
}

// Cluster renders the status as /cluster: members, leader, sync set, snapshot, history.
func Cluster(st ha.Status, now time.Time) ClusterJSON {
	c := ClusterJSON{Node: st.Node, Leader: st.Leader, Maintenance: st.Maintenance, History: st.History, Updated: st.Updated}
	if c.History == nil {
		c.History = []ha.Failover{}
	}
	var set *ha.SyncSet
	if s := st.Sync; s != nil && !s.Async && s.Leader == st.Leader {
		set = s
		c.SyncSet = s.Members
	}
	for _, m := range st.Members {
		c.Members = append(c.Members, MemberJSON{
			Node: m.Node, Address: m.Address, Role: string(m.Role), Live: m.Live, Healthy: m.Healthy && m.Live,
			Eligible: m.Eligible, LagSeconds: m.Lag, GTID: m.Executed, Decision: ShortWhy(m.Why),
			Alone: m.Alone, Acking: m.Acking, InSyncSet: set.Has(m.Node), Updated: m.Updated.UTC().Format(time.RFC3339),
		})
	}
	if s := st.Snapshot; s != nil {
		c.Snapshot = &SnapshotJSON{ID: s.ID, Completed: s.Completed, Size: s.Size, AgeSeconds: now.Sub(s.Completed).Round(time.Second).Seconds(),
			Verify: s.DrillState(), VerifiedAt: s.VerifiedAt, VerifyError: s.VerifyError}
	}
	return c
}

var errorWord = regexp.MustCompile(`(?i)error`)

var errNumber = regexp.MustCompile(`\b(1\d{3}|2\d{3}|4\d{3})\b`)

// ShortWhy keeps a decision's reason but cuts any replication error text to its number and a
// short class: server messages can name accounts, hosts and files.
func ShortWhy(why string) string {
	loc := errorWord.FindStringIndex(why) // on why itself: lower-casing may change byte offsets
	if loc == nil {
		return why
	}
	i := loc[0]
	class := "replication error"
	low := strings.ToLower(why)
	switch {
	case strings.Contains(low, "access denied"):
		class = "access denied"
	case strings.Contains(low, "connect"):
		class = "cannot connect"
	case strings.Contains(low, "1236"):
		class = "binlog position refused"
	}
	head := strings.TrimRight(why[:i], " :(")
	if n := errNumber.FindString(why[i:]); n != "" {
		return head + ": " + class + " (error " + n + ")"
	}
	return head + ": " + class
}
