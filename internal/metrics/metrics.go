// Package metrics renders a node's state in Prometheus' text format (metrics.listen).
package metrics

import (
	"fmt"
	"net/http"
	"runtime"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// Handler renders the loop's status and the supervisor's stats, read at each scrape.
func Handler(status func() ha.Status, stats func() supervisor.Stats) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		st := status()
		b2f := func(b bool) int {
			if b {
				return 1
			}
			return 0
		}
		gauge := func(name, help string, v any, labels string) {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s%s %v\n", name, help, name, name, labels, v)
		}
		counter := func(name, help string, v any) {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %v\n", name, help, name, name, v)
		}
		gauge("mysqlpilot_healthy", "1 when this node's service check passes.", b2f(st.Healthy), "")
		for _, role := range []ha.Role{ha.RolePrimary, ha.RoleReplica} {
			fmt.Fprintf(w, "mysqlpilot_role{role=%q} %d\n", role, b2f(st.Role == role))
		}
		gauge("mysqlpilot_writable", "1 when read_only is off.", b2f(st.Writable), "")
		gauge("mysqlpilot_session", "1 when this node holds a Consul session.", b2f(st.Session), "")
		if st.Replica != nil && st.Replica.Lag >= 0 {
			gauge("mysqlpilot_replication_lag_seconds", "Replication lag.", st.Replica.Lag.Seconds(), "")
		}
		ss := stats()
		counter("mysqlpilot_processes_started_total", "Child processes started.", ss.Started)
		counter("mysqlpilot_orphans_reaped_total", "Orphaned descendants reaped.", ss.OrphansReaped)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		gauge("mysqlpilot_go_heap_bytes", "Go heap in use.", m.HeapInuse, "")
		gauge("mysqlpilot_goroutines", "Goroutines.", runtime.NumGoroutine(), "")
	})
}
