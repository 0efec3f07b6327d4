package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

func TestHandler_RendersTheLoopsStatusAndTheSupervisorsStats(t *testing.T) {
	status := func() ha.Status { return ha.Status{Healthy: true, Role: ha.RolePrimary, Writable: true} }
	stats := func() supervisor.Stats { return supervisor.Stats{Started: 3, OrphansReaped: 2} }
	rec := httptest.NewRecorder()
	Handler(status, stats).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		"mysqlpilot_healthy 1\n",
		`mysqlpilot_role{role="primary"} 1` + "\n",
		`mysqlpilot_role{role="replica"} 0` + "\n",
		"mysqlpilot_writable 1\n",
		"mysqlpilot_session 0\n",
		"mysqlpilot_processes_started_total 3\n",
		"mysqlpilot_orphans_reaped_total 2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "replication_lag") {
		t.Errorf("a primary has no replication lag:\n%s", out)
	}
}
