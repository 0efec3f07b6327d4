// Command soak injects random faults on the primary of a real 3-node cluster (a Consul dev
// agent and `mysqlpilot run` nodes with their own mariadbd, on loopback) under harness.Prober,
// which writes to every node every round and records each acknowledged write, then checks:
//
//   - lost = 0: every acknowledged write is on the final primary (harness Prober.Verify);
//   - split-brain rounds = 0: no prober round in which two nodes acknowledged a write;
//   - failovers = faults: the acknowledged writes show exactly one change of the writing node
//     per fault (a fault that moves nothing, or a flap A -> B -> A, fails).
//
// It exits 1 when any of these fails or the cluster does not settle after a fault. The table
// goes to stdout and to bench/results/soak-<date>.md and soak-latest.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/spf13/pflag"

	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// Round is one fault and what followed.
type Round struct {
	N        int
	Fault    lab.Fault
	Old, New string
	Gap      time.Duration // last ack by the old primary -> first ack by another node
	Changes  int           // changes of the acknowledging node from the fault to settled
	Splits   int           // prober rounds with two acknowledging nodes during this round
	Settle   time.Duration // fault healed -> settled
	Reseeds  int           // nodes restarted after exit 75 during this round
	Rejoins  int           // nodes restarted after exit 76 (unacknowledged commits dropped) during this round
	Aside    string        // a node quarantined after this round and set aside
	Err      string
}

type soak struct {
	nodes    int
	reseeds  int // nodes restarted after exit 75 (re-seed from the snapshot)
	rejoins  int // nodes restarted after exit 76 (rejoined without a re-seed)
	logs     string
	rs       *lab.Restarter
	aside    []string // nodes stuck quarantined, set aside
	rounds   []Round
	checked  int
	lost     int
	splits   []string
	acks     int
	aborted  string
	seed     uint64
	start    time.Time
	end      time.Time
	args     string
	semiSync bool
	hold     time.Duration
	machine  lab.Machine
	load     string
}

var progress = os.Stderr

func logf(format string, args ...any) {
	fmt.Fprintf(progress, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func main() {
	fs := pflag.NewFlagSet("soak", pflag.ExitOnError)
	rounds := fs.Int("rounds", 20, "faults to inject, one per round, each on the current primary")
	seed := fs.Uint64("seed", 0, "random seed for the fault sequence (0: from the clock; printed either way)")
	hold := fs.Duration("hold", 15*time.Second, "how long SIGSTOP and the network-cut emulation last before SIGCONT")
	nodes := fs.Int("nodes", 3, "cluster size")
	semi := fs.Bool("semisync", true, "ha.semiSync (no async fallback); with false, a node frozen and continued (network-cut emulation) can acknowledge writes before its watchdog fences it")
	every := fs.Duration("every", 50*time.Millisecond, "prober round period")
	faultsFlag := fs.String("faults", "kill9,sigstop,sigterm,netcut", "comma-separated faults to choose from")
	out := fs.String("out", "bench/results", "directory for soak-<date>.md and soak-latest.md; empty: print only")
	_ = fs.Parse(lab.LongFlags(os.Args[1:]))

	var faults []lab.Fault
	for _, f := range strings.Split(*faultsFlag, ",") {
		if !slices.Contains(lab.Faults, lab.Fault(f)) {
			fmt.Fprintf(os.Stderr, "soak: unknown fault %q (use %v)\n", f, lab.Faults)
			os.Exit(2)
		}
		faults = append(faults, lab.Fault(f))
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	_ = mysqldrv.SetLogger(log.New(io.Discard, "", 0))
	s := &soak{nodes: *nodes, seed: *seed, start: time.Now(), args: strings.Join(os.Args[1:], " "), semiSync: *semi, hold: *hold, machine: lab.DescribeMachine()}
	logf("soak: %d rounds, seed %d, semi-sync %v, hold %s", *rounds, *seed, *semi, *hold)
	load := lab.StartLoadSampler()
	err := lab.Run("soak", progress, func(t *lab.TB) {
		s.run(t, *rounds, faults, *every, rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15)))
	})
	if err != nil && s.aborted == "" {
		s.aborted = err.Error()
	}
	load.Stop()
	s.load = load.Summary()
	s.end = time.Now()
	report, ok := s.markdown()
	fmt.Print(report)
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err == nil {
			for _, n := range []string{"soak-" + s.start.Format("2006-01-02") + ".md", "soak-latest.md"} {
				p := filepath.Join(*out, n)
				if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
					logf("soak: %v", err)
				} else {
					logf("soak: wrote %s", p)
				}
			}
		}
	}
	if !ok {
		os.Exit(1)
	}
}

