package lab

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// Writer writes to every node of a cluster, each node on its own goroutine every `every`, and
// records each acknowledged write. Unlike harness.Prober (one round waits for all nodes), a
// node that hangs (SIGSTOPped mariadbd: the TCP connect succeeds, nothing answers) delays
// only its own writes, so the first write the new primary acknowledges is seen within
// `every` of it becoming writable, whatever the old one does.
type Writer struct {
	nodes []*harness.PilotNode
	dbs   []*sql.DB
	every time.Duration
	next  atomic.Int64

	mu   sync.Mutex
	acks []harness.Ack

	stop chan struct{}
	wg   sync.WaitGroup
}

// writerTable is the Writer's table; harness.Prober uses "probe".
const writerTable = "wprobe"

// StartWriter creates the table through primary and starts writing to every node.
func StartWriter(c *harness.Cluster, primary *harness.PilotNode, every time.Duration) (*Writer, error) {
	db := primary.DB()
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+writerTable+` (id BIGINT PRIMARY KEY, node VARCHAR(16), at DATETIME(6))`); err != nil {
		return nil, fmt.Errorf("create %s: %w", writerTable, err)
	}
	w := &Writer{nodes: c.Nodes, every: every, stop: make(chan struct{})}
	// Ids continue after whatever an earlier writer on this cluster left.
	var maxID sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(id) FROM `+writerTable).Scan(&maxID); err != nil {
		return nil, fmt.Errorf("read %s: %w", writerTable, err)
	}
	w.next.Store(maxID.Int64)
	for _, n := range c.Nodes {
		w.dbs = append(w.dbs, n.DB())
	}
	for i := range c.Nodes {
		w.wg.Add(1)
		go w.run(i)
	}
	return w, nil
}

func (w *Writer) run(i int) {
	defer w.wg.Done()
	t := time.NewTicker(w.every)
	defer t.Stop()
	name := w.nodes[i].Name
	for {
		id := w.next.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := w.dbs[i].ExecContext(ctx, `INSERT INTO `+writerTable+` VALUES (?, ?, NOW(6))`, id, name)
		cancel()
		if err == nil {
			at := time.Now()
			w.mu.Lock()
			w.acks = append(w.acks, harness.Ack{ID: id, Node: name, At: at})
			w.mu.Unlock()
		}
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// Stop ends the writing and closes the pools (idempotent).
func (w *Writer) Stop() {
	select {
	case <-w.stop:
		return
	default:
		close(w.stop)
	}
	w.wg.Wait()
	for _, db := range w.dbs {
		db.Close()
	}
}

// Acks returns the acknowledged writes so far, in the order they were acknowledged.
func (w *Writer) Acks() []harness.Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]harness.Ack(nil), w.acks...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// AcksSince counts the writes acknowledged after t0 by node ("" = any).
func (w *Writer) AcksSince(t0 time.Time, node string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.acks {
		if a.At.After(t0) && (node == "" || a.Node == node) {
			n++
		}
	}
	return n
}

// WaitAcks waits until n writes have been acknowledged after t0 by node ("" = any).
func (w *Writer) WaitAcks(t0 time.Time, node string, n int, d time.Duration) error {
	return Until(d, func() bool { return w.AcksSince(t0, node) >= n })
}

// Failover is what WaitNewPrimary measured.
type Failover struct {
	New       string        // the node that acknowledged first after the fault
	LastOld   time.Time     // the old primary's last acknowledged write before New's first
	FirstNew  time.Time     // New's first acknowledged write
	Gap       time.Duration // FirstNew - LastOld: the write-unavailability window
	FromFault time.Duration // FirstNew - the fault
}

// WaitNewPrimary waits up to d for a write acknowledged after t0 by a node other than old.
func (w *Writer) WaitNewPrimary(t0 time.Time, old string, d time.Duration) (Failover, error) {
	var f Failover
	err := Until(d, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range w.acks {
			if a.At.After(t0) && a.Node != old && (f.FirstNew.IsZero() || a.At.Before(f.FirstNew)) {
				f.New, f.FirstNew = a.Node, a.At
			}
		}
		return !f.FirstNew.IsZero()
	})
	if err != nil {
		return f, fmt.Errorf("no node other than %s acknowledged a write within %s of the fault", old, d)
	}
	for _, a := range w.Acks() {
		if a.Node == old && a.At.Before(f.FirstNew) && a.At.After(f.LastOld) {
			f.LastOld = a.At
		}
	}
	f.FromFault = f.FirstNew.Sub(t0)
	if f.LastOld.IsZero() {
		f.Gap = -1
	} else {
		f.Gap = f.FirstNew.Sub(f.LastOld)
	}
	return f, nil
}

// Overlap counts the writes acknowledged in [from, to) by a node other than primary after
// primary's first acknowledged write at first: two nodes taking writes at once.
func (w *Writer) Overlap(primary string, first, to time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.acks {
		if a.Node != primary && a.At.After(first) && a.At.Before(to) {
			n++
		}
	}
	return n
}

// Missing returns the ids of writes acknowledged before cutoff that node does not have. It
// reads node's table with a few retries (the node may just have become primary).
func (w *Writer) Missing(node *harness.PilotNode, cutoff time.Time) ([]int64, error) {
	db := node.DB()
	defer db.Close()
	ids := map[int64]bool{}
	err := Until(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rows, err := db.QueryContext(ctx, `SELECT id FROM `+writerTable)
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if rows.Scan(&id) == nil {
				ids[id] = true
			}
		}
		return rows.Err() == nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s on %s: %w", writerTable, node.Name, err)
	}
	var missing []int64
	for _, a := range w.Acks() {
		if a.At.Before(cutoff) && !ids[a.ID] {
			missing = append(missing, a.ID)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	return missing, nil
}

// Until polls cond every 20ms until it holds (nil) or d passes (an error).
func Until(d time.Duration, cond func() bool) error { return UntilEvery(d, 20*time.Millisecond, cond) }

// UntilEvery polls cond every `every` until it holds (nil) or d passes (an error).
func UntilEvery(d, every time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		time.Sleep(every)
	}
}

// Changes counts how often the acknowledging node changed among the writes acknowledged in
// [from, to], starting from the node that acknowledged last before from. acks must be in the
// order they were acknowledged. One failover is one change; a flap (A, B, A) is two.
func Changes(acks []harness.Ack, from, to time.Time) int {
	n, last := 0, ""
	for _, a := range acks {
		if a.At.Before(from) {
			last = a.Node
			continue
		}
		if a.At.After(to) {
			break
		}
		if last != "" && a.Node != last {
			n++
		}
		last = a.Node
	}
	return n
}
