//go:build integration

package metrics

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// Prometheus' own linter accepts the output (promtool, from Debian's prometheus package,
// which test/tools/install-deps.sh installs).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (install Debian's prometheus package: test/tools/install-deps.sh): %v", err)
	}
	now := time.Now()
	var b strings.Builder
	Write(&b, fullStatus(now), supervisor.Stats{Started: 1}, now)
	WriteDrills(&b, Drills{Runs: 1, LastSuccess: now, LastRun: now, LastTook: time.Second})
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(b.String())
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\non:\n%s", err, out, b.String())
	}
}