func (s *soak) run(t *lab.TB, rounds int, faults []lab.Fault, every time.Duration, rng *rand.Rand) {
	c := harness.StartCluster(t, harness.ClusterOptions{Nodes: s.nodes, SemiSync: s.semiSync, Snapshots: true})
	active := slices.Clone(c.Nodes)
	p, err := lab.SettledAmong(c, active, 180*time.Second)
	if err != nil {
		s.aborted = err.Error()
		return
	}
	// A snapshot first, so that a node that comes back with errant transactions can re-seed
	// (it exits 75; the Restarter starts it again, as a container runtime would).
	if out, err := p.Control("backup"); err != nil {
		s.aborted = fmt.Sprintf("first snapshot: %v: %s", err, out)
		return
	}
	rs := lab.StartRestarter(c, logf)
	s.rs = rs
	pr := harness.StartProber(t, c, p, every)
	defer func() {
		if s.aborted != "" || len(pr.Splits()) > 0 {
			if dir, err := lab.KeepLogs(c, "soak"); err == nil {
				s.logs = dir
			}
		}
		rs.Stop()
		s.reseeds, s.rejoins = rs.Restarts(), rs.Rejoins()
		pr.Stop()
		s.acks = len(pr.Acks())
		s.splits = pr.Splits()
		final, err := lab.SettledAmong(c, active, 60*time.Second)
		if err != nil {
			final = lab.Primary(c)
		}
		if final == nil {
			s.aborted = fmt.Sprintf("no primary at the end to verify against: %s", lab.Describe(c))
			return
		}
		if err := t.Try(func() { s.checked, s.lost = pr.Verify(t, final) }); err != nil {
			s.aborted = "verify: " + err.Error()
		}
	}()
	if err := t.Try(func() { pr.WaitAcks(t, 20, 30*time.Second) }); err != nil {
		s.aborted = err.Error()
		return
	}
	for i := 1; i <= rounds; i++ {
		r := Round{N: i, Fault: faults[rng.IntN(len(faults))]}
		err := s.round(c, active, pr, &r)
		var q *lab.QuarantineError
		if errors.As(err, &q) {
			// A node stays quarantined: its re-seed did not happen. Set it aside and go on
			// with the others (the soak fails at the end).
			for _, n := range q.Nodes {
				r.Aside = strings.TrimPrefix(r.Aside+","+n.Name, ",")
				s.aside = append(s.aside, n.Name)
				active = slices.DeleteFunc(active, func(x *harness.PilotNode) bool { return x == n })
			}
			healed := time.Now()
			_, err = lab.SettledAmong(c, active, 120*time.Second)
			r.Settle += time.Since(healed)
		}
		r.err(err)
		s.rounds = append(s.rounds, r)
		logf("round %d: %s on %s -> %s, window %s, primary changes %d, split rounds %d, re-seeds %d, rejoins %d, settled in %s %s %s",
			r.N, r.Fault, r.Old, r.New, sec(r.Gap), r.Changes, r.Splits, r.Reseeds, r.Rejoins, sec(r.Settle), r.Aside, r.Err)
		if err != nil {
			s.aborted = fmt.Sprintf("round %d: %s", i, r.Err)
			return
		}
		if len(active) < 2 {
			s.aborted = fmt.Sprintf("after round %d fewer than two nodes are left in service (set aside: %v)", i, s.aside)
			return
		}
	}
}

func (r *Round) err(err error) {
	if err != nil {
		r.Err = err.Error()
	}
}

func sortedAcks(pr *harness.Prober) []harness.Ack {
	a := pr.Acks()
	sort.SliceStable(a, func(i, j int) bool { return a[i].At.Before(a[j].At) })
	return a
}

// round injects r.Fault on the primary, heals it, and waits until the cluster settles.
func (s *soak) round(c *harness.Cluster, active []*harness.PilotNode, pr *harness.Prober, r *Round) error {
	p, err := lab.SettledAmong(c, active, 120*time.Second)
	if err != nil {
		return err
	}
	r.Old = p.Name
	// The primary must be taking the prober's writes before the fault.
	since := time.Now()
	if err := lab.Until(30*time.Second, func() bool {
		n := 0
		for _, a := range pr.Acks() {
			if a.Node == p.Name && a.At.After(since) {
				n++
			}
		}
		return n >= 3
	}); err != nil {
		return fmt.Errorf("primary %s acknowledges no writes", p.Name)
	}
	splits0, reseeds0, rejoins0 := len(pr.Splits()), s.rs.Restarts(), s.rs.Rejoins()
	defer func() { r.Reseeds, r.Rejoins = s.rs.Restarts()-reseeds0, s.rs.Rejoins()-rejoins0 }()
	in, err := lab.Inject(p, r.Fault)
	if err != nil {
		return err
	}
	switch r.Fault {
	case lab.Stop, lab.NetCut:
		time.Sleep(s.hold) // the fault's duration
	case lab.Kill9:
		// Restart only once another node took over: the fault is a crash, then a reboot.
		_ = lab.Until(120*time.Second, func() bool {
			for _, a := range pr.Acks() {
				if a.At.After(in.At) && a.Node != p.Name {
					return true
				}
			}
			return false
		})
	}
	healed := time.Now()
	herr := in.Heal()
	_, serr := lab.SettledAmong(c, active, 120*time.Second)
	r.Settle = time.Since(healed)
	end := time.Now()
	acks := sortedAcks(pr)
	r.Changes = lab.Changes(acks, in.At, end)
	r.Splits = len(pr.Splits()) - splits0
	var first, last time.Time
	for _, a := range acks {
		if a.At.After(in.At) && a.Node != p.Name {
			first, r.New = a.At, a.Node
			break
		}
	}
	for _, a := range acks {
		if a.Node == p.Name && (first.IsZero() || a.At.Before(first)) {
			last = a.At
		}
	}
	if !first.IsZero() && !last.IsZero() {
		r.Gap = first.Sub(last)
	}
	if herr != nil {
		return herr
	}
	return serr
}

