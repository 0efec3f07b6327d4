//go:build system

package system

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Network partitions, as the nemesis of a Jepsen test makes them: iptables rules inside the
// containers' own network namespaces (entered from the host with nsenter), so each link can
// be cut on its own while the test's clients on the host still reach every node.

// endpoint is one side's member of a partition: a container and its address.
type endpoint struct {
	ID, Name, IP string
}

func (n Node) endpoint() endpoint { return endpoint{ID: n.ID, Name: n.Name, IP: n.IP} }

// Partition is a set of iptables rules in effect until Heal.
type Partition struct {
	p     *Project
	rules [][]string // nsenter ... iptables -I ... arguments, to delete with -D
}

// consulEndpoint is the project's Consul server container.
func (p *Project) consulEndpoint(t testing.TB) endpoint {
	t.Helper()
	out := p.Docker(30*time.Second, "ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project="+p.Name,
		"--filter", "label=com.docker.compose.service=consul")
	ids := strings.Fields(out)
	if len(ids) != 1 {
		t.Fatalf("want one consul container, found %q", out)
	}
	nodes, err := inspect(ids)
	if err != nil || len(nodes) != 1 || nodes[0].IP == "" {
		t.Fatalf("inspect consul: %v %+v", err, nodes)
	}
	return endpoint{ID: ids[0], Name: "consul", IP: nodes[0].IP}
}

// pid is a running container's main process, whose network namespace is the container's.
func (p *Project) pid(t testing.TB, id string) int {
	t.Helper()
	out := strings.TrimSpace(p.Docker(30*time.Second, "inspect", "-f", "{{.State.Pid}}", id))
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 0 {
		t.Fatalf("pid of %s: %q", id, out)
	}
	return pid
}

// Cut drops every packet between members of different sides, both ways (or, with oneWay, only
// the packets the first side sends to the others).
func (p *Project) Cut(t testing.TB, oneWay bool, sides ...[]endpoint) *Partition {
	t.Helper()
	pt := &Partition{p: p}
	add := func(pid int, args ...string) { pt.add(t, pid, args...) }
	var desc []string
	for i, side := range sides {
		var names []string
		for _, x := range side {
			names = append(names, x.Name)
			pid := p.pid(t, x.ID)
			for j, other := range sides {
				if j == i || (oneWay && i != 0) {
					continue
				}
				for _, y := range other {
					add(pid, "OUTPUT", "-d", y.IP, "-j", "DROP")
					if !oneWay {
						add(pid, "INPUT", "-s", y.IP, "-j", "DROP")
					}
				}
			}
		}
		desc = append(desc, "{"+strings.Join(names, ", ")+"}")
	}
	sep := " | "
	if oneWay {
		sep = " -/-> "
	}
	t.Logf("partition: %s", strings.Join(desc, sep))
	t.Cleanup(func() { pt.Heal(t) })
	return pt
}

// DropOut drops every packet the node sends to the port (proto "tcp" or "udp") of any host.
func (p *Project) DropOut(t testing.TB, n Node, proto, port string) *Partition {
	t.Helper()
	pt := &Partition{p: p}
	pt.add(t, p.pid(t, n.ID), "OUTPUT", "-p", proto, "--dport", port, "-j", "DROP")
	t.Logf("partition: %s sends nothing to %s port %s", n.Name, proto, port)
	t.Cleanup(func() { pt.Heal(t) })
	return pt
}

// add inserts one iptables rule in the network namespace of process pid, and remembers how
// to delete it; on failure it heals what it added and fails the test.
func (pt *Partition) add(t testing.TB, pid int, rule ...string) {
	t.Helper()
	full := append([]string{"-t", strconv.Itoa(pid), "-n", "iptables", "-I"}, rule...)
	if out, err := run(context.Background(), 30*time.Second, nil, "", "nsenter", full...); err != nil {
		pt.Heal(t)
		t.Fatalf("nsenter %v: %v: %s", full, err, out)
	}
	pt.rules = append(pt.rules, append([]string{"-t", strconv.Itoa(pid), "-n", "iptables", "-D"}, rule...))
}

