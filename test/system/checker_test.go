//go:build system

package system

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Checker writes continuously, in rounds: every `every` it sends one INSERT (a fresh id) to
// each running mysql container of the project at once, as the application user, and records
// every acknowledged write. Replicas refuse (read-only). A round in which two nodes
// acknowledge is a split brain. A node whose previous write has not returned yet (paused,
// vanished) is skipped, so it never holds back the writes to the others; its late answer
// still counts for the round its write was sent in. The set of containers is refreshed every
// second, so scaling and restarts are followed.
type Checker struct {
	p       *Project
	every   time.Duration
	timeout time.Duration
	nextID  atomic.Int64

	nodes atomic.Pointer[[]Node]

	mu       sync.Mutex
	acks     []Ack
	splits   []string
	rounds   int
	attempts int
	byRound  map[int][]Ack
	last     map[string]string // node -> outcome of its last write
	events   []event           // changes of a node's outcome
	stop     chan struct{}
	done     chan struct{}
	stopped  bool
}

// event is a change in what writes to a node return ("ok", "read-only", "timeout", ...).
type event struct {
	At      time.Time
	Node    string
	Outcome string
}

// Ack is one acknowledged write.
type Ack struct {
	ID   int64
	Node string
	Sent time.Time // when the INSERT was sent
	At   time.Time // when it was acknowledged
}

const probeTable = "probe"

// StartChecker creates the probe table through primary and starts writing every `every`.
func StartChecker(t testing.TB, p *Project, primary Node, every time.Duration) *Checker {
	t.Helper()
	if err := p.SQL(primary, "CREATE TABLE IF NOT EXISTS "+probeTable+" (id BIGINT PRIMARY KEY, node VARCHAR(64) NOT NULL, at DATETIME(6) NOT NULL)"); err != nil {
		t.Fatalf("create probe table: %v", err)
	}
	c := &Checker{p: p, every: every, timeout: 1500 * time.Millisecond, stop: make(chan struct{}), done: make(chan struct{}), last: map[string]string{}, byRound: map[int][]Ack{}}
	nodes := p.Nodes()
	c.nodes.Store(&nodes)
	refreshed := make(chan struct{})
	go c.refresh(refreshed)
	go c.run()
	t.Cleanup(c.Stop)
	go func() { <-c.done; close(refreshed) }()
	return c
}

func (c *Checker) refresh(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		out, err := docker(10*time.Second, append([]string{"ps", "-q", "--no-trunc"}, c.p.mysqlFilter()...)...)
		if err != nil {
			continue
		}
		nodes, err := inspect(strings.Fields(out))
		if err != nil {
			continue
		}
		c.p.trackVolumes(nodes)
		c.nodes.Store(&nodes)
	}
}

// run starts a round every c.every. A round sends one write to each node whose previous write
// has returned; the next round does not wait for slow writes (a paused or vanished node must
// not hold back the writes to the primary), and a late acknowledgement still counts for the
// round its write was sent in.
func (c *Checker) run() {
	defer close(c.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	inflight := map[string]bool{} // container ID + address -> a write is outstanding
	var inflightMu sync.Mutex
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	for round := 1; ; round++ {
		start := time.Now()
		n := 0
		for _, node := range *c.nodes.Load() {
			if node.IP == "" || !node.Running {
				continue
			}
			key := node.ID + "@" + node.IP
			inflightMu.Lock()
			busy := inflight[key]
			inflight[key] = true
			inflightMu.Unlock()
			if busy {
				continue
			}
			n++
			id := c.nextID.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
				defer cancel()
				_, err := c.p.DB(node).ExecContext(ctx, "INSERT INTO "+probeTable+" VALUES (?, ?, NOW(6))", id, node.Name)
				c.record(ctx, round, start, node.Name, id, err)
				inflightMu.Lock()
				delete(inflight, key)
				inflightMu.Unlock()
			}()
		}
		c.mu.Lock()
		c.rounds++
		c.attempts += n
		c.mu.Unlock()
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// record notes one write's result: an acknowledgement (a split brain when another node
// acknowledged a write of the same round) and, when it changed, the node's outcome.
func (c *Checker) record(ctx context.Context, round int, sent time.Time, node string, id int64, err error) {
	now := time.Now()
	o := outcome(ctx, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last[node] != o {
		c.last[node] = o
		c.events = append(c.events, event{At: now, Node: node, Outcome: o})
	}
	if err != nil {
		return
	}
	a := Ack{ID: id, Node: node, Sent: sent, At: now}
	c.acks = append(c.acks, a)
	prev := c.byRound[round]
	for _, b := range prev {
		if b.Node != node {
			c.splits = append(c.splits, fmt.Sprintf("round sent at %s: %v and %v", sent.Format("15:04:05.000"), b, a))
			break
		}
	}
	c.byRound[round] = append(prev, a)
}

func (a Ack) String() string {
	return fmt.Sprintf("id %d acknowledged by %s at %s", a.ID, a.Node, a.At.Format("15:04:05.000"))
}

// NewID reserves a write id for a write made outside the rounds.
func (c *Checker) NewID() int64 { return c.nextID.Add(1) }

// AddAck records a write acknowledged outside the rounds (Verify checks it too).
func (c *Checker) AddAck(a Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acks = append(c.acks, a)
}

// Stop ends the writing and waits for the last round (idempotent).
func (c *Checker) Stop() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
	c.mu.Unlock()
	<-c.done
}

// Acks returns the acknowledged writes so far.
func (c *Checker) Acks() []Ack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Ack(nil), c.acks...)
}