func sec(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// markdown renders the soak's result and says whether it passed.
func (s *soak) markdown() (string, bool) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	byFault := map[lab.Fault]int{}
	failovers, badRounds := 0, 0
	for _, r := range s.rounds {
		byFault[r.Fault]++
		failovers += r.Changes
		if r.Changes != 1 {
			badRounds++
		}
	}
	ok := s.aborted == "" && len(s.rounds) > 0 && len(s.aside) == 0 && s.lost == 0 && len(s.splits) == 0 && failovers == len(s.rounds) && badRounds == 0
	m := s.machine
	w("# mysqlpilot soak, %s\n\n", s.start.UTC().Format("2006-01-02 15:04 UTC"))
	w("`make soak` (args: `%s`), **seed %d** (rerun with `go run ./test/soak -seed %d`); took %s.\n\n", s.args, s.seed, s.seed, s.end.Sub(s.start).Round(time.Second))
	w("- Machine: %d CPUs (%s), %s RAM, kernel %s, %s; %s; %s. Load: %s, shared with other engineers' docker and integration tests.\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.Go, m.MariaDB, m.Consul, s.load)
	w("- Cluster: Consul dev agent + %d `mysqlpilot run` nodes on 127.0.0.1 with the project's default timings (sessionTTL 10s, checkTTL 5s, lockDelay 1s, healthInterval 1s), ha.semiSync=%v, local snapshot backend (one snapshot taken at the start, then the product's own schedule). A node that comes back with errant transactions exits 75 asking for a re-seed; the soak restarts it, as a container runtime's restart policy would, and it restores the latest snapshot. An old primary whose fence found commits waiting for acknowledgements kills its mariadbd and exits 76; restarted, its crash recovery drops them and it rejoins without a re-seed. A node that stays quarantined would be set aside (and fail the soak).\n", s.nodes, s.semiSync)
	w("- Faults, each on the current primary: kill -9 of mysqlpilot + mariadbd, restarted once another node took over; SIGSTOP of mysqlpilot only for %s, then SIGCONT; SIGTERM, then restart; network cut **emulated** by SIGSTOP of mysqlpilot + mariadbd for %s, then SIGCONT. After each, the soak waits for one primary and two healthy replicas.\n", s.hold, s.hold)
	w("- Prober (test/harness): every 50 ms one write to every node at once; a round in which two nodes acknowledge is a split-brain round. Failovers are counted from the acknowledged writes: each change of the node that acknowledges is one primary change; every fault must produce exactly one (none = no failover, two or more = flapping).\n\n")
	w("| rounds | faults injected | failovers observed | rounds with != 1 primary change | writes acked | lost | split-brain rounds | re-seeds (errant old primary, exit 75, restarted) | rejoins without re-seed (exit 76, restarted) | stuck quarantined | result |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	var fl []string
	for _, f := range lab.Faults {
		if byFault[f] > 0 {
			fl = append(fl, fmt.Sprintf("%s %d", f, byFault[f]))
		}
	}
	result := "PASS"
	if !ok {
		result = "**FAIL**"
	}
	aside := "0"
	if len(s.aside) > 0 {
		aside = fmt.Sprintf("%d (%s)", len(s.aside), strings.Join(s.aside, ", "))
	}
	w("| %d | %d (%s) | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n\n", len(s.rounds), len(s.rounds), strings.Join(fl, ", "), failovers, badRounds, s.acks, s.lost, len(s.splits), s.reseeds, s.rejoins, aside, result)
	if s.aborted != "" {
		w("Aborted: %s\n\n", s.aborted)
	}
	if s.logs != "" {
		w("Logs kept in %s.\n\n", s.logs)
	}
	w("| round | fault | primary before -> after | write window | primary changes | split rounds | settled after heal | re-seeds | rejoins (exit 76) | set aside (stuck quarantined) | error |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range s.rounds {
		w("| %d | %s | %s -> %s | %s | %d | %d | %s | %d | %d | %s | %s |\n", r.N, r.Fault, r.Old, r.New, sec(r.Gap), r.Changes, r.Splits, sec(r.Settle), r.Reseeds, r.Rejoins, r.Aside, r.Err)
	}
	if len(s.splits) > 0 {
		w("\nSplit-brain rounds:\n\n")
		for _, x := range s.splits {
			w("- %s\n", x)
		}
	}
	w("\nLost = acknowledged writes (checked: %d) missing on the final primary.\n", s.checked)
	return b.String(), ok
}
