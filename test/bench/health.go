package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// CheckCost is the CPU time one way of checking a server's health costs.
type CheckCost struct {
	Method string
	Checks int
	CPU    time.Duration // self + children, all checks
	Wall   time.Duration
	Err    error
}

// PerCheck is the CPU time of one check.
func (c CheckCost) PerCheck() time.Duration {
	if c.Checks == 0 {
		return 0
	}
	return c.CPU / time.Duration(c.Checks)
}

// The fork's equivalent of what internal/ha's observe asks the server in process (read_only,
// the GTID position, the replica status), in one client invocation.
const forkQuery = "SELECT @@GLOBAL.read_only; " +
	"SELECT CONCAT_WS(',', NULLIF(@@GLOBAL.gtid_binlog_state, ''), NULLIF(@@GLOBAL.gtid_slave_pos, '')); " +
	"SHOW SLAVE STATUS"

// rusage is this process's CPU time plus that of its waited-for children.
func rusage() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// method is one way of checking, measured in blocks.
type method struct {
	name  string
	check func() error
	cost  CheckCost
}

// measure runs every method n times in total, after a few warm-up calls, in blocks that
// alternate between the methods, so that a change in the machine's load during the
// measurement weighs on all of them alike.
func measure(n int, ms ...*method) []CheckCost {
	const blocks = 5
	for _, m := range ms {
		m.cost = CheckCost{Method: m.name}
		for i := 0; i < 5 && m.cost.Err == nil; i++ {
			m.cost.Err = m.check()
		}
	}
	for b := 0; b < blocks; b++ {
		k := n / blocks
		if b < n%blocks {
			k++
		}
		for _, m := range ms {
			if m.cost.Err != nil {
				continue
			}
			cpu0, wall0 := rusage(), time.Now()
			for i := 0; i < k; i++ {
				if err := m.check(); err != nil {
					m.cost.Err = err
					break
				}
			}
			m.cost.CPU += rusage() - cpu0
			m.cost.Wall += time.Since(wall0)
			m.cost.Checks += k
		}
	}
	var out []CheckCost
	for _, m := range ms {
		out = append(out, m.cost)
	}
	return out
}

// HealthCheckCost measures, against node's mariadbd (a replica, over its unix socket, as
// root), the in-process check mysqlpilot runs every health interval and the fork of the
// `mariadb` client that the seed's shell hooks ran.
func HealthCheckCost(node *harness.PilotNode, n int) ([]CheckCost, error) {
	sock := filepath.Join(node.Dir, "mysqld.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := mysql.Open(ctx, mysql.Conn{Flavor: mysql.MariaDB, Socket: sock, Password: harness.RootPassword})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", sock, err)
	}
	defer db.Close()
	dir, err := os.MkdirTemp("", "mpbench-health-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opt := filepath.Join(dir, "client.cnf")
	if err := mysql.WriteClientOptionFile(opt, mysql.ClientOptions{User: "root", Password: harness.RootPassword, Socket: sock}); err != nil {
		return nil, err
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		return nil, fmt.Errorf("mariadb client: %w", err)
	}
	fork := func(q string) func() error {
		return func() error {
			cmd := exec.Command(client, "--defaults-extra-file="+opt, "-N", "-B", "-e", q)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("mariadb -e: %v: %s", err, out)
			}
			return nil
		}
	}
	inProcess := func() error {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := db.ReadOnly(c); err != nil {
			return err
		}
		if _, err := db.GTIDState(c); err != nil {
			return err
		}
		_, err := db.ReplicaStatus(c)
		return err
	}
	return measure(n,
		&method{name: "in-process: pooled go-sql-driver connection, ReadOnly + GTIDState + ReplicaStatus (what observe runs)", check: inProcess},
		&method{name: "fork: `mariadb --defaults-extra-file -e` with the same three queries", check: fork(forkQuery)},
		&method{name: "fork: `mariadb --defaults-extra-file -e 'SELECT 1'`", check: fork("SELECT 1")},
	), nil
}