// Splits returns the rounds in which more than one node acknowledged a write.
func (c *Checker) Splits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.splits...)
}

// Counts returns rounds and attempted writes.
func (c *Checker) Counts() (rounds, attempts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rounds, c.attempts
}

// WaitAcks waits until n more writes have been acknowledged.
func (c *Checker) WaitAcks(t testing.TB, n int, d time.Duration) {
	t.Helper()
	start := len(c.Acks())
	Eventually(t, d, 50*time.Millisecond, fmt.Sprintf("%d more acknowledged writes", n), func() (bool, string) {
		got := len(c.Acks()) - start
		return got >= n, fmt.Sprintf("%d acknowledged", got)
	})
}

// WaitAckBy waits until a write is acknowledged after t0 by a node other than old and
// returns that node's name.
func (c *Checker) WaitAckBy(t testing.TB, t0 time.Time, old string, d time.Duration) string {
	t.Helper()
	var who string
	Eventually(t, d, 50*time.Millisecond, "a write acknowledged by a node other than "+old, func() (bool, string) {
		for _, a := range c.Acks() {
			if a.At.After(t0) && a.Node != old {
				who = a.Node
				return true, ""
			}
		}
		return false, ""
	})
	return who
}

// Gap is the longest time without an acknowledged write, counted from the last
// acknowledgement before since (or since itself) to the last one; it includes the time
// after the last acknowledgement when until is later.
func (c *Checker) Gap(since, until time.Time) time.Duration {
	acks := c.Acks()
	sort.Slice(acks, func(i, j int) bool { return acks[i].At.Before(acks[j].At) })
	prev := since
	for _, a := range acks {
		if !a.At.After(since) {
			prev = a.At
		}
	}
	var gap time.Duration
	for _, a := range acks {
		if !a.At.After(since) || a.At.After(until) {
			continue
		}
		if d := a.At.Sub(prev); d > gap {
			gap = d
		}
		prev = a.At
	}
	if d := until.Sub(prev); d > gap {
		gap = d
	}
	return gap
}

// AckedBy counts writes node acknowledged after t0.
func (c *Checker) AckedBy(node string, t0 time.Time) int {
	n := 0
	for _, a := range c.Acks() {
		if a.Node == node && a.At.After(t0) {
			n++
		}
	}
	return n
}

// Verify stops the checker and checks that every acknowledged write is on node; it returns
// how many it checked and how many were lost.
func (c *Checker) Verify(t testing.TB, node Node) (checked, lost int) {
	t.Helper()
	c.Stop()
	var ids map[int64]bool
	Eventually(t, 30*time.Second, 500*time.Millisecond, "reading the probe table on "+node.String(), func() (bool, string) {
		var err error
		ids, err = c.p.IDs(node, probeTable)
		return err == nil, fmt.Sprint(err)
	})
	var missing []int64
	for _, a := range c.Acks() {
		checked++
		if !ids[a.ID] {
			missing = append(missing, a.ID)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	if len(missing) > 0 {
		t.Errorf("%d acknowledged writes missing on %s: %v", len(missing), node, missing)
	}
	return checked, len(missing)
}

// CheckSplits fails the test when two nodes acknowledged writes in one round.
func (c *Checker) CheckSplits(t testing.TB) int {
	t.Helper()
	s := c.Splits()
	if len(s) > 0 {
		t.Errorf("split brain: two nodes acknowledged writes in the same round %d times: %v", len(s), s)
	}
	return len(s)
}

// outcome classifies a write's result for the timeline.
func outcome(ctx context.Context, err error) string {
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return "ok"
	case ctx.Err() != nil:
		return "timeout"
	case errors.As(err, &me) && me.Number == 1290:
		return "read-only"
	case errors.As(err, &me):
		return fmt.Sprintf("error %d", me.Number)
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	case strings.Contains(err.Error(), "no route to host"):
		return "no route"
	}
	return "error"
}

// Timeline logs the changes in what each node's writes returned between from and to.
func (c *Checker) Timeline(t testing.TB, from, to time.Time) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, e := range c.events {
		if e.At.Before(from) || e.At.After(to) {
			continue
		}
		fmt.Fprintf(&b, "\n  %s  %-14s %s", e.At.Format("15:04:05.000"), e.Node, e.Outcome)
	}
	t.Logf("writes per node, changes from %s to %s:%s", from.Format("15:04:05.000"), to.Format("15:04:05.000"), b.String())
}
