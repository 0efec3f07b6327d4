package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func primary() ha.Status {
	return ha.Status{Node: "a", Role: ha.RolePrimary, Healthy: true, Writable: true, MySQLUp: true, Leader: "a",
		WritableUntil: now.Add(2 * time.Second), Updated: now}
}

func replica(lag time.Duration) ha.Status {
	return ha.Status{Node: "b", Role: ha.RoleReplica, Healthy: true, MySQLUp: true, Leader: "a", Updated: now,
		Replica: &ha.ReplicaStatus{IORunning: true, SQLRunning: true, Lag: lag}}
}

func get(t *testing.T, h http.Handler, method, path string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code
}

// The role endpoints, as a load balancer's health check reads them.
func TestRoleEndpoints(t *testing.T) {
	fenced := primary()
	fenced.Writable = false
	late := primary()
	late.WritableUntil = now.Add(-time.Millisecond) // its lock's deadline passed: a frozen loop
	stale := replica(0)
	stale.Updated = now.Add(-time.Minute)
	stopped := replica(0)
	stopped.Replica.SQLRunning = false
	down := replica(0)
	down.MySQLUp = false
	for _, c := range []struct {
		name string
		st   ha.Status
		path string
		want int
	}{
		{"the primary", primary(), "/primary", 200},
		{"the primary serves reads", primary(), "/read-only", 200},
		{"the primary is no replica", primary(), "/replica", 503},
		{"a fenced primary", fenced, "/primary", 503},
		{"a primary past its lock's deadline", late, "/primary", 503},
		{"a replica", replica(time.Second), "/replica", 200},
		{"a replica is no primary", replica(0), "/primary", 503},
		{"a replica serves reads", replica(time.Second), "/read-only", 200},
		{"a replica over maxLag", replica(31 * time.Second), "/replica", 503},
		{"a replica over ?lag=", replica(6 * time.Second), "/replica?lag=5s", 503},
		{"?lag= in seconds", replica(4 * time.Second), "/replica?lag=5", 200},
		{"?lag= cannot loosen maxLag", replica(31 * time.Second), "/replica?lag=1h", 503},
		{"a bad ?lag=", replica(0), "/replica?lag=soon", 503},
		{"a replica whose SQL thread stopped", stopped, "/replica", 503},
		{"a stale observation", stale, "/replica", 503},
		{"mysqld answers", replica(0), "/health", 200},
		{"mysqld does not answer", down, "/health", 503},
		{"HEAD works", primary(), "/primary", 200},
	} {
		h := Handler(Options{Status: func() ha.Status { return c.st }, MaxLag: 30 * time.Second, Stale: 10 * time.Second, Now: func() time.Time { return now }})
		method := http.MethodGet
		if strings.HasPrefix(c.name, "HEAD") {
			method = http.MethodHead
		}
		if got := get(t, h, method, c.path); got != c.want {
			t.Errorf("%s: %s %s = %d, want %d", c.name, method, c.path, got, c.want)
		}
	}
}

// Every answer comes from the loop's last observation: 10,000 requests to every endpoint read
// the status 10,000 times each and do nothing else (the handler holds no database or Consul
// client at all, so mysqld cannot see a query from it).
func TestEndpointsOnlyReadTheStatus(t *testing.T) {
	var reads atomic.Int64
	h := Handler(Options{Status: func() ha.Status { reads.Add(1); return primary() }, MaxLag: time.Minute, Now: func() time.Time { return now }})
	paths := []string{"/primary", "/replica", "/read-only", "/health", "/cluster"}
	for _, p := range paths {
		for range 10000 {
			get(t, h, http.MethodGet, p)
		}
	}
	if got, want := reads.Load(), int64(10000*len(paths)); got != want {
		t.Errorf("%d status reads for %d requests", got, want)
	}
}

// /cluster: members, leader, sync set, snapshot age, history; replication error text is cut
// to its number and class.
func TestClusterJSON(t *testing.T) {
	st := primary()
	st.Sync = &ha.SyncSet{Leader: "a", Members: []string{"b"}}
	st.Snapshot = &ha.SnapshotInfo{ID: "s1", Completed: now.Add(-90 * time.Second), Size: 42, VerifiedAt: now, VerifyError: "sha256 mismatch"}
	st.History = []ha.Failover{{At: now, From: "c", To: "a", Cause: "failover", Took: 6 * time.Second}}
	st.Members = []ha.MemberRecord{
		{Node: "a", Role: ha.RolePrimary, Live: true, Healthy: true},
		{Node: "b", Role: ha.RoleReplica, Live: true, Healthy: true, Acking: true, Lag: 0.5},
		{Node: "c", Role: ha.RoleReplica, Live: true, Why: "Follow: replication from a stopped: error connecting to master 'repl@10.0.0.1:3306' - retry-time: 1 message: Access denied for user 'repl' (Errno: 1045)"},
	}
	h := Handler(Options{Status: func() ha.Status { return st }, Now: func() time.Time { return now }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/cluster", nil))
	var c ClusterJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Leader != "a" || len(c.Members) != 3 || !c.Members[1].InSyncSet || c.Members[2].InSyncSet || c.Snapshot.AgeSeconds != 90 || len(c.History) != 1 {
		t.Errorf("cluster = %+v", c)
	}
	if c.Snapshot.Verify != "failed" || c.Snapshot.VerifyError != "sha256 mismatch" || !c.Snapshot.VerifiedAt.Equal(now) {
		t.Errorf("snapshot's drill in /cluster = %+v", c.Snapshot)
	}
	if strings.Contains(rec.Body.String(), "repl@") || strings.Contains(rec.Body.String(), "Access denied for user") {
		t.Errorf("/cluster carries replication error text: %s", c.Members[2].Decision)
	}
	if want := "Follow: replication from a stopped: access denied (error 1045)"; c.Members[2].Decision != want {
		t.Errorf("decision = %q, want %q", c.Members[2].Decision, want)
	}
}

// The page is served, self-contained (no CDN: the machines may be offline).
func TestPage(t *testing.T) {
	h := Handler(Options{Status: primary})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "fetch(\"cluster\"") {
		t.Fatalf("GET / = %d", rec.Code)
	}
	for _, bad := range []string{"http://", "https://", "<link"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page loads something from elsewhere (%q)", bad)
		}
	}
	if get(t, h, http.MethodGet, "/nothing-here") != 404 {
		t.Error("an unknown path is not 404")
	}
}

// Text whose lower-case form has another byte length (the Kelvin sign) does not panic.
func TestShortWhyNonASCII(t *testing.T) {
	got := ShortWhy("\u212a\u212a\u212a\u212a\u212a replication ERROR 1045: Access denied for user 'x'")
	if strings.Contains(got, "Access denied for user") || !strings.Contains(got, "error 1045") {
		t.Errorf("ShortWhy = %q", got)
	}
}
