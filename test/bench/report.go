package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/bench/lab"
)

// Stats summarize durations.
type Stats struct {
	N                      int
	Min, Median, P99, Max  time.Duration
	MedianFault, MaxSettle time.Duration
}

func stats(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	x := slices.Clone(ds)
	slices.Sort(x)
	n := len(x)
	med := x[n/2]
	if n%2 == 0 {
		med = (x[n/2-1] + x[n/2]) / 2
	}
	// Nearest rank: the smallest value with at least 99% of the runs at or below it.
	rank := int(math.Ceil(0.99*float64(n))) - 1
	return Stats{N: n, Min: x[0], Median: med, P99: x[rank], Max: x[n-1]}
}

// gaps are the windows of the runs that saw a failover.
func gaps(runs []Run) (g, fromFault []time.Duration) {
	for _, r := range runs {
		if r.New != "" && r.Gap >= 0 {
			g = append(g, r.Gap)
			fromFault = append(fromFault, r.FromFault)
		}
	}
	return g, fromFault
}

func sec(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func ratio(a, b time.Duration) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", a.Seconds()/b.Seconds())
}

// Markdown renders the results.
func (r *Results) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	mode := "`make bench`"
	if r.Opts.quick {
		mode = "`go run ./test/bench -quick`"
	}
	w("# mysqlpilot bench, %s\n\n", r.Start.UTC().Format("2006-01-02 15:04 UTC"))
	w("%s (args: `%s`), %d runs per fault and settings; took %s.\n\n", mode, r.Args, r.Opts.runs, r.End.Sub(r.Start).Round(time.Second))
	w("- Machine: %d CPUs (%s), %s RAM, kernel %s, %s; %s; %s.\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.Go, m.MariaDB, m.Consul)
	w("- Code: `%s`", r.Commit)
	if len(r.Dirty) > 0 {
		w(" plus uncommitted work of other engineers in the tree when the binary was built (%s)", strings.Join(r.Dirty, ", "))
	}
	w(".\n")
	w("- Load: other engineers ran docker system tests and integration tests on the same 2 cores during this run; load %s. Treat differences under a second as noise.\n", r.Load)
	w("- Setup: one Consul dev agent and 3 `mysqlpilot run` nodes, each supervising its own mariadbd, all on 127.0.0.1 (test/harness). A writer inserts into every node on its own goroutine every 50 ms (100 ms with the seed's settings; 1 s timeout per write) and records every acknowledged write. One cluster per settings (per fault for the seed's) is reused across runs: after each fault the node is restarted or continued and the bench waits until one primary and two healthy replicas report again. The local snapshot backend is on (one snapshot taken when the cluster starts; binlog archiving off): an old primary that comes back with errant transactions exits 75 and the bench restarts it, as a container runtime would, to re-seed from that snapshot. A cluster is rebuilt only when it cannot settle.\n")
	w("- Window = last write acknowledged by the old primary -> first write acknowledged by the new one. p99 is nearest-rank: **with %d runs, p99 = max**.\n\n", r.Opts.runs)

	w("Settings compared:\n\n- **defaults**: %s.\n- **seed**: %s.\n\n", Defaults.Label, Seed.Label)

	def, seed := r.Failover[Defaults.Name], r.Failover[Seed.Name]
	if def != nil || seed != nil {
		w("## Failover: write-unavailability window\n\n")
		w("| fault | defaults: median | defaults: p99 (= max) | seed's settings: median | seed's: p99 (= max) | seed / defaults, median | seed / defaults, p99 |\n")
		w("|---|---|---|---|---|---|---|\n")
		for _, f := range r.Opts.faults {
			dg, _ := gaps(def[f])
			sg, _ := gaps(seed[f])
			ds, ss := stats(dg), stats(sg)
			w("| %s | %s | %s | %s | %s | %s | %s |\n", f.Describe(), sec(ds.Median), sec(ds.P99), sec(ss.Median), sec(ss.P99), ratio(ss.Median, ds.Median), ratio(ss.P99, ds.P99))
		}
		w("\nThe network cut is an **emulation** on loopback: the primary's mysqlpilot and mariadbd are both SIGSTOPped (a host that stops answering) and continued once another node has taken over.\n\n")
		w("### Per run\n\n")
		w("| settings | fault | failovers / runs | min | median | max | fault -> first new ack, median | settled again after heal, median / max | acked writes lost | acks by another node after the new primary's first (split-brain) | runs with != 1 primary change | old primary re-seeded (errant) | errors (cluster rebuilt) |\n")
		w("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, sname := range []string{Defaults.Name, Seed.Name} {
			byFault := r.Failover[sname]
			if byFault == nil {
				continue
			}
			for _, f := range r.Opts.faults {
				runs := byFault[f]
				g, ff := gaps(runs)
				s, sf := stats(g), stats(ff)
				lost, overlap, flaps, quar, errs := 0, 0, 0, 0, 0
				var settles []time.Duration
				for _, x := range runs {
					if x.Err == nil {
						settles = append(settles, x.Settle)
					}
					quar += x.Reseeds
					lost += x.Lost
					overlap += x.Overlap
					if x.New != "" && x.Changes != 1 {
						flaps++
					}
					if x.Err != nil {
						errs++
					}
				}
				st := stats(settles)
				w("| %s | %s | %d / %d | %s | %s | %s | %s | %s / %s | %d | %d | %d | %d | %d |\n", sname, f, len(g), len(runs), sec(s.Min), sec(s.Median), sec(s.Max), sec(sf.Median), sec(st.Median), sec(st.Max), lost, overlap, flaps, quar, errs)
			}
		}
		w("\n")
	}

	if len(r.RPO) > 0 {
		w("## RPO: acknowledged writes lost per kill -9 failover\n\n")
		w("| replication | kill -9 failovers | lost acked writes, total | per failover, mean / max | old primary re-seeded on return (errant) | window median |\n")
		w("|---|---|---|---|---|---|\n")
		for _, k := range []string{"async", "semi-sync"} {
			runs, ok := r.RPO[k]
			if !ok {
				continue
			}
			n, lost, maxLost, quar := 0, 0, 0, 0
			for _, x := range runs {
				if x.New == "" {
					continue
				}
				n++
				lost += x.Lost
				maxLost = max(maxLost, x.Lost)
				quar += x.Reseeds
			}
			mean := 0.0
			if n > 0 {
				mean = float64(lost) / float64(n)
			}
			g, _ := gaps(runs)
			label := "semi-sync off (async, the default)"
			if k == "semi-sync" {
				label = "semi-sync on (ha.semiSync, no async fallback)"
			}
			w("| %s | %d | %d | %.2f / %d | %d | %s |\n", label, n, lost, mean, maxLost, quar, sec(stats(g).Median))
		}
		w("\nLost = writes the writer saw acknowledged (by any node, at any time) that the primary the cluster settled on does not have.\n\n")
	}

	if len(r.Health) > 0 {
		w("## Health check cost (CPU time per check, getrusage self + children)\n\n")
		w("Against %s's mariadbd (a replica) over its unix socket, as root.\n\n", r.HealthOn)
		w("| method | checks | CPU per check | wall per check | CPU vs in-process |\n|---|---|---|---|---|\n")
		base := r.Health[0].PerCheck()
		for _, c := range r.Health {
			if c.Err != nil {
				w("| %s | - | error: %v | - | - |\n", c.Method, c.Err)
				continue
			}
			w("| %s | %d | %s | %s | %s |\n", c.Method, c.Checks, us(c.PerCheck()), us(c.Wall/time.Duration(c.Checks)), ratio(c.PerCheck(), base))
		}
		w("\n")
	}

	if len(r.Idle) > 0 {
		w("## Supervisor footprint (idle)\n\n")
		w("| process | VmRSS | VmHWM | CPU (utime+stime) over %s | %% of one core |\n|---|---|---|---|---|\n", r.Opts.idle)
		for _, f := range r.Idle {
			if f.Err != nil {
				w("| %s | error: %v | | | |\n", f.What, f.Err)
				continue
			}
			w("| %s | %.1f MiB | %.1f MiB | %d ms | %.2f %% |\n", f.What, float64(f.RSS)/1024, float64(f.HWM)/1024, f.CPU.Milliseconds(), f.Percent())
		}
		for _, f := range r.Loaded {
			if f.Err != nil {
				continue
			}
			w("| %s (over %s) | %.1f MiB | %.1f MiB | %d ms | %.2f %% |\n", f.What, f.Window, float64(f.RSS)/1024, float64(f.HWM)/1024, f.CPU.Milliseconds(), f.Percent())
		}
		w("\nCPU from /proc/<pid>/stat in clock ticks of 10 ms (mariadbd, a child, is not included); memory from /proc/<pid>/status. The idle rows share one window with the writer stopped; the primary/replica picked may differ between the idle and loaded rows after failovers.\n\n")
	}

	if r.Boot != "" {
		w("## Replica bootstrap from snapshot\n\n| data set | time from scale to healthy replica | throughput vs raw backup stream |\n|---|---|---|\n")
		w("| 1 GiB | %s | - |\n| 4 GiB | %s | - |\n\n", r.Boot, r.Boot)
	}
	if len(r.Boots) > 0 {
		w("## Replica bootstrap from snapshot (scale 2 -> 3 nodes)\n\n")
		w("Payload: rows of 4 KiB of random bytes (incompressible), written through the primary and replicated. Raw stream = `mariabackup --backup --stream=xbstream` of the primary to /dev/null. Backup = `mysqlpilot backup` (stream, zstd, sha256, local store, Consul record). Restore = the new node's own figure (download, verify, extract, prepare, install). Scale -> healthy = `AddNode` until it is a healthy replica and the cluster settled. MB/s are of the raw stream's bytes.\n\n")
		w("| data set | datadir | raw stream | mysqlpilot backup | restore | scale -> healthy replica | bootstrap vs raw stream (scale -> healthy) | restore alone vs raw stream |\n|---|---|---|---|---|---|---|---|\n")
		for _, b := range r.Boots {
			if b.Err != nil {
				w("| %s | error: %v | | | | | | |\n", sizeName(b.Size), b.Err)
				continue
			}
			raw := MBps(b.RawBytes, b.Raw)
			w("| %s | %s | %s (%.0f MB/s) | %s (%.0f MB/s) | %s (%.0f MB/s) | %s (%.0f MB/s) | %.2f | %.2f |\n", sizeName(b.Size), sizeName(b.Datadir),
				sec(b.Raw), raw, sec(b.Backup), MBps(b.RawBytes, b.Backup), sec(b.Restore), MBps(b.RawBytes, b.Restore),
				sec(b.Healthy), MBps(b.RawBytes, b.Healthy), MBps(b.RawBytes, b.Healthy)/raw, MBps(b.RawBytes, b.Restore)/raw)
		}
		if r.Opts.scenarios["seed"] {
			w("\nThe bootstrap ran at the same time as the seed's-settings clusters (mostly idle timers).\n")
		}
		w("\n")
		w("%s", expertMarkdown(r.Boots))
	}

	if r.Tput != nil {
		w("%s", throughputMarkdown(*r.Tput))
	}
	if len(r.Pipeline) > 0 {
		w("%s", pipelineMarkdown(r.Pipeline))
	}

	w("## Targets (issue 7)\n\n| target | measured | result |\n|---|---|---|\n")
	for _, t := range r.targets() {
		w("| %s | %s | %s |\n", t[0], t[1], t[2])
	}
	w("\n")
	if len(r.Problems) > 0 {
		w("## Problems during the run\n\n")
		for _, p := range r.Problems {
			w("- %s\n", p)
		}
		w("\n")
	}
	w("Notes:\n\n")
	for _, n := range r.notes() {
		w("- %s\n", n)
	}
	return b.String()
}

