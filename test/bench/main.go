// Command bench measures mysqlpilot on real processes (a Consul dev agent, `mysqlpilot run`
// nodes each supervising its own mariadbd, all on loopback) and prints a table, also written to
// bench/results/<date>.md and bench/results/latest.md:
//
//   - failover write-unavailability window for kill -9, SIGSTOP of mysqlpilot, SIGTERM and an
//     emulated network cut, with this project's defaults and with the seed's settings;
//   - acknowledged writes lost per kill -9 failover, semi-sync on and off;
//   - CPU cost of the in-process health check against forking the mariadb client;
//   - RSS and idle CPU of `mysqlpilot supervise` and of a `mysqlpilot run` node;
//   - replica bootstrap from a snapshot (when the product has it).
//
// Run it with `make bench` (or `go run ./test/bench -quick`). It uses test/harness through
// lab.TB, a testing.TB that works outside `go test`.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/spf13/pflag"

	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

type options struct {
	runs      int
	scenarios map[string]bool
	faults    []lab.Fault
	quick     bool
	out       string
	checks    int
	idle      time.Duration
	sizes     []int64
	tput      int64 // data set of the throughput rows; 0: not run
}

// Results is everything one bench run measured.
type Results struct {
	Start, End time.Time
	Args       string
	Opts       options
	Machine    lab.Machine
	Load       string
	Commit     string
	Dirty      []string

	Failover map[string]map[lab.Fault][]Run // settings name -> fault -> runs
	RPO      map[string][]Run               // "async", "semi-sync" -> kill -9 runs
	Health   []CheckCost
	HealthOn string
	Idle     []Footprint
	Loaded   []Footprint
	Boot     string // why the bootstrap is not measured
	Boots    []Boot
	Pipeline []PipeRow
	Tput     *Throughput
	Problems []string
}

var progress = os.Stderr