// Heal removes the partition's rules (once; a container that is gone has none left).
func (pt *Partition) Heal(t testing.TB) {
	for _, r := range pt.rules {
		if out, err := run(context.Background(), 30*time.Second, nil, "", "nsenter", r...); err != nil {
			t.Logf("heal: nsenter %v: %v: %s", r, err, out)
		}
	}
	if len(pt.rules) > 0 {
		t.Logf("partition healed")
	}
	pt.rules = nil
}

// kvExists reports whether the key (under the service's prefix) is in the project's Consul.
func (p *Project) kvExists(key string) bool {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/kv/service/mysql/%s?raw", p.ConsulPort, key))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// syncSet reads the sync-set record from the project's Consul.
func (p *Project) syncSet() (leader string, members []string, ok bool) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/kv/service/mysql/sync?raw", p.ConsulPort))
	if err != nil {
		return "", nil, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var s struct {
		Leader  string   `json:"leader"`
		Members []string `json:"members"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &s) != nil {
		return "", nil, false
	}
	return s.Leader, s.Members, true
}

// waitSyncSet waits until the primary's sync set holds every replica and it no longer says
// it acknowledged writes alone.
func waitSyncSet(t *testing.T, p *Project, s Settled) {
	t.Helper()
	Eventually(t, 60*time.Second, 250*time.Millisecond, "every replica in "+s.Primary.Name+"'s sync set", func() (bool, string) {
		leader, members, ok := p.syncSet()
		if !ok || leader != s.Primary.Name {
			return false, fmt.Sprintf("leader %q members %v", leader, members)
		}
		for _, r := range s.Replicas {
			if !slices.Contains(members, r.Name) {
				return false, fmt.Sprintf("members %v", members)
			}
		}
		st, ok := p.Status(s.Primary)
		return ok && !st.Alone, st.String()
	})
}

// reseeds counts the nodes that re-seeded from a snapshot since t0.
func reseeds(p *Project, nodes []Node, t0 time.Time) int {
	n := 0
	for _, x := range nodes {
		if strings.Contains(p.Logs(x.ID, t0), "re-seeding: this node restarts") {
			n++
		}
	}
	return n
}

// neverWritable watches node for d and fails the test if it ever accepts writes as primary.
func neverWritable(t *testing.T, p *Project, n Node, d time.Duration, why string) (last Status) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if st, ok := p.Status(n); ok {
			last = st
			if st.Writable || st.Role == "primary" {
				t.Errorf("%s took over %s: %s", n, why, st)
				return st
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return last
}

// (P1) Partition {P, A} | {B, Consul}, held long enough for B to have promoted under the old
// rule, then healed. A acknowledged P's last writes; B, the only node Consul still sees, must
// not take over without them: it waits for A (a sync-set member that is not live). On heal the
// cluster settles with every acknowledged write, and nobody is re-seeded.
func TestPartitionPrimaryAndReplicaFromConsul(t *testing.T) {
	p, s := startCluster(t, nil, 3)
	waitSyncSet(t, p, s)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)
	P, A, B := s.Primary, s.Replicas[0], s.Replicas[1]
	all := []Node{P, A, B}

	t0 := time.Now()
	cut := p.Cut(t, false, []endpoint{P.endpoint(), A.endpoint()}, []endpoint{B.endpoint(), p.consulEndpoint(t)})
	last := neverWritable(t, p, B, 25*time.Second, "while the sync-set member "+A.Name+" was cut off")
	t.Logf("%s during the partition: %s", B, last)
	if !strings.Contains(last.Action, "sync-set member") {
		t.Errorf("%s does not say it waits for a sync-set member: %s", B, last)
	}
	cut.Heal(t)
	healed := time.Now()

	s2 := p.WaitSettled(t, 3, settleTimeout)
	c.WaitAcks(t, 20, ackTimeout)
	gap := c.Gap(t0, time.Now())
	c.Timeline(t, t0.Add(-time.Second), time.Now())
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	rs := reseeds(p, all, t0)
	if rs > 0 {
		t.Errorf("%d node(s) re-seeded after the partition healed; want none", rs)
	}
	figures(t, "write_gap", gap, "settled_after_heal", time.Since(healed), "primary_after", s2.Primary.Name,
		"writes_checked", checked, "writes_lost", lost, "split_rounds", splits, "reseeds", rs)
}

// (P2) The primary cut from Consul only; it still reaches its replicas. It fences before its
// session can end; a replica of the sync set takes over with every acknowledged write; the old
// primary rejoins after the heal without a re-seed.
func TestPartitionPrimaryFromConsul(t *testing.T) { primaryCutFromConsul(t, false) }

// (P3) One way: the primary's packets to Consul are dropped, Consul's to it still arrive. It
// cannot renew: the same outcome as P2.
func TestPartitionOneWayPrimaryToConsul(t *testing.T) { primaryCutFromConsul(t, true) }

// primaryCutFromConsul cuts the primary from Consul (both ways, or only its own packets),
// waits for a new primary, heals, and checks that nothing was lost and nobody re-seeded.
func primaryCutFromConsul(t *testing.T, oneWay bool) {
	p, s := startCluster(t, nil, 3)
	waitSyncSet(t, p, s)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)
	P := s.Primary
	all := append([]Node{P}, s.Replicas...)

	t0 := time.Now()
	cut := p.Cut(t, oneWay, []endpoint{P.endpoint()}, []endpoint{p.consulEndpoint(t)})
	newName := c.WaitAckBy(t, t0, P.Name, failoverTimeout)
	failover := time.Since(t0)
	c.WaitAcks(t, 20, ackTimeout)
	cut.Heal(t)

	s2 := p.WaitSettled(t, 3, settleTimeout)
	if s2.Primary.Name != newName {
		t.Errorf("after the heal the primary is %s, want %s", s2.Primary, newName)
	}
	c.WaitAcks(t, 20, ackTimeout)
	gap := c.Gap(t0, t0.Add(failover+5*time.Second))
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	rs := reseeds(p, all, t0)
	if rs > 0 {
		t.Errorf("%d node(s) re-seeded; want none", rs)
	}
	figures(t, "write_gap", gap, "new_primary", newName, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits, "reseeds", rs)
}

// (P4) A replica cut from the primary but not from Consul: no failover, writes go on (the
// other member acknowledges), and the replica catches up after the heal.
func TestPartitionReplicaFromPrimary(t *testing.T) {
	p, s := startCluster(t, nil, 3)
	waitSyncSet(t, p, s)
	c := StartChecker(t, p, s.Primary, writeEvery)
	c.WaitAcks(t, 30, ackTimeout)
	P, B := s.Primary, s.Replicas[1]

	t0 := time.Now()
	cut := p.Cut(t, false, []endpoint{B.endpoint()}, []endpoint{P.endpoint()})
	c.WaitAcks(t, 50, ackTimeout) // ~5 s of writes while B is cut off
	gap := c.Gap(t0, time.Now())
	if by := c.AckedBy(P.Name, t0); by == 0 {
		t.Errorf("%s acknowledged nothing while %s was cut off", P, B)
	}
	cut.Heal(t)
	s2 := p.WaitSettled(t, 3, settleTimeout)
	if s2.Primary.ID != P.ID {
		t.Errorf("a replica cut from the primary moved the primary to %s", s2.Primary)
	}
	c.WaitAcks(t, 20, ackTimeout)
	splits := c.CheckSplits(t)
	checked, lost := c.Verify(t, s2.Primary)
	figures(t, "write_gap", gap, "writes_checked", checked, "writes_lost", lost, "split_rounds", splits)
}
