package harness

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// Prober writes to every node in rounds and records each acknowledged write. A round in which
// two nodes acknowledge is a split-brain interval; the time between the last acknowledged round
// before a fault and the first after it is the write-unavailability window.
type Prober struct {
	t     testing.TB
	nodes []*PilotNode
	dbs   []*sql.DB
	every time.Duration

	mu     sync.Mutex
	acks   []Ack
	splits []string
	rounds int
	stop   chan struct{}
	done   chan struct{}
}

// Ack is one acknowledged write.
type Ack struct {
	ID   int64
	Node string
	At   time.Time
}

// StartProber creates the probe table through primary and starts writing every `every`.
func StartProber(t testing.TB, c *Cluster, primary *PilotNode, every time.Duration) *Prober {
	t.Helper()
	db := primary.DB()
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS probe (id BIGINT PRIMARY KEY, node VARCHAR(16), at DATETIME(6))`); err != nil {
		t.Fatalf("create probe table: %v", err)
	}
	p := &Prober{t: t, nodes: c.Nodes, every: every, stop: make(chan struct{}), done: make(chan struct{})}
	for _, n := range c.Nodes {
		p.dbs = append(p.dbs, n.DB())
	}
	go p.run()
	t.Cleanup(p.Stop)
	return p
}

func (p *Prober) run() {
	defer close(p.done)
	for round := int64(1); ; round++ {
		select {
		case <-p.stop:
			return
		default:
		}
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok []Ack
		for i, db := range p.dbs {
			wg.Add(1)
			go func(i int, db *sql.DB) {
				defer wg.Done()
				id := round*100 + int64(i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if _, err := db.ExecContext(ctx, `INSERT INTO probe VALUES (?, ?, NOW(6))`, id, p.nodes[i].Name); err == nil {
					mu.Lock()
					ok = append(ok, Ack{ID: id, Node: p.nodes[i].Name, At: time.Now()})
					mu.Unlock()
				}
			}(i, db)
		}
		wg.Wait()
		p.mu.Lock()
		p.rounds++
		p.acks = append(p.acks, ok...)
		if len(ok) > 1 {
			p.splits = append(p.splits, fmt.Sprintf("round %d at %s: %v", round, start.Format("15:04:05.000"), ok))
		}
		p.mu.Unlock()
		if d := p.every - time.Since(start); d > 0 {
			select {
			case <-p.stop:
				return
			case <-time.After(d):
			}
		}
	}
}

// Stop ends the writing (idempotent).
func (p *Prober) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	for _, db := range p.dbs {
		db.Close()
	}
}

// Acks returns the acknowledged writes so far.
func (p *Prober) Acks() []Ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Ack(nil), p.acks...)
}

// Splits returns the rounds in which more than one node acknowledged a write.
func (p *Prober) Splits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.splits...)
}

// WaitAckAfter waits until a write is acknowledged after t0 and returns it.
func (p *Prober) WaitAckAfter(t testing.TB, t0 time.Time, d time.Duration) Ack {
	t.Helper()
	var a Ack
	Eventually(t, d, "a write acknowledged after the fault", func() bool {
		for _, x := range p.Acks() {
			if x.At.After(t0) {
				a = x
				return true
			}
		}
		return false
	})
	return a
}

// WaitNewPrimary waits for a write acknowledged after t0 by a node other than old, and
// returns that node's name and the write-unavailability window: from old's last
// acknowledged write to the new node's first.
func (p *Prober) WaitNewPrimary(t testing.TB, t0 time.Time, old string, d time.Duration) (string, time.Duration) {
	t.Helper()
	var first Ack
	Eventually(t, d, "a write acknowledged by a node other than "+old, func() bool {
		for _, a := range p.Acks() {
			if a.At.After(t0) && a.Node != old {
				first = a
				return true
			}
		}
		return false
	})
	var last time.Time
	for _, a := range p.Acks() {
		if a.Node == old && a.At.Before(first.At) && a.At.After(last) {
			last = a.At
		}
	}
	if last.IsZero() {
		return first.Node, -1
	}
	return first.Node, first.At.Sub(last)
}

// WaitAcks waits until n more writes have been acknowledged.
func (p *Prober) WaitAcks(t testing.TB, n int, d time.Duration) {
	t.Helper()
	start := len(p.Acks())
	Eventually(t, d, fmt.Sprintf("%d more acknowledged writes", n), func() bool { return len(p.Acks()) >= start+n })
}

// Verify checks that every acknowledged write is on node and returns how many it checked
// and how many were lost.
func (p *Prober) Verify(t testing.TB, node *PilotNode) (checked, lost int) {
	t.Helper()
	db := node.DB()
	defer db.Close()
	ids := map[int64]bool{}
	var rows *sql.Rows
	Eventually(t, 30*time.Second, "reading the probe table on "+node.Name, func() bool {
		var err error
		rows, err = db.Query(`SELECT id FROM probe`)
		return err == nil
	})
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err == nil {
			ids[id] = true
		}
	}
	rows.Close()
	var missing []int64
	for _, a := range p.Acks() {
		checked++
		if !ids[a.ID] {
			missing = append(missing, a.ID)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	if len(missing) > 0 {
		t.Errorf("%d acknowledged writes missing on %s: %v", len(missing), node.Name, missing)
	}
	return checked, len(missing)
}