func logf(format string, args ...any) {
	fmt.Fprintf(progress, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func main() {
	fs := pflag.NewFlagSet("bench", pflag.ExitOnError)
	runs := fs.Int("runs", 10, "fault injections per fault and settings (p99 is nearest-rank: with fewer than 100 runs it is the maximum)")
	scen := fs.String("scenarios", "failover,seed,rpo,health,supervisor,bootstrap,pipeline", "comma-separated: failover (project defaults), seed (seed's settings), rpo, health, supervisor, bootstrap, pipeline (snapshot compress/seal/sha256 stages, and backup throughput beside raw mariabackup)")
	faults := fs.String("faults", "kill9,sigstop,sigterm,netcut", "comma-separated faults for failover and seed")
	quick := fs.Bool("quick", false, "a quick pass: 3 runs, 50 health checks, 15s idle window (flags given explicitly win)")
	out := fs.String("out", "bench/results", "directory for the results (<date>.md and latest.md; -quick writes <date>-quick.md); empty: print only")
	checks := fs.Int("checks", 200, "health checks per method")
	idle := fs.Duration("idle", 60*time.Second, "idle window for the supervisor's CPU use")
	sizes := fs.String("bootstrap-sizes", "1GiB,4GiB", "data sets for the replica bootstrap (-quick: 256MiB)")
	tput := fs.String("throughput-size", "4GiB", "data set of the pipeline scenario's backup throughput rows (real mariabackup, raw references beside; -quick: 256MiB; 0 skips them)")
	_ = fs.Parse(lab.LongFlags(os.Args[1:]))

	o := options{runs: *runs, quick: *quick, out: *out, checks: *checks, idle: *idle, scenarios: map[string]bool{}}
	if o.quick {
		if !fs.Changed("runs") {
			o.runs = 3
		}
		if !fs.Changed("checks") {
			o.checks = 50
		}
		if !fs.Changed("idle") {
			o.idle = 15 * time.Second
		}
		if !fs.Changed("bootstrap-sizes") {
			*sizes = "256MiB"
		}
		if !fs.Changed("throughput-size") {
			*tput = "256MiB"
		}
	}
	if *tput != "0" {
		n, err := parseSize(*tput)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -throughput-size:", err)
			os.Exit(2)
		}
		o.tput = n
	}
	for _, x := range strings.Split(*sizes, ",") {
		n, err := parseSize(x)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	for _, s := range strings.Split(*scen, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.scenarios[s] = true
		}
	}
	for _, f := range strings.Split(*faults, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(lab.Faults, lab.Fault(f)) {
			fmt.Fprintf(os.Stderr, "bench: unknown fault %q (use %v)\n", f, lab.Faults)
			os.Exit(2)
		}
		o.faults = append(o.faults, lab.Fault(f))
	}
	// The driver logs every broken connection; the writer breaks many on purpose.
	_ = mysqldrv.SetLogger(log.New(io.Discard, "", 0))

	r := &Results{Start: time.Now(), Args: strings.Join(os.Args[1:], " "), Opts: o, Machine: lab.DescribeMachine(),
		Failover: map[string]map[lab.Fault][]Run{}, RPO: map[string][]Run{}}
	r.Commit, r.Dirty = gitState()
	load := lab.StartLoadSampler()
	logf("bench: %d runs per fault; scenarios %s; faults %v; machine %d CPUs, load %.2f", o.runs, *scen, o.faults, r.Machine.CPUs, lab.LoadAvg())

	// Phase 0: the snapshot pipeline's stages, in-process, before any cluster loads the CPUs.
	if o.scenarios["pipeline"] {
		rows, err := Pipeline()
		if err != nil {
			r.problem("pipeline: %v", err)
		}
		r.Pipeline = rows
		if o.tput > 0 {
			prof := ""
			if o.out != "" {
				prof = filepath.Join(o.out, "pprof-"+r.Start.Format("2006-01-02"))
			}
			t, err := RunThroughput(o.tput, prof)
			if err != nil {
				r.problem("throughput: %v", err)
			} else {
				r.Tput = &t
			}
		}
	}
	// Phase 1, alone on the machine (as far as this program goes): the project's defaults,
	// then, on the same settled cluster with its writer stopped, the idle and health figures.
	if o.scenarios["failover"] || o.scenarios["health"] || o.scenarios["supervisor"] || o.scenarios["rpo"] {
		err := lab.Run("defaults", progress, func(t *lab.TB) { r.phaseDefaults(t) })
		if err != nil {
			r.problem("defaults phase: %v", err)
		}
	}
	// Phase 2: kill -9 with semi-sync on, for the RPO row.
	if o.scenarios["rpo"] {
		err := lab.Run("semisync", progress, func(t *lab.TB) {
			s := Defaults
			s.Name, s.SemiSync = "semi-sync", true
			r.RPO["semi-sync"] = r.series(t, s, lab.Kill9)
		})
		if err != nil {
			r.problem("semi-sync phase: %v", err)
		}
	}
	// Phase 3: the seed's settings, one cluster per fault at once: each failover takes tens of
	// seconds of timers, not CPU, and running them one after the other would take most of an
	// hour. The replica bootstrap runs meanwhile, for the same reason (the 40-minute budget).
	var boot sync.WaitGroup
	if o.scenarios["bootstrap"] {
		if why := bootstrapPending(); why != "" {
			r.Boot = why
		} else {
			boot.Add(1)
			go func() {
				defer boot.Done()
				for _, size := range o.sizes {
					var b Boot
					err := lab.Run("bootstrap", progress, func(t *lab.TB) { b = Bootstrap(t, size) })
					if b.Err == nil && err != nil {
						b.Err = err
					}
					if b.Err != nil {
						r.problem("bootstrap %s: %v", sizeName(size), b.Err)
					} else if b.Expert.Err != nil {
						r.problem("bootstrap %s: %v", sizeName(size), b.Expert.Err)
					}
					r.Boots = append(r.Boots, b)
				}
			}()
		}
	}
	if o.scenarios["seed"] {
		r.phaseSeed()
	}
	boot.Wait()
	load.Stop()
	r.Load = load.Summary()
	r.End = time.Now()

	report := r.Markdown()
	fmt.Print(report)
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			logf("bench: %v", err)
			os.Exit(1)
		}
		date := r.Start.Format("2006-01-02")
		names := []string{date + ".md", "latest.md"}
		if o.quick {
			names = []string{date + "-quick.md"}
		}
		for _, n := range names {
			p := filepath.Join(o.out, n)
			if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
				logf("bench: %v", err)
				os.Exit(1)
			}
			logf("bench: wrote %s", p)
		}
	}
}

var problemMu sync.Mutex

func (r *Results) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("bench: PROBLEM: %s", msg)
	problemMu.Lock()
	r.Problems = append(r.Problems, msg)
	problemMu.Unlock()
}

// series runs fault `runs` times on a fresh cluster with settings s.
func (r *Results) series(t *lab.TB, s Settings, faults ...lab.Fault) []Run {
	rig, err := NewRig(t, s, progress)
	if err != nil {
		r.problem("%s: cluster: %v", s.Name, err)
		return nil
	}
	defer rig.Close()
	var out []Run
	for _, f := range faults {
		for i := 0; i < r.Opts.runs; i++ {
			out = append(out, rig.Once(f))
		}
	}
	return out
}

