package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadConfigExitsTwoWithOneLine(t *testing.T) {
	env := map[string]string{"MYSQL_ROOT_PASSWORD": "root-pw-long-enough", "MYSQL_REPL_PASSWORD": "repl-pw-long-enough", "HOSTNAME": "h"}
	cases := []struct{ name, doc, want string }{
		{"invalid JSON", "{\n \"ha\": {,}\n}", "invalid JSON at line 2, column 9"},
		{"unknown field", `{"ha": {"sesionTTL": "10s"}}`, `ha.sesionTTL: unknown field (did you mean "sessionTTL"?)`},
		{"bad duration", `{"ha": {"lockDelay": "1 second"}}`, `ha.lockDelay: "1 second" is not a duration`},
		{"TTL too short", `{"ha": {"sessionTTL": "5s"}, "mysql": {"rootPassword": "root-pw-long-enough", "replPassword": "repl-pw-long-enough"}}`, "ha.sessionTTL: 5s is below Consul's minimum of 10s"},
		{"missing password", `{"mysql": {"replPassword": "repl-pw-long-enough"}}`, "mysql.rootPassword: required: set MYSQL_ROOT_PASSWORD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, env, "run", "--config", writeConfig(t, c.doc))
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q\nwant it to contain %q", stderr, c.want)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want 1:\n%s", lines, stderr)
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "run", "--config", "/nonexistent/mysqlpilot.json")
	if code != 2 || !strings.Contains(stderr, "/nonexistent/mysqlpilot.json does not exist") {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
}

func TestConfigCommandRedactsSecrets(t *testing.T) {
	env := map[string]string{"MYSQL_ROOT_PASSWORD": "very-secret-root", "MYSQL_REPL_PASSWORD": "very-secret-repl", "HOSTNAME": "h"}
	code, stdout, stderr := runCLI(t, env, "config")
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "very-secret") || !strings.Contains(stdout, "<redacted>") {
		t.Fatalf("config output leaks or does not redact:\n%s", stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"maintenance", "sideways"}, {"supervise"}, {"run", "--no-such-flag"}} {
		if code, _, _ := runCLI(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCLI(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "mysqlpilot ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, nil, "keygen"); code != 0 {
		t.Errorf("keygen: exit %d", code)
	} else if _, err := seal.ParseKey(out, "keygen"); err != nil {
		t.Errorf("keygen printed no key: %v", err)
	}
	if code, _, _ := runCLI(t, nil, "keygen", "x"); code != 2 {
		t.Errorf("keygen x: exit %d, want 2", code)
	}
	if code, _, stderr := runCLI(t, nil, "status", "--socket", "/nonexistent.sock"); code != 1 || !strings.Contains(stderr, "control socket") {
		t.Errorf("status without a node: %d %q", code, stderr)
	}
}

// status says when a node holds writes only it has, and marks such a member in --cluster.
func TestPrintStatusAlone(t *testing.T) {
	var b strings.Builder
	printStatus(&b, ha.Status{Node: "a", Role: ha.RolePrimary, Writable: true, Alone: true,
		Members: []ha.MemberRecord{{Node: "a", Role: ha.RolePrimary, Live: true, Alone: true, Why: "the primary, with the lock"}}}, true)
	out := b.String()
	for _, want := range []string{"alone:    yes", "[committed alone] the primary, with the lock"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printStatus(&b, ha.Status{Node: "a", Role: ha.RolePrimary}, false)
	if strings.Contains(b.String(), "alone") {
		t.Errorf("status says alone for a node that is not:\n%s", b.String())
	}
}

// status --cluster says what the latest snapshot's restore drill found.
func TestPrintStatusDrill(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		snap ha.SnapshotInfo
		want string
	}{
		{ha.SnapshotInfo{ID: "s1", Completed: at, Size: 3 << 20}, "drill:    not drilled yet"},
		{ha.SnapshotInfo{ID: "s1", Completed: at, VerifiedAt: at.Add(time.Minute)}, "drill:    verified at 2026-12-05T12:01:00Z"},
		{ha.SnapshotInfo{ID: "s1", Completed: at, VerifiedAt: at.Add(time.Minute), VerifyError: "sha256 mismatch"},
			"drill:    FAILED at 2026-12-05T12:01:00Z: sha256 mismatch"},
	} {
		var b strings.Builder
		printStatus(&b, ha.Status{Node: "a", Role: ha.RoleReplica, Snapshot: &c.snap}, true)
		if out := b.String(); !strings.Contains(out, c.want) || !strings.Contains(out, "snapshot: s1, completed 2026-12-05T12:00:00Z") {
			t.Errorf("status --cluster lacks %q:\n%s", c.want, out)
		}
	}
}
