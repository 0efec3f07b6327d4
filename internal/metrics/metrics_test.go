package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

func TestHandler_RendersTheLoopsStatusAndTheSupervisorsStats(t *testing.T) {
	status := func() ha.Status { return ha.Status{Healthy: true, Role: ha.RolePrimary, Writable: true} }
	stats := func() supervisor.Stats { return supervisor.Stats{Started: 3, OrphansReaped: 2} }
	rec := httptest.NewRecorder()
	drills := func() Drills {
		return Drills{Runs: 4, Failures: 1, LastSuccess: time.Unix(1764931200, 0), LastRun: time.Unix(1764931200, 0), LastTook: 2500 * time.Millisecond}
	}
	Handler(status, stats, drills).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		"mysqlpilot_healthy 1\n",
		`mysqlpilot_role{role="primary"} 1` + "\n",
		`mysqlpilot_role{role="replica"} 0` + "\n",
		"mysqlpilot_writable 1\n",
		"mysqlpilot_session 0\n",
		"mysqlpilot_processes_started_total 3\n",
		"mysqlpilot_orphans_reaped_total 2\n",
		"mysqlpilot_snapshot_verify_runs_total 4\n",
		"mysqlpilot_snapshot_verify_failures_total 1\n",
		"mysqlpilot_snapshot_verify_last_success_timestamp_seconds 1764931200\n",
		"mysqlpilot_snapshot_verify_last_duration_seconds 2.5\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "replication_lag") {
		t.Errorf("a primary has no replication lag:\n%s", out)
	}
}

// Every family a Prometheus user expects, from a full status.
func fullStatus(now time.Time) ha.Status {
	return ha.Status{
		Healthy: true, Role: ha.RoleReplica, MySQLUp: true, Session: true, Acking: true,
		Executed: "0-1-5,0-2-9,1-3-2", Replica: &ha.ReplicaStatus{Lag: 1500 * time.Millisecond},
		Promotions: 2, Fences: 3, History: []ha.Failover{{To: "a"}},
		Snapshot:       &ha.SnapshotInfo{ID: "s", Completed: now.Add(-time.Hour), Size: 1 << 20, VerifyError: "sha256 mismatch", VerifiedAt: now},
		BinlogArchived: now.Add(-30 * time.Second),
	}
}

func TestWrite_EveryFamily(t *testing.T) {
	now := time.Now()
	var b strings.Builder
	Write(&b, fullStatus(now), supervisor.Stats{}, now)
	out := b.String()
	for _, want := range []string{
		`mysqlpilot_gtid_sequence{domain="0"} 9`, `mysqlpilot_gtid_sequence{domain="1"} 2`,
		"mysqlpilot_replication_lag_seconds 1.5", "mysqlpilot_semi_sync_replica 1", "mysqlpilot_promotions_total 2",
		"mysqlpilot_fences_total 3", "mysqlpilot_snapshot_age_seconds 3600", "mysqlpilot_snapshot_size_bytes 1048576",
		"mysqlpilot_binlog_archive_lag_seconds 30", "mysqlpilot_cluster_failovers 1",
		`mysqlpilot_snapshot_verify_state{state="failed"} 1`, `mysqlpilot_snapshot_verify_state{state="verified"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
