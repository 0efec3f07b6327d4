package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// Settings is a set of HA timings a cluster runs with.
type Settings struct {
	Name     string
	Label    string
	HA       map[string]any
	SemiSync bool
	// Every is the writer's period per node; Wait bounds one failover; Settle one convergence.
	Every  time.Duration
	Wait   time.Duration
	Settle time.Duration
}

// Defaults are this project's defaults (nothing overridden).
var Defaults = Settings{
	Name:  "defaults",
	Label: "mysqlpilot defaults: sessionTTL 10s, checkTTL 5s (session bound to it), lockDelay 1s, healthInterval 1s, fenceMargin 1.5s, candidateWindow 1s, watch on",
	HA:    map[string]any{},
	Every: 50 * time.Millisecond, Wait: 90 * time.Second, Settle: 120 * time.Second,
}

// Seed are the seed's timings expressed in this project's config: session TTL 25s, Consul's
// default 15s lock delay, 10s polling and no blocking-query wake-ups. The session stays bound
// to the alive check (the product always binds it), so that check gets the session's TTL;
// fenceMargin 5s keeps the validation rule fenceMargin + healthInterval < checkTTL.
var Seed = Settings{
	Name:  "seed",
	Label: "seed's settings: sessionTTL 25s, checkTTL 25s, lockDelay 15s, healthInterval 10s (polling), fenceMargin 5s, candidateWindow 1s, watch off",
	HA: map[string]any{
		"sessionTTL": "25s", "checkTTL": "25s", "lockDelay": "15s", "healthInterval": "10s",
		"fenceMargin": "5s", "watch": false,
	},
	Every: 100 * time.Millisecond, Wait: 240 * time.Second, Settle: 240 * time.Second,
}

// Run is one fault injected on the primary and what followed.
type Run struct {
	Fault     lab.Fault
	Old, New  string
	Gap       time.Duration // last ack by the old primary -> first ack by the new one
	FromFault time.Duration // fault -> first ack by the new primary
	Lost      int           // acknowledged writes missing on the new primary
	Overlap   int           // writes acknowledged by another node after the new primary's first
	Changes   int           // primary changes seen in the acknowledged writes (want 1)
	Settle    time.Duration // fault healed -> cluster settled again
	// Reseeds: nodes that came back with transactions the new primary lacks (errant), asked
	// for a re-seed (exit 75) and were restarted to restore the latest snapshot. Settle
	// includes that.
	Reseeds int
	// Quarantined: a node stayed quarantined (the re-seed did not happen); the cluster was
	// rebuilt.
	Quarantined bool
	Note        string
	Err         error
}

// Rig is a cluster with a writer, rebuilt when it cannot recover.
type Rig struct {
	t      *lab.TB
	s      Settings
	C      *harness.Cluster
	W      *lab.Writer
	log    io.Writer
	lost   map[int64]bool // acknowledged writes already counted as lost
	builds int
	rs     *lab.Restarter
}

// NewRig starts a cluster with s and a writer on it.
func NewRig(t *lab.TB, s Settings, log io.Writer) (*Rig, error) {
	r := &Rig{t: t, s: s, log: log}
	return r, r.build()
}

func (r *Rig) build() error {
	r.Close()
	r.builds++
	r.lost = map[int64]bool{}
	var err error
	if e := r.t.Try(func() {
		r.C = harness.StartCluster(r.t, harness.ClusterOptions{SemiSync: r.s.SemiSync, HA: r.s.HA, Snapshots: true, Mutate: benchConfig})
	}); e != nil {
		return e
	}
	p, err := lab.Settled(r.C, 3, r.s.Settle)
	if err != nil {
		if dir, kerr := r.keepLogs("start"); kerr == nil {
			err = fmt.Errorf("%w (logs kept in %s)", err, dir)
		}
		return err
	}
	// A snapshot to re-seed from: an old primary that comes back with errant transactions
	// exits 75 and, restarted by the Restarter (as a container runtime would), restores it.
	if out, err := p.Control("backup"); err != nil {
		return fmt.Errorf("first snapshot on %s: %v: %s", p.Name, err, out)
	}
	r.rs = lab.StartRestarter(r.C, r.logf)
	r.W, err = lab.StartWriter(r.C, p, r.s.Every)
	if err != nil {
		return err
	}
	return r.W.WaitAcks(time.Now(), p.Name, 10, 30*time.Second)
}

// Close stops the writer and the cluster.
func (r *Rig) Close() {
	if r.rs != nil {
		r.rs.Stop()
		r.rs = nil
	}
	if r.W != nil {
		r.W.Stop()
		r.W = nil
	}
	if r.C != nil {
		for _, n := range r.C.Nodes {
			n.Kill()
		}
		r.C.Consul.Stop()
		r.C = nil
	}
}