func (r *Results) phaseDefaults(t *lab.TB) {
	o := r.Opts
	rig, err := NewRig(t, Defaults, progress)
	if err != nil {
		r.problem("defaults: cluster: %v", err)
		return
	}
	defer rig.Close()
	byFault := map[lab.Fault][]Run{}
	faults := o.faults
	if !o.scenarios["failover"] && o.scenarios["rpo"] {
		faults = []lab.Fault{lab.Kill9}
	}
	if o.scenarios["failover"] || o.scenarios["rpo"] {
		for _, f := range faults {
			for i := 0; i < o.runs; i++ {
				byFault[f] = append(byFault[f], rig.Once(f))
			}
		}
		if o.scenarios["failover"] {
			r.Failover[Defaults.Name] = byFault
		}
		r.RPO["async"] = byFault[lab.Kill9]
	}
	if !o.scenarios["supervisor"] && !o.scenarios["health"] {
		return
	}
	p, err := lab.Settled(rig.C, 3, Defaults.Settle)
	if err != nil {
		r.problem("defaults: not settled for the idle measurements: %v", err)
		return
	}
	var replica *harness.PilotNode
	for _, n := range rig.C.Nodes {
		if n != p {
			replica = n
			break
		}
	}
	if o.scenarios["supervisor"] {
		// For comparison with the idle figures: the same nodes under the writer's load.
		window := min(o.idle, 30*time.Second)
		logf("supervisor: %s under the writer's load", window)
		r.Loaded = Idle([]Footprint{
			{What: "`mysqlpilot run`, primary, under the writer (one insert every 50 ms to each node)", Pid: lab.PilotPid(p)},
			{What: "`mysqlpilot run`, replica, same time", Pid: lab.PilotPid(replica)},
		}, window)
	}
	rig.W.Stop()
	if p, err = lab.Settled(rig.C, 3, Defaults.Settle); err != nil {
		r.problem("defaults: not settled for the idle measurements: %v", err)
		return
	}
	if o.scenarios["supervisor"] {
		logf("supervisor: idle window %s", o.idle)
		sup, err := StartSupervise(harness.PilotBinary(t))
		if err != nil {
			r.problem("supervise: %v", err)
		} else {
			procs := []Footprint{
				{What: "`mysqlpilot supervise -- sleep 1000`", Pid: sup.Process.Pid},
				{What: "`mysqlpilot run`, primary of a settled 3-node cluster (idle: no client writes)", Pid: lab.PilotPid(p)},
				{What: "`mysqlpilot run`, replica of the same cluster", Pid: lab.PilotPid(replica)},
			}
			r.Idle = Idle(procs, o.idle)
			_ = sup.Process.Signal(syscall.SIGTERM)
			_ = sup.Wait()
		}
	}
	if o.scenarios["health"] {
		logf("health: %d checks per method against %s (a replica)", o.checks, replica.Name)
		r.HealthOn = replica.Name
		r.Health, err = HealthCheckCost(replica, o.checks)
		if err != nil {
			r.problem("health: %v", err)
		}
	}
}

func (r *Results) phaseSeed() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	byFault := map[lab.Fault][]Run{}
	for _, f := range r.Opts.faults {
		wg.Add(1)
		go func(f lab.Fault) {
			defer wg.Done()
			s := Seed
			s.Name = "seed/" + string(f)
			err := lab.Run(s.Name, progress, func(t *lab.TB) {
				runs := r.series(t, s, f)
				mu.Lock()
				byFault[f] = runs
				mu.Unlock()
			})
			if err != nil {
				r.problem("seed %s: %v", f, err)
			}
		}(f)
	}
	wg.Wait()
	r.Failover[Seed.Name] = byFault
}

// bootstrapPending says why a replica cannot be bootstrapped from a snapshot yet ("" when it
// can): the product must call the snapshot bootstrap on its start path, not only define it.
func bootstrapPending() string {
	if _, err := os.Stat("internal/snapshot"); err != nil {
		return "pending (snapshot bootstrap not wired): internal/snapshot does not exist"
	}
	for _, dir := range []string{"internal/pilot", "cmd/mysqlpilot"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || filepath.Base(f) == "snapshot.go" {
				continue
			}
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), ".BootstrapReplica(") {
				return ""
			}
		}
	}
	return "pending (snapshot bootstrap not wired): internal/snapshot has Restore, but no start path calls BootstrapReplica yet"
}

func gitState() (string, []string) {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	commit := strings.TrimSpace(string(out))
	if err != nil {
		commit = "unknown"
	}
	out, _ = exec.Command("git", "status", "--porcelain", "--", "internal", "cmd").Output()
	var dirty []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			dirty = append(dirty, l)
		}
	}
	return commit, dirty
}
