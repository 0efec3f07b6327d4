//go:build system

package system

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds: generous for a loaded 2-core machine, each far above what a healthy run takes.
const (
	settleTimeout   = 4 * time.Minute  // a cluster (re)forming
	failoverTimeout = 60 * time.Second // a new primary after a fault
	ackTimeout      = 60 * time.Second // a few more acknowledged writes
	writeEvery      = 100 * time.Millisecond
)

// startCluster brings up consul and n mysql containers and waits until they settle.
func startCluster(t *testing.T, env map[string]string, n int) (*Project, Settled) {
	t.Helper()
	p := NewProject(t, env)
	start := time.Now()
	p.Up(n)
	s := p.WaitSettled(t, n, settleTimeout)
	t.Logf("%d-node cluster up and settled in %s", n, time.Since(start).Round(100*time.Millisecond))
	return p, s
}

// (1) up, scale to 3, write on the primary, read on the replicas.
func TestUpScaleWriteRead(t *testing.T) {
	p := NewProject(t, nil)
	start := time.Now()
	// As a user would: `docker-compose up -d`, then `docker-compose scale mysql=3`.
	p.MustCompose(5*time.Minute, "up", "-d", "--no-build")
	s1 := p.WaitSettled(t, 1, settleTimeout)
	p.MustCompose(5*time.Minute, "scale", "mysql=3")
	s := p.WaitSettled(t, 3, settleTimeout)
	upTook := time.Since(start)
	if s.Primary.ID != s1.Primary.ID {
		t.Errorf("scaling to 3 moved the primary from %s to %s", s1.Primary, s.Primary)
	}

	if err := p.SQL(s.Primary, "CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(32))", "INSERT INTO kv VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 50, ackTimeout)
	for _, r := range s.Replicas {
		Eventually(t, 30*time.Second, 200*time.Millisecond, "kv rows on replica "+r.String(), func() (bool, string) {
			ids, err := p.IDs(r, "kv")
			return err == nil && len(ids) == 2, fmt.Sprint(ids, err)
		})
		err := p.SQL(r, "INSERT INTO kv VALUES (3, 'three')")
		if !isReadOnlyErr(err) {
			t.Errorf("write on replica %s: err = %v, want a read-only error", r, err)
		}
	}
	assertReplicasUseTLS(t, p, s)
	c.Stop()
	acks := c.Acks()
	for _, r := range s.Replicas {
		took := Eventually(t, 30*time.Second, 200*time.Millisecond, "every acknowledged write on replica "+r.String(), func() (bool, string) {
			ids, err := p.IDs(r, probeTable)
			if err != nil {
				return false, err.Error()
			}
			for _, a := range acks {
				if !ids[a.ID] {
					return false, fmt.Sprintf("id %d missing", a.ID)
				}
			}
			return true, ""
		})
		t.Logf("replica %s has all %d acknowledged writes (waited %s)", r, len(acks), took.Round(time.Millisecond))
	}
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s.Primary)
	rounds, attempts := c.Counts()

	// make up's setup: secrets as files, snapshots sealed with the snapshot key. The store holds
	// only sealed snapshots, and no password or key shows in docker inspect, docker logs or
	// any process's argv or environment.
	Eventually(t, 60*time.Second, 500*time.Millisecond, "a sealed snapshot in the store", func() (bool, string) {
		out, err := p.Exec(10*time.Second, s.Primary.ID, nil, "ls", "/snapshots/snapshots/")
		names := strings.Fields(out)
		sealed := 0
		for _, n := range names {
			switch {
			case strings.HasSuffix(n, ".sealed"):
				sealed++
			case !strings.HasSuffix(n, ".json"):
				t.Fatalf("an unsealed snapshot object in the store: %s", n)
			}
		}
		return err == nil && sealed > 0, fmt.Sprint(names, err)
	})
	for _, r := range s.Replicas {
		if strings.Contains(p.Logs(r.ID, start), "restoring the latest snapshot") {
			t.Logf("replica %s was bootstrapped from the sealed snapshot", r)
		}
	}
	// make up's defaults drill every new snapshot on a replica: status --cluster says so.
	drillTook := Eventually(t, 3*time.Minute, time.Second, "the latest snapshot's restore drill passed (status --cluster)", func() (bool, string) {
		out, _ := p.Exec(10*time.Second, s.Primary.ID, nil, "mysqlpilot", "status", "--cluster")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "drill:") {
				return strings.Contains(l, "verified at"), l
			}
		}
		return false, "no drill line"
	})
	p.AssertNoSecrets(t)
	figures(t, "up_and_scale_took", upTook, "drill_verified_after", drillTook, "write_gap", c.Gap(acks[0].At, acks[len(acks)-1].At), "rounds", rounds,
		"writes_attempted", attempts, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

// (2) docker stop of the primary: it hands over to a replica within 2s, nothing is lost, and
// after docker start it rejoins as a replica.
func TestDockerStopPrimary(t *testing.T) {
	p, s := startCluster(t, nil, 3)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)

	old := s.Primary
	t0 := time.Now()
	p.Docker(90*time.Second, "stop", "--time", "30", old.ID)
	stopTook := time.Since(t0)
	newName := c.WaitAckBy(t, t0, old.Name, failoverTimeout)
	c.WaitAcks(t, 20, ackTimeout)
	gap := c.Gap(t0, time.Now())
	c.Timeline(t, t0.Add(-time.Second), t0.Add(gap+2*time.Second))
	t.Logf("docker stop %s took %s; %s took over; write gap %s", old, stopTook.Round(time.Millisecond), newName, gap.Round(time.Millisecond))
	if code := p.Node(old.ID).ExitCode; code != 0 {
		t.Errorf("%s exited %d after docker stop, want 0", old, code)
	}
	if gap >= 2*time.Second {
		t.Errorf("write gap %s after docker stop, want < 2s", gap)
	}

	p.Docker(time.Minute, "start", old.ID)
	s2 := p.WaitSettled(t, 3, settleTimeout)
	if s2.Primary.Name != newName {
		t.Errorf("after %s came back the primary is %s, want %s", old, s2.Primary, newName)
	}
	c.WaitAcks(t, 20, ackTimeout)
	assertReplicasUseTLS(t, p, s2) // the old primary, back, follows the new one over TLS too
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	figures(t, "write_gap", gap, "docker_stop_took", stopTook, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

// (3) docker kill of the primary with semi-sync on: a replica takes over after the checks
// expire, and no acknowledged write is lost.
func TestDockerKillPrimarySemiSync(t *testing.T) {
	p, s := startCluster(t, map[string]string{"HA_SEMI_SYNC": "true"}, 3)
	// The compose env reaches the config and the servers.
	cfg, err := p.Exec(15*time.Second, s.Primary.ID, nil, "mysqlpilot", "config")
	if err != nil || !strings.Contains(cfg, `"semiSync": true`) {
		t.Fatalf("HA_SEMI_SYNC=true did not reach ha.semiSync (%v):\n%s", err, cfg)
	}
	for _, n := range append([]Node{s.Primary}, s.Replicas...) {
		out, err := p.RootSQL(n.ID, "SELECT @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_slave_enabled")
		want := "0\t1"
		if n.ID == s.Primary.ID {
			want = "1\t0"
		}
		if err != nil || out != want {
			t.Fatalf("semi-sync master/slave enabled on %s = %q (%v), want %q", n, out, err, want)
		}
	}

	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)
	if out, err := p.RootSQL(s.Primary.ID, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'"); err != nil || !strings.HasSuffix(out, "ON") {
		t.Fatalf("semi-sync not active on the primary: %q (%v)", out, err)
	}

	old := s.Primary
	t0 := time.Now()
	p.Docker(time.Minute, "kill", "--signal", "KILL", old.ID)
	newName := c.WaitAckBy(t, t0, old.Name, failoverTimeout)
	failover := time.Since(t0)
	c.WaitAcks(t, 20, ackTimeout)
	gap := c.Gap(t0, time.Now())
	c.Timeline(t, t0.Add(-time.Second), t0.Add(gap+2*time.Second))
	t.Logf("docker kill %s: %s took over; write gap %s", old, newName, gap.Round(time.Millisecond))

	p.Docker(time.Minute, "start", old.ID)
	s2 := p.WaitSettled(t, 3, settleTimeout)
	if s2.Primary.Name != newName {
		t.Errorf("after %s came back the primary is %s, want %s", old, s2.Primary, newName)
	}
	c.WaitAcks(t, 20, ackTimeout)
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	figures(t, "write_gap", gap, "first_write_on_new_primary_after", failover, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

// (4) docker pause of the primary past the TTL, then unpause, with the default config
// (adaptive semi-sync): never two writable primaries; the old primary ends fenced and rejoins
// as a replica (re-seeding from a snapshot if it has errant transactions).
//
// Besides the checker (short client timeouts), one patient client sends a write to the
// primary while it is frozen and waits for the answer with no timeout, as many applications
// do: the thawed server must not acknowledge it once another node is primary. docker pause
// freezes mysqld and its in-server watchdog together with mysqlpilot, so on thaw mysqld runs
// the queued write before anything can set read_only; with semi-sync the commit then waits
// for a replica's acknowledgement that never comes (the replicas follow the new primary)
// until mysqlpilot fences and kills the session, so it is never acknowledged.
func TestDockerPausePrimary(t *testing.T) {
	pausePrimary(t, nil, true)
}

// (4b) the same with asynchronous replication (HA_SEMI_SYNC=false): the last check is a race
// the product can lose, since nothing stands between the thawed server and its answer. When
// it loses, the test reports it and ends as skipped ("blocked by"), after every other check
// has run: this is the documented cost of turning semi-sync off.
func TestDockerPausePrimaryAsync(t *testing.T) {
	pausePrimary(t, map[string]string{"HA_SEMI_SYNC": "false"}, false)
}

// queuedWriteBlocker explains the skip of TestDockerPausePrimaryAsync when the queued write wins.
const queuedWriteBlocker = "blocked by: with HA_SEMI_SYNC=false (asynchronous replication), a primary frozen by docker pause " +
	"acknowledges a client write queued during the freeze when it thaws, before mysqlpilot's fence or the in-server " +
	"watchdog (frozen too) set read_only; that write is then errant and lost (see the report). The default, adaptive " +
	"semi-sync, is safe (TestDockerPausePrimary)"

func pausePrimary(t *testing.T, env map[string]string, strict bool) {
	p, s := startCluster(t, env, 3)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)

	old := s.Primary
	patient := p.PatientDB(old)
	defer patient.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := patient.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
	}
	if err != nil {
		t.Fatalf("patient client connection to %s: %v", old, err)
	}
	defer conn.Close()

	const paused = 15 * time.Second // well past the 5s check TTL and the 10s session TTL
	t0 := p.Pause(old.ID)
	// Sent into the frozen server's socket: it runs when the server thaws.
	queuedID := c.NewID()
	type result struct {
		err error
		at  time.Time
	}
	queued := make(chan result, 1)
	go func() {
		_, err := conn.ExecContext(ctx, "INSERT INTO "+probeTable+" VALUES (?, ?, NOW(6))", queuedID, old.Name+"-queued")
		queued <- result{err, time.Now()}
	}()
	newName := c.WaitAckBy(t, t0, old.Name, failoverTimeout)
	failover := time.Since(t0)
	t.Logf("%s paused: %s took writes after %s", old, newName, failover.Round(time.Millisecond))
	// The fault's length is the parameter here, not a condition to wait for.
	time.Sleep(time.Until(t0.Add(paused)))
	tu := time.Now()
	p.Docker(time.Minute, "unpause", old.ID)

	how := ""
	fenceTook := Eventually(t, 15*time.Second, 100*time.Millisecond, old.String()+" fenced after unpause", func() (bool, string) {
		var fenced bool
		fenced, how = p.Fenced(old.ID)
		return fenced, how
	})
	t.Logf("%s fenced %s after unpause: %s", old, fenceTook.Round(time.Millisecond), how)

	queuedAcked := 0
	select {
	case r := <-queued:
		if r.err == nil {
			queuedAcked = 1
			msg := fmt.Sprintf("split brain: the deposed primary %s acknowledged write %d %s after it thawed, while %s was primary",
				old, queuedID, r.at.Sub(tu).Round(time.Millisecond), newName)
			if strict {
				c.AddAck(Ack{ID: queuedID, Node: old.Name, Sent: t0, At: r.at})
				t.Error(msg)
			} else {
				t.Log(msg)
			}
		} else {
			t.Logf("the write queued in the frozen %s was refused: %v", old, r.err)
		}
	case <-time.After(time.Minute):
		t.Errorf("the write queued in the frozen %s got no answer within a minute of unpause", old)
	}

	// Rejoined as a replica of the new primary (after re-seeding from a snapshot if it had
	// errant transactions: it then restarts), or staying quarantined and saying why.
	outcome := ""
	var quarantinedSince time.Time
	Eventually(t, settleTimeout, time.Second, old.String()+" rejoined as a replica, or quarantined for errant transactions", func() (bool, string) {
		st, ok := p.Status(p.Node(old.ID))
		why := strings.ToLower(st.Action + " " + st.Error)
		switch {
		case !ok:
			return false, "no status (restarting?)"
		case st.Role == "replica" && st.Healthy && st.Holder == newName:
			outcome = "rejoined as replica"
			return true, ""
		case strings.Contains(why, "errant") || strings.Contains(why, "quarantine"):
			if quarantinedSince.IsZero() {
				quarantinedSince = time.Now()
			}
			if time.Since(quarantinedSince) > 30*time.Second {
				outcome = "stays quarantined, reporting errant transactions: " + st.Action
				return true, ""
			}
			return false, st.String()
		}
		quarantinedSince = time.Time{}
		return false, st.String()
	})
	logs := p.Logs(old.ID, tu)
	if strings.HasPrefix(outcome, "stays quarantined") {
		// Why it did not re-seed: its own words.
		var why []string
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") || strings.Contains(l, "snapshot") {
				why = append(why, l)
			}
		}
		t.Logf("%s's warnings and errors after unpause:\n%s", old, strings.Join(why[max(0, len(why)-30):], "\n"))
	}
	if strings.Contains(logs, "QUARANTINED") {
		outcome += " (it had reported errant transactions)"
	}
	if strings.Contains(logs, "restore started") {
		outcome += " (re-seeded from a snapshot)"
	}
	t.Logf("%s after unpause: %s", old, outcome)
	if strings.HasPrefix(outcome, "rejoined") {
		p.WaitSettled(t, 3, settleTimeout)
	}
	final := nodeNamed(t, p, newName)
	c.WaitAcks(t, 20, ackTimeout)
	// Not strict (async replication): the checker's own writes sent during the freeze race
	// the fence just as the patient one does; the losses are reported, not failed.
	check := testing.TB(t)
	ro := &reportOnly{TB: t}
	if !strict {
		check = ro
	}
	afterUnpause := c.AckedBy(old.Name, tu)
	if extra := afterUnpause - queuedAcked*boolInt(strict); extra > 0 {
		check.Errorf("%s acknowledged %d checker writes after unpause", old, extra)
	}
	gap := c.Gap(t0, tu)
	c.Timeline(t, t0.Add(-time.Second), time.Now())
	splits := c.CheckSplits(check)
	checked, lost := c.Verify(check, final)
	if queuedAcked > 0 {
		// The queued write is on the deposed primary only (errant), not on the new one.
		if ids, err := p.IDs(final, probeTable); err == nil && !ids[queuedID] {
			lost++
		}
		checked++
	}
	figures(t, "write_gap", gap, "fenced_after_unpause", fenceTook, "fenced_how", fmt.Sprintf("%q", how), "acked_by_old_after_unpause", afterUnpause,
		"queued_write_acked", queuedAcked, "outcome", fmt.Sprintf("%q", outcome),
		"writes_checked", checked, "writes_lost", lost, "split_rounds", splits+queuedAcked)
	if !strict && (queuedAcked > 0 || ro.failed) && !t.Failed() {
		t.Skip(queuedWriteBlocker)
	}
}

