package main

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/cluster"
	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// A restored datadir whose GTID position cannot be set (Bootstrap.Finish fails) stops the node
// before its HA loop exists: it leaves Consul without a handover, stops mysqld and exits with
// the error, never a nil-loop panic in PID 1.
func TestFinishRestoreFailure_LeavesWithoutALoopAndStopsMySQL(t *testing.T) {
	cfg := config.Default()
	cfg.HA.HandoverTimeout = config.Duration{Duration: time.Second}
	cfg.MySQL.Datadir = t.TempDir() + "/data"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// Nothing listens on port 1: deregistering fails at once, as with Consul away.
	c, err := consul.New(consul.Options{Address: "127.0.0.1:1"}, log)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{cfg: cfg, log: log, consul: c}
	n.cluster = cluster.New(c, cluster.Options{Prefix: "service/mysql/", Service: "mysql", Node: "n1"}, log)

	stopped := false
	finishErr := errors.New("bootstrap from snapshot 20261201T000000Z: set gtid_slave_pos: denied")
	err = n.finishRestore(func() error { return finishErr }, func() { stopped = true })
	if !errors.Is(err, finishErr) {
		t.Errorf("finishRestore = %v, want the Finish error", err)
	}
	if !stopped {
		t.Error("mysqld was not stopped")
	}
	if !strings.Contains(logs.String(), "deregister") {
		t.Errorf("the node did not try to leave Consul; log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "handover") {
		t.Errorf("a node without a loop has nothing to hand over; log:\n%s", logs.String())
	}
}

// runNode turns such an error into the exit code and one log line naming it.
func TestRunNode_ConfigErrorExitsWithAMessage(t *testing.T) {
	cfg := config.Default()
	cfg.MySQL.Flavor = "percona"
	var logs bytes.Buffer
	code := runNode(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil, nil)
	if code != 2 || !strings.Contains(logs.String(), "mysqlpilot stopped") || !strings.Contains(logs.String(), "mysql.flavor") {
		t.Errorf("code %d, log:\n%s", code, logs.String())
	}
}

// The local Consul agent: a client named after the node, gossiping on the service address,
// its API on loopback only, joining every listed server, with none of our secrets in its
// environment.
func TestConsulAgentJob(t *testing.T) {
	t.Setenv("MYSQL_ROOT_PASSWORD", "s3cret")
	j := consulAgentJob(config.ConsulAgentConfig{Join: "consul, consul-2,consul-3", Exec: "consul", DataDir: "/var/lib/mysql/consul-agent"}, "n1", "10.0.0.5")
	want := []string{"agent", "-node=n1", "-data-dir=/var/lib/mysql/consul-agent", "-bind=10.0.0.5", "-client=127.0.0.1",
		"-hcl=disable_update_check = true", "-log-level=warn", "-retry-join=consul", "-retry-join=consul-2", "-retry-join=consul-3"}
	if !slices.Equal(j.Cmd.Args, want) || j.Cmd.Path != "consul" {
		t.Errorf("agent command %s %q, want consul %q", j.Cmd.Path, j.Cmd.Args, want)
	}
	if j.Cmd.Env == nil {
		t.Fatal("the agent inherits mysqlpilot's environment (its passwords)")
	}
	for _, kv := range j.Cmd.Env {
		if strings.Contains(kv, "s3cret") {
			t.Errorf("the agent's environment holds a secret: %q", kv)
		}
	}
	if j.Restart != supervisor.RestartAlways {
		t.Errorf("restart policy %q, want always", j.Restart)
	}
}