func us(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

// targets checks the figures against issue 7's acceptance.
func (r *Results) targets() [][3]string {
	var out [][3]string
	verdict := func(ok bool, miss string) string {
		if ok {
			return "met"
		}
		return "**MISSED** " + miss
	}
	def, seed := r.Failover[Defaults.Name], r.Failover[Seed.Name]
	if def != nil {
		if g, _ := gaps(def[lab.Kill9]); len(g) > 0 {
			s := stats(g)
			out = append(out, [3]string{"kill -9 p50 <= 12 s", sec(s.Median), verdict(s.Median <= 12*time.Second, "by "+sec(s.Median-12*time.Second))})
			out = append(out, [3]string{"kill -9 p99 <= 20 s", sec(s.P99), verdict(s.P99 <= 20*time.Second, "by "+sec(s.P99-20*time.Second))})
		}
		if g, _ := gaps(def[lab.Term]); len(g) > 0 {
			s := stats(g)
			out = append(out, [3]string{"SIGTERM <= 2 s (every run: max)", sec(s.Max), verdict(s.Max <= 2*time.Second, "by "+sec(s.Max-2*time.Second))})
		}
	}
	if def != nil && seed != nil {
		for _, f := range r.Opts.faults {
			dg, _ := gaps(def[f])
			sg, _ := gaps(seed[f])
			if len(dg) == 0 || len(sg) == 0 {
				continue
			}
			d, s := stats(dg).Median, stats(sg).Median
			x := s.Seconds() / d.Seconds()
			out = append(out, [3]string{"seed / defaults >= 3x (median), " + string(f), fmt.Sprintf("%.1fx", x), verdict(x >= 3, fmt.Sprintf("(%.1fx short of 3x)", 3-x))})
		}
	}
	if runs, ok := r.RPO["semi-sync"]; ok {
		lost := 0
		for _, x := range runs {
			lost += x.Lost
		}
		out = append(out, [3]string{"semi-sync on: 0 acked writes lost on kill -9", fmt.Sprint(lost), verdict(lost == 0, fmt.Sprintf("(%d lost)", lost))})
	}
	if len(r.Health) >= 2 && r.Health[0].Err == nil && r.Health[1].Err == nil {
		x := r.Health[1].PerCheck().Seconds() / r.Health[0].PerCheck().Seconds()
		out = append(out, [3]string{"health check >= 20x cheaper than forking the client (same queries)", fmt.Sprintf("%.1fx", x), verdict(x >= 20, fmt.Sprintf("(%.1fx short)", 20-x))})
	}
	for _, f := range r.Idle {
		if f.Err != nil {
			continue
		}
		mib := float64(f.RSS) / 1024
		out = append(out, [3]string{"RSS <= 20 MiB: " + f.What, fmt.Sprintf("%.1f MiB", mib), verdict(mib <= 20, fmt.Sprintf("by %.1f MiB", mib-20))})
	}
	if r.Boot != "" {
		out = append(out, [3]string{"bootstrap >= 0.9 of raw stream throughput", "not measured", r.Boot})
	}
	for _, b := range r.Boots {
		if b.Err != nil {
			continue
		}
		x := MBps(b.RawBytes, b.Healthy) / MBps(b.RawBytes, b.Raw)
		out = append(out, [3]string{"bootstrap >= 0.9 of raw stream throughput, " + sizeName(b.Size), fmt.Sprintf("%.2f (scale -> healthy)", x), verdict(x >= 0.9, fmt.Sprintf("by %.2f", 0.9-x))})
		if e := b.Expert; e.Err == nil && e.Total > 0 {
			x := b.Healthy.Seconds() / e.Total.Seconds()
			out = append(out, [3]string{"bootstrap <= 1.1 x the same steps by hand on the same snapshot (issue 13), " + sizeName(b.Size),
				fmt.Sprintf("%.2fx (%s / %s)", x, sec(b.Healthy), sec(e.Total)), verdict(x <= expertTarget, fmt.Sprintf("by %.2fx", x-expertTarget))})
		}
	}
	return out
}

func (r *Results) notes() []string {
	n := []string{
		"The seed's settings run in this product: the seed's own code (Python, ContainerPilot) is not run. Its session was not bound to a health check; here the session stays bound to the alive check (the product always binds it), so that check is given the session's TTL (25 s). Consul may stretch a session TTL to 2x before invalidating it; a check TTL expires on time, so these seed figures are if anything better than the seed was.",
		"ha.fenceMargin is 5 s with the seed's settings (validation: fenceMargin + healthInterval < checkTTL; 5 + 10 < 25).",
		"SIGSTOP of mysqlpilot only: the in-server watchdog (an event that sets read_only when the heartbeat row is stale) closes writes on the old primary before the lock can move, so the window there starts when the watchdog fences, not at the SIGSTOP.",
		"Each node's mariadbd and `mariadb-install-db` run with a tmpdir of their own (`<datadir>.tmp`, the product's default since 2026-11-30): every mariadbd deletes the `#sql*` files in its tmpdir when it starts, so servers sharing /tmp on one host delete each other's temporary tables (failed datadir initializations, a mariadbd crash with signal 11 in ha_maria::drop_table).",
		"The seed phase runs its four clusters at once (one per fault); the defaults and semi-sync phases run alone.",
	}
	return n
}

// expertTarget is issue 13's bound: scale -> healthy replica within 1.1 x the expert's time.
const expertTarget = 1.1

// expertMarkdown puts each size's bootstrap beside the same steps done by hand (Expert).
func expertMarkdown(boots []Boot) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("### Against the same steps by hand on the same snapshot (issue 13: <= 1.1x)\n\n")
	w("Expert by hand = a script doing what an expert types, right after the new node is healthy, on the snapshot it restored: `mbstream -x` from that snapshot's uncompressed stream (decoded beforehand to a local file and fsynced: download, sha256, unsealing and decompression are not counted for the expert; mysqlpilot does them), `mariabackup --prepare` with the same --use-memory, mariadbd on the datadir in place (no fsync, no rename) with a node's server options, `SET GLOBAL gtid_slave_pos` from the backup's binlog info, `CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos` (TLS, as the cluster's replication user requires), `START SLAVE`, until both threads run and it applied the primary's @@gtid_binlog_pos (polls every 20 ms). It does not register in Consul or pass a health check; mysqlpilot's time runs from `AddNode` (process start) to its node healthy in Consul and the cluster settled (polled every 100 ms). MB/s are of the raw stream's bytes.\n\n")
	w("| data set | mysqlpilot: scale -> healthy replica | of which: download..extract / restore (+ prepare, fsync, rename) | expert by hand: `mbstream -x` -> caught up | expert: extract / prepare / start / replicate | expert, not counted: decode the snapshot to a file | mysqlpilot / expert | target | result |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range boots {
		if x.Err != nil {
			continue
		}
		e := x.Expert
		if e.Err != nil {
			w("| %s | %s | %s / %s | error: %v | | | | <= %.1fx | |\n", sizeName(x.Size), sec(x.Healthy), sec(x.Download), sec(x.Restore), e.Err, expertTarget)
			continue
		}
		ratio := x.Healthy.Seconds() / e.Total.Seconds()
		res := "met"
		if ratio > expertTarget {
			res = fmt.Sprintf("**MISSED** by %.2fx", ratio-expertTarget)
		}
		w("| %s | %s (%.0f MB/s) | %s / %s | %s (%.0f MB/s) | %s / %s / %s / %s | %s (%d MiB) | %.2fx | <= %.1fx | %s |\n", sizeName(x.Size),
			sec(x.Healthy), MBps(x.RawBytes, x.Healthy), sec(x.Download), sec(x.Restore),
			sec(e.Total), MBps(x.RawBytes, e.Total), sec(e.Extract), sec(e.Prepare), sec(e.Start), sec(e.Replicate),
			sec(e.Decode), e.StreamBytes>>20, ratio, expertTarget, res)
	}
	w("\n")
	return b.String()
}