// benchConfig turns off binlog archiving (a FLUSH BINARY LOGS and an upload every 5 minutes)
// and the snapshot a new primary takes after each failover, so that nothing but the faults
// moves during a run; snapshots stay on (for re-seeding), on the 6h schedule the harness sets.
func benchConfig(i int, cfg map[string]any) {
	cfg["snapshot"].(map[string]any)["binlogFlushInterval"] = "0s"
	cfg["snapshot"].(map[string]any)["onPrimaryChange"] = false
}

func (r *Rig) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s [%s] %s\n", time.Now().Format("15:04:05.000"), r.s.Name, fmt.Sprintf(format, args...))
}

// Once injects fault on the current primary, measures the failover, heals the fault and waits
// until the cluster is settled again (rebuilding it when it cannot, e.g. an old primary
// quarantined for errant transactions).
func (r *Rig) Once(fault lab.Fault) Run {
	run := Run{Fault: fault}
	p, err := lab.Settled(r.C, 3, r.s.Settle)
	if err != nil {
		run.Err = err
		r.recover(&run)
		return run
	}
	run.Old = p.Name
	if err := r.W.WaitAcks(time.Now(), p.Name, 5, 30*time.Second); err != nil {
		run.Err = fmt.Errorf("primary %s acknowledges no writes: %w", p.Name, err)
		r.recover(&run)
		return run
	}
	restarts := r.rs.Restarts()
	in, err := lab.Inject(p, fault)
	if err != nil {
		run.Err = err
		r.recover(&run)
		return run
	}
	fo, err := r.W.WaitNewPrimary(in.At, p.Name, r.s.Wait)
	if err != nil {
		_ = in.Heal()
		run.Err = fmt.Errorf("%w: %s", err, lab.Describe(r.C))
		r.recover(&run)
		return run
	}
	run.New, run.Gap, run.FromFault = fo.New, fo.Gap, fo.FromFault
	healed := time.Now()
	if err := in.Heal(); err != nil {
		run.Note = join(run.Note, err.Error())
	}
	sp, err := lab.Settled(r.C, 3, r.s.Settle)
	run.Settle = time.Since(healed)
	end := time.Now()
	run.Overlap = r.W.Overlap(fo.New, fo.FirstNew, end)
	run.Changes = lab.Changes(r.W.Acks(), in.At, end)
	// Lost: every write acknowledged so far must be on the primary (the new one, or whoever
	// the cluster settled on), the old primary's late acknowledgements included.
	np := r.C.Node(fo.New)
	if sp != nil {
		np = sp
	}
	if missing, merr := r.W.Missing(np, end); merr != nil {
		run.Note = join(run.Note, merr.Error())
	} else {
		for _, id := range missing {
			if !r.lost[id] {
				r.lost[id] = true
				run.Lost++
			}
		}
	}
	run.Reseeds = r.rs.Restarts() - restarts
	for _, q := range lab.Quarantined(r.C) {
		if q.Name == run.Old {
			run.Quarantined = true
		}
	}
	if err != nil {
		run.Err = err
		r.recover(&run)
		return run
	}
	if sp.Name != fo.New {
		run.Note = join(run.Note, fmt.Sprintf("settled with %s primary, not %s", sp.Name, fo.New))
	}
	if run.Lost > 0 || run.Overlap > 0 {
		if dir, err := r.keepLogs(string(fault) + "-lost"); err == nil {
			run.Note = join(run.Note, "logs kept in "+dir)
		}
	}
	r.logf("%s on %s: %s took over, gap %s (fault->ack %s), lost %d, overlap %d, changes %d, re-seeds %d, settled again in %s",
		fault, run.Old, run.New, ms(run.Gap), ms(run.FromFault), run.Lost, run.Overlap, run.Changes, run.Reseeds, ms(run.Settle))
	return run
}

// recover rebuilds the cluster after a run that left it unable to settle; the reason goes in
// the run's note.
func (r *Rig) recover(run *Run) {
	q := lab.Quarantined(r.C)
	var names []string
	for _, n := range q {
		names = append(names, n.Name)
	}
	if len(names) > 0 {
		run.Note = join(run.Note, "quarantined (errant transactions): "+strings.Join(names, ","))
	}
	if dir, err := r.keepLogs(string(run.Fault)); err == nil {
		run.Note = join(run.Note, "logs kept in "+dir)
	}
	r.logf("%s: %v; %s; rebuilding the cluster", run.Fault, run.Err, run.Note)
	if err := r.build(); err != nil {
		run.Note = join(run.Note, "rebuild failed: "+err.Error())
		r.logf("rebuild failed: %v", err)
	} else {
		run.Note = join(run.Note, "cluster rebuilt")
	}
}

// keepLogs copies the cluster's logs to a directory under lab.LogDir.
func (r *Rig) keepLogs(what string) (string, error) {
	return lab.KeepLogs(r.C, r.s.Name+"-"+what)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

func ms(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return d.Round(time.Millisecond).String()
}
