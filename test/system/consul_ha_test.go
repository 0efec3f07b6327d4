//go:build system

package system

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Consul as users run it in production (docker-compose.consul-ha.yml): three servers, and a
// Consul agent in every mysql container. The loss of Consul servers must not move the
// primary or lose a write.

var consulHA = map[string]string{"COMPOSE_FILE": "docker-compose.yml:docker-compose.consul-ha.yml"}

// consulServers are the project's three Consul server containers.
func (p *Project) consulServers(t testing.TB) []endpoint {
	t.Helper()
	var eps []endpoint
	for _, svc := range []string{"consul", "consul-2", "consul-3"} {
		out := p.Docker(30*time.Second, "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+p.Name,
			"--filter", "label=com.docker.compose.service="+svc)
		ids := strings.Fields(out)
		if len(ids) != 1 {
			t.Fatalf("want one %s container, found %q", svc, out)
		}
		nodes, err := inspect(ids)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("inspect %s: %v", svc, err)
		}
		eps = append(eps, endpoint{ID: ids[0], Name: svc, IP: nodes[0].IP})
	}
	return eps
}

// consulLeader asks each reachable server for the Raft leader and returns the server that
// is it ("" while there is none).
func consulLeader(servers []endpoint, except string) (endpoint, bool) {
	hc := &http.Client{Timeout: time.Second}
	for _, s := range servers {
		if s.ID == except || s.IP == "" {
			continue
		}
		resp, err := hc.Get("http://" + s.IP + ":8500/v1/status/leader")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		addr := strings.Trim(strings.TrimSpace(string(b)), `"`)
		for _, l := range servers {
			// The survivors name the dead leader until they notice: not an answer.
			if l.IP != "" && addr == l.IP+":8300" && l.ID != except {
				return l, true
			}
		}
	}
	return endpoint{}, false
}

