// Package metrics renders a node's state in Prometheus' text format (metrics.listen, /metrics).
// Every value comes from the HA loop's last observation: a scrape queries nothing.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// Handler renders the loop's status, the supervisor's stats and, when drills is not nil (the
// node runs restore drills), its drill counters, read at each scrape.
func Handler(status func() ha.Status, stats func() supervisor.Stats, drills func() Drills) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		now := time.Now()
		Write(w, status(), stats(), now)
		if drills != nil {
			WriteDrills(w, drills())
		}
	})
}

// Drills are a node's restore drill counters (snapshot.VerifyStats).
type Drills struct {
	Runs, Failures, LocalErrors uint64
	LastSuccess                 time.Time
	LastRun                     time.Time
	LastTook                    time.Duration
}

// WriteDrills renders the node's restore drill counters.
func WriteDrills(w io.Writer, d Drills) {
	one := func(name, typ, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	one("mysqlpilot_snapshot_verify_runs_total", "counter", "Restore drills this node ran to an outcome (passed or failed).", d.Runs)
	one("mysqlpilot_snapshot_verify_failures_total", "counter", "Restore drills on this node that found a snapshot bad.", d.Failures)
	one("mysqlpilot_snapshot_verify_local_errors_total", "counter", "Restore drills that could not run on this node (nothing recorded; retried).", d.LocalErrors)
	if !d.LastSuccess.IsZero() {
		one("mysqlpilot_snapshot_verify_last_success_timestamp_seconds", "gauge", "When this node's last passing restore drill finished (Unix time).", d.LastSuccess.Unix())
	}
	if !d.LastRun.IsZero() {
		one("mysqlpilot_snapshot_verify_last_duration_seconds", "gauge", "How long this node's last restore drill took.", d.LastTook.Seconds())
	}
}

// Write renders the metrics at now.
func Write(w io.Writer, st ha.Status, ss supervisor.Stats, now time.Time) {
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	one := func(name, typ, help string, v any) {
		family(name, typ, help)
		fmt.Fprintf(w, "%s %v\n", name, v)
	}
	b := func(x bool) int {
		if x {
			return 1
		}
		return 0
	}
	one("mysqlpilot_healthy", "gauge", "1 when this node's service check passes.", b(st.Healthy))
	family("mysqlpilot_role", "gauge", "1 for this node's role (primary or replica).")
	for _, role := range []ha.Role{ha.RolePrimary, ha.RoleReplica} {
		fmt.Fprintf(w, "mysqlpilot_role{role=%q} %d\n", role, b(st.Role == role))
	}
	one("mysqlpilot_writable", "gauge", "1 when read_only is off.", b(st.Writable))
	one("mysqlpilot_mysql_up", "gauge", "1 when mysqld answered the last observation.", b(st.MySQLUp))
	one("mysqlpilot_session", "gauge", "1 when this node holds a Consul session.", b(st.Session))
	one("mysqlpilot_semi_sync_primary", "gauge", "1 when the primary side of semi-sync is on.", b(st.SemiSync))
	one("mysqlpilot_semi_sync_replica", "gauge", "1 when this replica acknowledges the primary's commits (replica side of semi-sync on).", b(st.Acking))
	one("mysqlpilot_alone", "gauge", "1 when this primary may hold writes it acknowledged alone.", b(st.Alone))
	one("mysqlpilot_maintenance", "gauge", "1 when maintenance mode pauses automatic failover.", b(st.Maintenance))
	if st.Replica != nil && st.Replica.Lag >= 0 {
		one("mysqlpilot_replication_lag_seconds", "gauge", "Replication lag.", st.Replica.Lag.Seconds())
	}
	if seqs := domainSeqs(st.Executed); len(seqs) > 0 {
		family("mysqlpilot_gtid_sequence", "gauge", "Highest executed GTID sequence number per replication domain.")
		domains := make([]uint64, 0, len(seqs))
		for d := range seqs {
			domains = append(domains, d)
		}
		sort.Slice(domains, func(i, j int) bool { return domains[i] < domains[j] })
		for _, d := range domains {
			fmt.Fprintf(w, "mysqlpilot_gtid_sequence{domain=\"%d\"} %d\n", d, seqs[d])
		}
	}
	one("mysqlpilot_promotions_total", "counter", "Promotions of this node to primary by this process.", st.Promotions)
	one("mysqlpilot_fences_total", "counter", "Fences (read_only, clients cut) run by this process.", st.Fences)
	one("mysqlpilot_cluster_failovers", "gauge", "Changes of primary in the cluster's recorded history (bounded).", len(st.History))
	if s := st.Snapshot; s != nil {
		one("mysqlpilot_snapshot_age_seconds", "gauge", "Age of the latest published snapshot.", now.Sub(s.Completed).Seconds())
		one("mysqlpilot_snapshot_size_bytes", "gauge", "Size of the latest published snapshot (stored).", s.Size)
		family("mysqlpilot_snapshot_verify_state", "gauge", "1 for what the latest snapshot's restore drill found: verified, failed, or unverified (none ran yet).")
		for _, state := range []string{"verified", "failed", "unverified"} {
			fmt.Fprintf(w, "mysqlpilot_snapshot_verify_state{state=%q} %d\n", state, b(s.DrillState() == state))
		}
	}
	if !st.BinlogArchived.IsZero() {
		one("mysqlpilot_binlog_archive_lag_seconds", "gauge", "Time since the binlog archive last recorded progress.", now.Sub(st.BinlogArchived).Seconds())
	}
	one("mysqlpilot_processes_started_total", "counter", "Child processes started.", ss.Started)
	one("mysqlpilot_orphans_reaped_total", "counter", "Orphaned descendants reaped.", ss.OrphansReaped)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	one("mysqlpilot_go_heap_bytes", "gauge", "Go heap in use.", m.HeapInuse)
	one("mysqlpilot_goroutines", "gauge", "Goroutines.", runtime.NumGoroutine())
}

// domainSeqs is the highest sequence number per domain of a MariaDB GTID list
// ("0-1-5,0-2-7,1-3-2"); a MySQL GTID set yields nothing.
func domainSeqs(gtids string) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, g := range strings.Split(gtids, ",") {
		parts := strings.Split(strings.TrimSpace(g), "-")
		if len(parts) != 3 {
			continue
		}
		d, err1 := strconv.ParseUint(parts[0], 10, 32)
		seq, err2 := strconv.ParseUint(parts[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if seq > out[d] {
			out[d] = seq
		}
	}
	return out
}
