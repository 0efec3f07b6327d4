//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// The sync set, end to end: the primary p is killed while the only replica holding its last
// acknowledged writes (a) is gone too, and the other replica (b) had stopped receiving. b
// must not take over, losing the writes a acknowledged: it waits for a (a sync-set member
// that is not live), and when a comes back a takes over with every acknowledged row.
//
// Without the sync-set rule b is the only live candidate and takes the lock; a comes back
// with rows b lacks and is re-seeded: the acknowledged rows are lost.
// loseAckedRowsHolder brings a 3-node semi-sync cluster to the fault: the primary p killed
// after writing 5 rows acknowledged by replica a only, a's server frozen, and replica b (which
// never received the rows) running. It returns the cluster, a and b.
func loseAckedRowsHolder(t *testing.T) (*harness.Cluster, *harness.PilotNode, *harness.PilotNode) {
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 3, SemiSync: true})
	p := c.WaitSettled(t, 3, 120*time.Second)
	rest := others(c, p)
	a, b := rest[0], rest[1]
	execWithin(t, p, `CREATE TABLE acked (id INT PRIMARY KEY)`, 10*time.Second)
	harness.Eventually(t, 30*time.Second, "both replicas in "+p.Name+"'s sync set", func() bool {
		raw, ok := c.KV("sync")
		var s struct {
			Leader  string   `json:"leader"`
			Members []string `json:"members"`
		}
		return ok && json.Unmarshal([]byte(raw), &s) == nil && s.Leader == p.Name &&
			slices.Contains(s.Members, a.Name) && slices.Contains(s.Members, b.Name)
	})

	harness.Eventually(t, 30*time.Second, p.Name+" no longer alone (a member has what it committed alone)", func() bool {
		st, ok := p.Status()
		return ok && !st.Alone
	})

	// b stops receiving: its supervisor frozen (so it does not restart replication), its IO
	// thread stopped. Its session outlives the freeze.
	b.Signal(syscall.SIGSTOP)
	rdb := b.RootDB()
	if _, err := rdb.Exec("STOP SLAVE IO_THREAD"); err != nil {
		b.Signal(syscall.SIGCONT)
		t.Fatalf("stop b's IO thread: %v", err)
	}
	rdb.Close()
	// Rows acknowledged (by a: semi-sync waits for it) that b does not have.
	for i := 1; i <= 5; i++ {
		execWithin(t, p, fmt.Sprintf(`INSERT INTO acked VALUES (%d)`, i), 10*time.Second)
	}
	p.Kill9()
	a.FreezeMySQL() // a's supervisor runs on, cannot reach its server: its session ends
	b.Signal(syscall.SIGCONT)
	return c, a, b
}

func TestSyncSetMemberLostWithPrimary(t *testing.T) {
	c, a, b := loseAckedRowsHolder(t)
	waitsFor(t, a, b)

	a.ThawMySQL()
	got := c.WaitSettled(t, 2, 120*time.Second)
	if got.Name != a.Name {
		t.Errorf("primary after %s came back: %s, want %s (it holds the acknowledged rows)", a.Name, got.Name, a.Name)
	}
	for _, n := range []*harness.PilotNode{a, b} {
		harness.Eventually(t, 30*time.Second, "every acknowledged row on "+n.Name, func() bool {
			k, err := count(n, `SELECT COUNT(*) FROM acked`)
			return err == nil && k == 5
		})
	}
}

// The operator gives up on the lost member: `mysqlpilot accept-loss --yes` on b, and b takes
// over at once without the rows only a held.
func TestSyncSetAcceptLoss(t *testing.T) {
	_, a, b := loseAckedRowsHolder(t)
	defer a.ThawMySQL()
	waitsFor(t, a, b)
	if out, err := b.Control("accept-loss"); err == nil || !strings.Contains(out, "--yes") {
		t.Errorf("accept-loss without --yes: err %v, output %q; want a refusal naming --yes", err, out)
	}
	out, err := b.Control("accept-loss", "--yes")
	if err != nil || !strings.Contains(out, "dropped the sync set") {
		t.Fatalf("accept-loss --yes: %v: %s", err, out)
	}
	harness.Eventually(t, 30*time.Second, b.Name+" takes over after the loss was accepted", func() bool {
		st, ok := b.Status()
		return ok && st.Role == "primary" && st.Writable
	})
}

// waitsFor watches b while p's and then a's sessions end (about 5 s each): b must wait the
// whole time, saying for whom, and never open writes. Watched until b has said so for 10 s.
func waitsFor(t *testing.T, a, b *harness.PilotNode) {
	t.Helper()
	var waitingSince time.Time
	deadline := time.Now().Add(90 * time.Second)
	for waitingSince.IsZero() || time.Since(waitingSince) < 10*time.Second {
		if time.Now().After(deadline) {
			a.ThawMySQL()
			st, _ := b.Status()
			t.Fatalf("%s never said it waits for the sync-set member %s; last action %q", b.Name, a.Name, st.Action)
		}
		st, ok := b.Status()
		if ok && (st.Role == "primary" || st.Writable) {
			a.ThawMySQL()
			t.Fatalf("%s took over without %s's acknowledged rows: %+v", b.Name, a.Name, st)
		}
		if ok && waitingSince.IsZero() && strings.Contains(st.Action, "sync-set member "+a.Name) && strings.Contains(st.Action, "is not live") {
			waitingSince = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A whole-cluster crash under load: every node killed at once (kill -9 of each mysqlpilot and
// mariadbd), then all started again. The members' servers restarted since the last primary
// recorded them (their relay logs, which may have held acknowledged writes, are discarded at
// restart), so they wait for it; it keeps every transaction (nobody else took over) and takes
// over. No acknowledged write is lost.
func TestWholeClusterCrash(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{SemiSync: true})
	p := c.WaitSettled(t, 3, 120*time.Second)
	pr := harness.StartProber(t, c, p, 50*time.Millisecond)
	pr.WaitAcks(t, 40, 30*time.Second)
	for _, n := range c.Nodes {
		n.Kill9()
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	np := c.WaitSettled(t, 3, 180*time.Second)
	pr.WaitAcks(t, 60, 60*time.Second)
	pr.Stop()
	checked, lost := pr.Verify(t, np)
	t.Logf("whole-cluster crash: %s was primary, %s is now; writes checked %d, lost %d, split-brain rounds %d", p.Name, np.Name, checked, lost, len(pr.Splits()))
	if s := pr.Splits(); len(s) > 0 {
		t.Errorf("two nodes acknowledged writes in the same round: %v", s)
	}
}