// reportOnly turns a check's failures into log lines, for the documented losses of a
// configuration the product does not hold to the strict standard (asynchronous replication).
type reportOnly struct {
	testing.TB
	failed bool
}

func (r *reportOnly) Errorf(format string, args ...any) {
	r.Helper()
	r.failed = true
	r.Logf("(reported, not failed: async replication) "+format, args...)
}

func (r *reportOnly) Error(args ...any) {
	r.Helper()
	r.failed = true
	r.Log(append([]any{"(reported, not failed: async replication)"}, args...)...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// (5) docker network disconnect of the primary: it fences itself (read-only), a new primary
// is elected, and after reconnecting it rejoins as a replica.
func TestNetworkDisconnectPrimary(t *testing.T) {
	p, s := startCluster(t, nil, 3)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)

	old := s.Primary
	network := p.NetworkName()
	t0 := time.Now()
	p.Docker(time.Minute, "network", "disconnect", network, old.ID)
	how := ""
	fenceTook := Eventually(t, 20*time.Second, 100*time.Millisecond, old.String()+" fenced while isolated", func() (bool, string) {
		var fenced bool
		fenced, how = p.Fenced(old.ID)
		return fenced, how
	})
	t.Logf("%s disconnected: fenced after %s: %s", old, fenceTook.Round(time.Millisecond), how)
	newName := c.WaitAckBy(t, t0, old.Name, failoverTimeout)
	c.WaitAcks(t, 20, ackTimeout)
	gap := c.Gap(t0, time.Now())
	c.Timeline(t, t0.Add(-time.Second), t0.Add(gap+2*time.Second))
	if st, ok := p.Status(old); ok {
		t.Logf("isolated %s says: %s", old, st)
	}
	if fenceTook > 10*time.Second {
		t.Errorf("%s became read-only %s after losing the network, want within ~5s", old, fenceTook)
	}

	p.Docker(time.Minute, "network", "connect", network, old.ID)
	t.Logf("%s reconnected with address %s (was %s)", old, p.Node(old.ID).IP, old.IP)
	s2 := p.WaitSettled(t, 3, settleTimeout)
	if s2.Primary.Name != newName {
		t.Errorf("after %s reconnected the primary is %s, want %s", old, s2.Primary, newName)
	}
	c.WaitAcks(t, 20, ackTimeout)
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	figures(t, "write_gap", gap, "fenced_after", fenceTook, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

// (6) scale to 5 and back to 2 under write load, the primary among the three removed: nothing
// lost.
func TestScaleUpDownUnderLoad(t *testing.T) {
	p, s := startCluster(t, nil, 3)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)

	t0 := time.Now()
	p.MustCompose(5*time.Minute, "up", "-d", "--no-build", "--scale", "mysql=5")
	s5 := p.WaitSettled(t, 5, settleTimeout)
	c.WaitAcks(t, 20, ackTimeout)
	// Scaling down removes the newest containers: make the primary one of them, so the
	// scale-down always takes the primary and two replicas away at once.
	if last := s5.Replicas[len(s5.Replicas)-1]; s5.Primary.Container < last.Container {
		if out, err := p.Exec(time.Minute, s5.Primary.ID, nil, "mysqlpilot", "switchover", "--to", last.Name); err != nil {
			t.Fatalf("switchover to %s: %v\n%s", last, err, out)
		}
		Eventually(t, time.Minute, 200*time.Millisecond, "primary on "+last.String(), func() (bool, string) {
			st, ok := p.Status(last)
			return ok && st.Role == "primary" && st.Writable && st.Healthy, st.String()
		})
		s5 = p.WaitSettled(t, 5, settleTimeout)
		c.WaitAcks(t, 20, ackTimeout)
	}
	t1 := time.Now()
	p.MustCompose(5*time.Minute, "up", "-d", "--no-build", "--scale", "mysql=2")
	s2 := p.WaitSettled(t, 2, settleTimeout)
	c.WaitAcks(t, 20, ackTimeout)
	t2 := time.Now()
	gapUp, gapDown := c.Gap(t0, t1), c.Gap(t1, t2)
	t.Logf("scale 3->5 in %s (primary %s), 5->2 in %s (primary %s, was %s); write gaps %s and %s",
		t1.Sub(t0).Round(time.Second), s5.Primary, t2.Sub(t1).Round(time.Second), s2.Primary, s5.Primary, gapUp, gapDown)

	c.Stop()
	acks := c.Acks()
	for _, r := range s2.Replicas {
		Eventually(t, 30*time.Second, 200*time.Millisecond, "every acknowledged write on replica "+r.String(), func() (bool, string) {
			ids, err := p.IDs(r, probeTable)
			if err != nil {
				return false, err.Error()
			}
			for _, a := range acks {
				if !ids[a.ID] {
					return false, fmt.Sprintf("id %d missing", a.ID)
				}
			}
			return true, ""
		})
	}
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	figures(t, "write_gap", max(gapUp, gapDown), "write_gap_scale_up", gapUp, "write_gap_scale_down", gapDown,
		"writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

// (6b) two faults at once: the primary dies (docker kill) while two of its three replicas are
// being stopped for good (docker stop, as a scale-down does). The last replica takes over: the
// leaving ones stopped fetching and said how far they had come before their sessions ended,
// so it knows they hold nothing it lacks (without that it would wait for them for ever, they
// being sync-set members that may hold acknowledged writes). Nothing acknowledged is lost.
func TestPrimaryDiesWhileReplicasLeave(t *testing.T) {
	p, s := startCluster(t, nil, 4)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)

	stay, leaving := s.Replicas[0], s.Replicas[1:]
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, n := range leaving {
		wg.Add(1)
		go func() { defer wg.Done(); p.Docker(time.Minute, "stop", n.ID) }()
	}
	p.Docker(time.Minute, "kill", "--signal", "KILL", s.Primary.ID)
	wg.Wait()
	s1 := p.WaitSettled(t, 1, settleTimeout)
	if s1.Primary.ID != stay.ID {
		t.Fatalf("primary %s, want %s (the only node left)", s1.Primary, stay)
	}
	c.WaitAcks(t, 20, ackTimeout)
	gap := c.Gap(t0, time.Now())
	c.Stop()
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s1.Primary)
	figures(t, "write_gap", gap, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

// (7) the whole compose project stopped and started again: same data, one primary.
func TestProjectRestart(t *testing.T) {
	p, s := startCluster(t, nil, 3)
	if err := p.SQL(s.Primary, "CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(32))", "INSERT INTO kv VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 50, ackTimeout)
	before, err := p.IDs(s.Primary, probeTable)
	if err != nil {
		t.Fatal(err)
	}
	kvBefore := checksum(t, p, s.Primary, "kv")

	t0 := time.Now()
	p.MustCompose(5*time.Minute, "stop")
	stopTook := time.Since(t0)
	if n := len(p.Nodes()); n != 0 {
		t.Fatalf("%d mysql containers still running after docker-compose stop", n)
	}
	for _, n := range p.containers(true) {
		if n.ExitCode != 0 {
			t.Errorf("%s exited %d on docker-compose stop, want 0", n, n.ExitCode)
		}
	}
	p.MustCompose(5*time.Minute, "start")
	s2 := p.WaitSettled(t, 3, settleTimeout)
	c.WaitAcks(t, 20, ackTimeout)
	restart := time.Since(t0)
	gap := c.Gap(t0, time.Now())

	after, err := p.IDs(s2.Primary, probeTable)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for id := range before {
		if !after[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of the %d probe rows present before the restart are gone", missing, len(before))
	}
	if kv := checksum(t, p, s2.Primary, "kv"); kv != kvBefore {
		t.Errorf("kv checksum %s after the restart, %s before", kv, kvBefore)
	}
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	figures(t, "write_gap", gap, "stop_took", stopTook, "stop_start_settle_took", restart, "rows_before", len(before), "rows_missing", missing,
		"primary_before", s.Primary.Name, "primary_after", s2.Primary.Name, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

func checksum(t *testing.T, p *Project, n Node, table string) string {
	t.Helper()
	var name, sum string
	if err := p.DB(n).QueryRow("CHECKSUM TABLE "+table).Scan(&name, &sum); err != nil {
		t.Fatalf("CHECKSUM TABLE %s on %s: %v", table, n, err)
	}
	return sum
}

// nodeNamed returns the running container whose hostname is name.
func nodeNamed(t *testing.T, p *Project, name string) Node {
	t.Helper()
	nodes := p.Nodes()
	i := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == name })
	if i < 0 {
		t.Fatalf("no running container named %s (have %v)", name, names(nodes))
	}
	return nodes[i]
}

// (8) multi-host readiness: the same compose file deployed with `docker stack deploy` on a
// one-node swarm elects a primary, serves writes and scales to 3. Skipped, with the reason,
// when this docker cannot run a swarm. A swarm this test starts is left again at the end; an
// existing one is used and left alone.
func TestSwarmStackDeploy(t *testing.T) {
	preflight(t)
	state, err := docker(30*time.Second, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	switch strings.TrimSpace(state) {
	case "active true":
		t.Log("using the active swarm (this node is a manager); it stays as it is")
	case "inactive false":
		// swarm init creates the docker_gwbridge network, and leaving keeps it: remove it
		// again unless it was there before.
		_, gwErr := docker(30*time.Second, "network", "inspect", "docker_gwbridge")
		hadGateway := gwErr == nil
		if _, err := docker(2*time.Minute, "swarm", "init", "--advertise-addr", "127.0.0.1"); err != nil {
			t.Skipf("docker swarm init --advertise-addr 127.0.0.1 is not possible here, so no stack deploy: %v", err)
		}
		t.Log("started a one-node swarm on 127.0.0.1 (docker swarm init); it is left at the end")
		t.Cleanup(func() {
			if _, err := docker(2*time.Minute, "swarm", "leave", "--force"); err != nil {
				t.Errorf("docker swarm leave --force: %v", err)
				return
			}
			if !hadGateway {
				if _, err := docker(time.Minute, "network", "rm", "docker_gwbridge"); err != nil {
					t.Logf("note: %v", err)
				}
			}
		})
	default:
		t.Skipf("docker's swarm state is %q (not a manager of an active swarm, nor inactive): no stack deploy", strings.TrimSpace(state))
	}

	// Service VIPs need IPVS in the kernel, which some kernels lack (then `consul` resolves
	// to a VIP that does not route); tasks.consul is the task's own address and works on
	// every kernel. The compose file reads CONSUL for exactly this.
	p := NewStack(t, map[string]string{"CONSUL": "tasks.consul:8500"})
	start := time.Now()
	out, err := run(context.Background(), 3*time.Minute, p.environ(), p.Root, "docker", "stack", "deploy", "--compose-file", "docker-compose.yml", p.Name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Logf("docker stack deploy:\n%s", strings.TrimSpace(out))
	s1 := p.WaitSettled(t, 1, settleTimeout)
	deployTook := time.Since(start)
	// Writes go through docker exec: the host cannot reach an overlay network's addresses.
	app := func(n Node, q string) (string, error) {
		out, err := p.Exec(15*time.Second, n.ID, []string{"MYSQL_PWD=" + p.AppPassword}, "mariadb", "-u"+p.AppUser, "-N", "-B", p.AppDB, "-e", q)
		return strings.TrimSpace(out), err
	}
	if _, err := app(s1.Primary, "CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(32)); INSERT INTO kv VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatalf("write on the primary %s: %v", s1.Primary, err)
	}

	t1 := time.Now()
	p.Docker(3*time.Minute, "service", "scale", "--detach", p.Name+"_mysql=3")
	s := p.WaitSettled(t, 3, settleTimeout)
	scaleTook := time.Since(t1)
	if s.Primary.ID != s1.Primary.ID {
		t.Errorf("scaling to 3 moved the primary from %s to %s", s1.Primary, s.Primary)
	}
	written := 2
	for i := 3; i <= 20; i++ {
		if _, err := app(s.Primary, fmt.Sprintf("INSERT INTO kv VALUES (%d, 'v%d')", i, i)); err != nil {
			t.Fatalf("write %d on the primary %s: %v", i, s.Primary, err)
		}
		written++
	}
	for _, r := range s.Replicas {
		Eventually(t, 30*time.Second, 500*time.Millisecond, "every row on replica "+r.String(), func() (bool, string) {
			out, err := app(r, "SELECT COUNT(*) FROM kv")
			return err == nil && out == fmt.Sprint(written), fmt.Sprint(out, err)
		})
		if _, err := app(r, "INSERT INTO kv VALUES (99, 'replica')"); !isReadOnlyErr(err) {
			t.Errorf("write on replica %s: err = %v, want a read-only error", r, err)
		}
	}
	out, err = app(s.Primary, "SELECT COUNT(*) FROM kv")
	have := 0
	if _, serr := fmt.Sscan(out, &have); err != nil || serr != nil || have != written {
		t.Errorf("rows on the primary: %q (%v), want %d", out, err, written)
	}
	lost := written - have
	figures(t, "deploy_and_settle_took", deployTook, "scale_to_3_took", scaleTook, "writes_checked", written, "writes_lost", lost)
}

// tlsMode is the project's mysql.tls.mode: MYSQL_TLS from the test's environment, else the
// default of docker-compose.yml.
func tlsMode() string { return envOr("MYSQL_TLS", "auto") }

// assertReplicasUseTLS checks, when the project runs with TLS, that every replica replicates
// over TLS and verifies the primary's certificate (SHOW SLAVE STATUS).
func assertReplicasUseTLS(t *testing.T, p *Project, s Settled) {
	t.Helper()
	if tlsMode() == "off" {
		t.Log("MYSQL_TLS=off: replication in plain TCP, not checked")
		return
	}
	for _, r := range s.Replicas {
		out, err := p.Exec(10*time.Second, r.ID, []string{"MYSQL_PWD=" + p.RootPassword}, "mariadb", "-uroot", "-e", "SHOW SLAVE STATUS\\G")
		if err != nil {
			t.Fatalf("SHOW SLAVE STATUS on %s: %v", r, err)
		}
		field := func(name string) string {
			for _, line := range strings.Split(out, "\n") {
				if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == name {
					return strings.TrimSpace(v)
				}
			}
			return ""
		}
		if field("Master_SSL_Allowed") != "Yes" || field("Master_SSL_Verify_Server_Cert") != "Yes" || field("Slave_IO_Running") != "Yes" {
			t.Errorf("replica %s does not replicate over verified TLS:\n%s", r, out)
		} else {
			t.Logf("replica %s replicates over TLS, verifying %s's certificate against %s", r, field("Master_Host"), field("Master_SSL_CA_File"))
		}
	}
}