// (C1) Consul's servers fail under the primary's agent, under write load. First the Raft
// leader is killed (Raft elects another). Then the primary's own agent is cut off from every
// server's RPC port for longer than the session's TTL, as when the one server it forwards to
// dies: its RPCs to the dead address hang until Consul's 10 s dial timeout, past the
// primary's fence deadline. The renewals must go another way (consul.fallback: the servers'
// HTTP API). Each time the session lives on and the primary keeps writing: no failover, a
// short gap, nothing lost.
func TestConsulLeaderKilled(t *testing.T) {
	p, s := startCluster(t, consulHA, 3)
	waitSyncSet(t, p, s)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)
	servers := p.consulServers(t)
	var leader endpoint
	Eventually(t, 30*time.Second, 200*time.Millisecond, "a Consul leader", func() (ok bool, _ string) {
		leader, ok = consulLeader(servers, "")
		return ok, ""
	})

	t0 := time.Now()
	p.Docker(time.Minute, "kill", "--signal", "KILL", leader.ID)
	var next endpoint
	elected := Eventually(t, 30*time.Second, 100*time.Millisecond, "another Consul leader", func() (ok bool, _ string) {
		next, ok = consulLeader(servers, leader.ID)
		return ok, ""
	})
	c.WaitAcks(t, 50, ackTimeout) // ~5 s of writes after the kill
	gap1 := c.Gap(t0, time.Now())
	c.Timeline(t, t0.Add(-time.Second), time.Now())
	t.Logf("Consul leader %s killed: %s elected after %s; write gap %s", leader.Name, next.Name, elected.Round(10*time.Millisecond), gap1.Round(time.Millisecond))
	noFailover(t, c, s, t0, gap1, "the Consul leader was killed")
	p.Docker(time.Minute, "start", leader.ID)
	if s2 := p.WaitSettled(t, 3, settleTimeout); s2.Primary.ID != s.Primary.ID {
		t.Errorf("after the Consul leader came back the primary is %s, want %s", s2.Primary, s.Primary)
	}

	t1 := time.Now()
	cut := p.DropOut(t, s.Primary, "tcp", "8300")
	// The cut's length is the fault's parameter, not a condition to wait for: longer than
	// the session TTL (10 s), which renewals through the agent alone could not outlast.
	time.Sleep(15 * time.Second)
	cut.Heal(t)
	c.WaitAcks(t, 20, ackTimeout)
	gap2 := c.Gap(t1, time.Now())
	c.Timeline(t, t1.Add(-time.Second), time.Now())
	t.Logf("the primary's agent cut off from every Consul server's RPC port for 15s: write gap %s", gap2.Round(time.Millisecond))
	noFailover(t, c, s, t1, gap2, "the primary's agent lost its servers")

	s3 := p.WaitSettled(t, 3, settleTimeout)
	if s3.Primary.ID != s.Primary.ID {
		t.Errorf("after the primary's agent got its servers back the primary is %s, want %s", s3.Primary, s.Primary)
	}
	c.WaitAcks(t, 20, ackTimeout)
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s3.Primary)
	figures(t, "write_gap", gap1, "consul_leader_elected_after", elected, "write_gap_agent_cut_off", gap2,
		"writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}

// noFailover fails the test if a write was acknowledged by a replica since t0, or if the
// write gap exceeds 3 s.
func noFailover(t *testing.T, c *Checker, s Settled, t0 time.Time, gap time.Duration, what string) {
	t.Helper()
	moved := 0
	for _, r := range s.Replicas {
		moved += c.AckedBy(r.Name, t0)
	}
	if moved > 0 {
		t.Errorf("after %s, writes moved to a replica (%d acknowledged there); want no failover", what, moved)
	}
	if gap > 3*time.Second {
		t.Errorf("write gap %s after %s, want <= 3s", gap, what)
	}
}

// (C2) All three Consul servers down for 30 s: the primary cannot renew and fences (writes
// stop: nothing may be acknowledged without the lock), nobody fails over into the dark, and
// once the servers are back the cluster recovers on its own: at most one change of primary,
// nothing lost.
func TestConsulAllServersDown(t *testing.T) {
	p, s := startCluster(t, consulHA, 3)
	waitSyncSet(t, p, s)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)
	servers := p.consulServers(t)
	ids := make([]string, len(servers))
	for i, sv := range servers {
		ids[i] = sv.ID
	}

	t0 := time.Now()
	p.Docker(time.Minute, append([]string{"stop", "--time", "5"}, ids...)...)
	down := time.Now()
	// The outage's length is the fault's parameter, not a condition to wait for.
	time.Sleep(30 * time.Second)
	writable := 0
	for _, n := range append([]Node{s.Primary}, s.Replicas...) {
		if ro, err := p.ReadOnly(n.ID); err == nil && !ro {
			writable++
			t.Logf("%s is writable with every Consul server down", n)
		}
	}
	p.Docker(time.Minute, append([]string{"start"}, ids...)...)
	up := time.Now()
	s2 := p.WaitSettled(t, 3, settleTimeout)
	c.WaitAcks(t, 20, ackTimeout)
	recovered := time.Duration(0)
	changes, last := 0, s.Primary.Name
	for _, a := range c.Acks() {
		if !a.At.After(t0) {
			continue
		}
		if recovered == 0 && a.At.After(up) {
			recovered = a.At.Sub(up)
		}
		if a.Node != last {
			changes++
			last = a.Node
		}
	}
	c.Timeline(t, t0.Add(-time.Second), time.Now())
	t.Logf("Consul down %s; writes back %s after the servers started; primary %s -> %s (%d change(s))",
		up.Sub(down).Round(100*time.Millisecond), recovered.Round(10*time.Millisecond), s.Primary, s2.Primary, changes)
	if writable > 0 {
		t.Errorf("%d node(s) writable with every Consul server down for 30s; want none", writable)
	}
	if changes > 1 {
		t.Errorf("the primary changed %d times after Consul came back; want at most once", changes)
	}
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	figures(t, "consul_down", up.Sub(down), "writes_back_after_start", recovered, "primary_changes", changes,
		"primary_after", fmt.Sprint(s2.Primary.Name), "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}
