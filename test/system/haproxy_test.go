//go:build system

package system

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The client's write gap through HAProxy may exceed the README's failure table by this much:
// HAProxy notices a new primary at its next check (every 250 ms while a server is down) and
// sysbench reports per second.
const (
	readmeStopGap  = 220 * time.Millisecond  // README: docker stop, the handover's write gap
	readmeKillGap  = 5400 * time.Millisecond // README: docker kill, the failover's write gap
	frontDoorSlack = 2 * time.Second
	// A replica promoted to primary stays in the read backend until HAProxy's next two checks
	// of GET /replica fail (1 s, then 250 ms later) and its read sessions are shut: reads it
	// answers within this of its promotion are the expected cost of polling, later ones fail.
	readGrace = 3 * time.Second
)

// sysbenchLua wraps Debian's oltp_write_only so that it survives its server going away.
// sysbench 1.0.20 reconnects by itself only for a lost-connection code listed in
// --mysql-ignore-errors (e.g. "all"), and then reuses the closed libmariadb handle: Debian's
// build (linked with libmariadb) segfaults on the first failover (akopytov/sysbench#527). So
// the lost-connection codes stay fatal in the driver, and this script turns every error into
// a restarted transaction, opening a new connection (a new handle) when the old one is gone.
const sysbenchLua = `require("oltp_write_only")

local ffi = require("ffi")
pcall(ffi.cdef, "int usleep(unsigned int usec);")

-- Server errors after which the server closes the connection: shutdown (1053), killed
-- (1927), idle timeout (4031). Client errors (2000 and up) leave it unusable too.
local gone = { [1053] = true, [1927] = true, [4031] = true }

function sysbench.hooks.sql_error_ignorable(err)
   return true
end

function sysbench.hooks.before_restart_event(err)
   if not (gone[err.sql_errno] or err.sql_errno >= 2000) then
      return
   end
   pcall(close_statements)
   pcall(function() con:disconnect() end)
   local tries = 0
   while true do
      tries = tries + 1
      local ok, c = pcall(drv.connect, drv)
      if ok and c ~= nil then
         con = c
         break
      end
      ffi.C.usleep(20000)
   end
   prepare_statements()
   io.stderr:write(string.format("RECONNECTED errno=%d attempts=%d\n", err.sql_errno, tries))
end
`

// Errors the driver itself ignores (restarts the transaction, same connection, no log line):
// read-only (1290, 1836), deadlock and lock waits, duplicate keys, and the server-side ends of
// a connection, whose next statement then fails with a lost connection (the hook reconnects).
const sysbenchIgnored = "1020,1053,1062,1180,1205,1213,1290,1836,1927,4031"

// (9) HAProxy as the cluster's front door: sysbench writes through 127.0.0.1:<write port>
// while the primary is stopped, and later the new primary killed; a Go client reads through
// the read port all along. Per fault, the client's write gap (the longest run of sysbench
// seconds without a transaction) stays within the README's figure + 2 s. Reads never reach a
// writable server, except one that was promoted less than readGrace before (HAProxy checks
// GET /replica every second). A second Go client writes one row per 50 ms through the write
// port on a new connection each time: every write it saw acknowledged is on the final primary.
func TestHAProxyFrontDoor(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench not found on PATH: run test/tools/install-deps.sh (make test-system does)")
	}
	p, s := startCluster(t, nil, 3)
	hp := p.haproxy(t)
	hp.waitRouting(t, s)
	// The new cluster's first snapshot (taken as soon as there is a primary) loads both cores
	// for seconds: start the load once it is in. Started into it, sysbench once lost its
	// connections before its first transaction (HAProxy: "L4 unsuccessful connection" to the
	// primary, marked down for one 250 ms check), and sysbench cannot survive an error before
	// its first transaction; this test measures failovers, not a cluster's first seconds.
	Eventually(t, 2*time.Minute, 500*time.Millisecond, "the cluster's first snapshot", func() (bool, string) {
		return p.kvExists("snapshots/latest"), ""
	})
	poll := startPrimaryPoller(p)
	t.Cleanup(poll.Stop)
	dir := t.TempDir()
	sb := startSysbench(t, p, dir)
	writer := startFrontWriter(t, p)
	reader := startFrontReader(t, p)
	start := time.Now()
	sb.waitTPS(t, 8, time.Time{}, 90*time.Second)

	type fault struct {
		name             string
		at, newAt, ready time.Time
		old, new         string
		allow            time.Duration
	}
	var faults []*fault
	inject := func(name string, allow time.Duration, old Node, do func()) *fault {
		f := &fault{name: name, allow: allow, old: old.Name}
		f.at = time.Now()
		do()
		f.new, f.newAt = poll.waitNew(t, old.Name, failoverTimeout)
		sb.waitTPS(t, 3, f.newAt, failoverTimeout)
		writer.waitAck(t, f.newAt, failoverTimeout)
		f.ready = time.Now()
		t.Logf("%s %s: %s says 200 on /primary after %s; sysbench and the writer through HAProxy write again",
			name, old, f.new, f.newAt.Sub(f.at).Round(time.Millisecond))
		faults = append(faults, f)
		return f
	}

	// docker stop: the primary hands over.
	inject("docker stop", readmeStopGap+frontDoorSlack, s.Primary, func() {
		p.Docker(90*time.Second, "stop", "--time", "30", s.Primary.ID)
	})
	p.Docker(time.Minute, "start", s.Primary.ID)
	s2 := p.WaitSettled(t, 3, settleTimeout)
	hp.waitRouting(t, s2)
	sb.waitTPS(t, 5, time.Now(), 90*time.Second)

	// docker kill of the new primary: a replica takes over once its checks expire.
	inject("docker kill", readmeKillGap+frontDoorSlack, s2.Primary, func() {
		p.Docker(time.Minute, "kill", "--signal", "KILL", s2.Primary.ID)
	})
	p.Docker(time.Minute, "start", s2.Primary.ID)
	s3 := p.WaitSettled(t, 3, settleTimeout)
	hp.waitRouting(t, s3)
	sb.waitTPS(t, 5, time.Now(), 90*time.Second)

	sb.Stop()
	writer.Stop()
	reader.Stop()
	poll.Stop()
	end := time.Now()

	lines := sb.Lines()
	t.Logf("sysbench: %d one-second reports over %s; %s", len(lines), end.Sub(start).Round(time.Second), sb.Summary())
	poll.Timeline(t)
	hp.logTransitions(t, start)

	figs := []any{}
	for _, f := range faults {
		key := strings.ReplaceAll(strings.TrimPrefix(f.name, "docker "), " ", "_")
		g := sb.gap(f.at, f.ready.Add(2*time.Second))
		sb.logAround(t, f.name, f.at.Add(-3*time.Second), f.ready.Add(2*time.Second))
		wg, werrs := writer.gap(f.at, f.ready)
		t.Logf("%s: sysbench: %d s without a transaction (estimated gap %s; steady %.0f tps), %d errors, %d reconnects; writer through HAProxy: gap %s, %d failed writes %v; new primary %s",
			f.name, g.zeroSeconds, g.estimate.Round(10*time.Millisecond), g.steady, g.errors, g.reconnects,
			wg.Round(time.Millisecond), werrs.total, werrs.byKind, f.new)
		zero := time.Duration(g.zeroSeconds) * time.Second
		if zero > f.allow {
			t.Errorf("%s: sysbench saw no transaction for %s through HAProxy, want at most %s (README + %s)", f.name, zero, f.allow, frontDoorSlack)
		}
		if wg > f.allow {
			t.Errorf("%s: the writer through HAProxy saw no acknowledgement for %s, want at most %s", f.name, wg.Round(time.Millisecond), f.allow)
		}
		figs = append(figs, "write_gap_"+key, zero, "write_gap_"+key+"_est", g.estimate, "writer_gap_"+key, wg,
			"sysbench_errors_"+key, g.errors, "reconnects_"+key, g.reconnects, "writer_errors_"+key, werrs.total)
	}

	rs := reader.check(t, poll)
	checked, lost := writer.verify(t, p, s3.Primary)
	tps := sb.meanTPS()
	figs = append(figs, "sysbench_mean_tps", fmt.Sprintf("%.0f", tps),
		"reads", rs.total, "reads_failed", rs.failed, "reads_on_writable", rs.writable, "reads_on_writable_late", rs.late,
		"read_gap", rs.gap, "writes_checked", checked, "writes_lost", lost)
	figures(t, figs...)
}

// ---------------------------------------------------------------------------------------------
// HAProxy's container and its stats

type haproxyContainer struct {
	id, ip string
}

// haproxy returns the project's haproxy container.
func (p *Project) haproxy(t testing.TB) haproxyContainer {
	t.Helper()
	out := p.Docker(30*time.Second, "ps", "-q", "--no-trunc", "--filter", p.projectLabel(), "--filter", "label=com.docker.compose.service=haproxy")
	ids := strings.Fields(out)
	if len(ids) != 1 {
		t.Fatalf("want one running haproxy container, found %q", out)
	}
	ip := strings.TrimSpace(p.Docker(30*time.Second, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+p.NetworkName()+`").IPAddress}}`, ids[0]))
	return haproxyContainer{id: ids[0], ip: ip}
}

// servers returns, per backend, the state of each server HAProxy has an address for (from
// /stats;csv), by address: "UP", "DOWN", ...; slots without one (MAINT) are left out.
func (h haproxyContainer) servers() (map[string]map[string]string, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + h.ip + ":8404/stats;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("stats csv: %v", err)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[strings.TrimPrefix(strings.TrimSpace(name), "# ")] = i
	}
	out := map[string]map[string]string{}
	for _, r := range recs[1:] {
		px, sv, st := r[col["pxname"]], r[col["svname"]], r[col["status"]]
		if len(r) <= col["addr"] || sv == "BACKEND" || sv == "FRONTEND" || strings.HasPrefix(st, "MAINT") {
			continue
		}
		host, _, _ := strings.Cut(r[col["addr"]], ":")
		if out[px] == nil {
			out[px] = map[string]string{}
		}
		out[px][host] = st
	}
	return out, nil
}

// waitRouting waits until HAProxy has checked every node of s: in the write backend the
// primary UP and the replicas DOWN, in the read backend the other way round. (A node that
// appears in Consul's DNS counts as UP until its first check, up to 250 ms later.)
func (h haproxyContainer) waitRouting(t testing.TB, s Settled) {
	t.Helper()
	want := map[string]map[string]string{"mysql-primary": {s.Primary.IP: "UP"}, "mysql-replicas": {s.Primary.IP: "DOWN"}}
	for _, r := range s.Replicas {
		want["mysql-primary"][r.IP], want["mysql-replicas"][r.IP] = "DOWN", "UP"
	}
	took := Eventually(t, 60*time.Second, 100*time.Millisecond, "HAProxy routing writes to "+s.Primary.String()+" and reads to the replicas", func() (bool, string) {
		have, err := h.servers()
		if err != nil {
			return false, err.Error()
		}
		for px, servers := range have {
			if _, mysql := want[px]; !mysql {
				continue // the page's backend serves every live node, on purpose
			}
			for ip, st := range servers {
				// A gone node's slot (its old address) stays a while, down.
				if _, ok := want[px][ip]; !ok && st == "UP" {
					return false, fmt.Sprintf("%s has %s UP too: %v", px, ip, have)
				}
			}
		}
		for px, servers := range want {
			for ip, st := range servers {
				if have[px][ip] != st {
					return false, fmt.Sprintf("have %v, want %v", have, want)
				}
			}
		}
		return true, ""
	})
	t.Logf("HAProxy routes writes to %s and reads to %v (waited %s)", s.Primary, s.Replicas, took.Round(time.Millisecond))
}

// logTransitions logs HAProxy's server state changes since t0 (its log has no clock: docker's).
func (h haproxyContainer) logTransitions(t testing.TB, t0 time.Time) {
	out, _ := exec.Command("docker", "logs", "-t", "--since", t0.Format(time.RFC3339Nano), h.id).CombinedOutput()
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " is UP") || strings.Contains(l, " is DOWN") || strings.Contains(l, "maintenance") || strings.Contains(l, "resolves again") {
			ts, rest, _ := strings.Cut(l, " ")
			if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				ts = at.Local().Format("15:04:05.000")
			}
			if i := strings.Index(rest, "Server "); i >= 0 {
				rest = rest[i:]
			}
			if i := strings.Index(rest, ". "); i >= 0 {
				rest = rest[:i]
			}
			fmt.Fprintf(&b, "\n  %s  %s", ts, rest)
		}
	}
	t.Logf("HAProxy server changes:%s", b.String())
}

// ---------------------------------------------------------------------------------------------
// Which node says 200 on GET /primary, every 100 ms

type primaryPoller struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	current map[string]int         // node -> last status (0: no answer)
	events  []event                // changes (event.Outcome: "200", "503", "no answer")
	became  map[string][]time.Time // node -> when it started answering 200
}

func startPrimaryPoller(p *Project) *primaryPoller {
	pp := &primaryPoller{stop: make(chan struct{}), done: make(chan struct{}), current: map[string]int{}, became: map[string][]time.Time{}}
	go pp.run(p)
	return pp
}

func (pp *primaryPoller) run(p *Project) {
	defer close(pp.done)
	hc := &http.Client{Timeout: 400 * time.Millisecond}
	var nodes []Node
	var listed time.Time
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if time.Since(listed) > time.Second {
			if out, err := docker(10*time.Second, append([]string{"ps", "-q", "--no-trunc"}, p.mysqlFilter()...)...); err == nil {
				if ns, err := inspect(strings.Fields(out)); err == nil {
					nodes = ns
				}
			}
			listed = time.Now()
		}
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n.IP == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				code := 0
				if resp, err := hc.Get("http://" + n.IP + ":9104/primary"); err == nil {
					code = resp.StatusCode
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				pp.note(n.Name, code)
			}()
		}
		wg.Wait()
		select {
		case <-pp.stop:
			return
		case <-tick.C:
		}
	}
}

func (pp *primaryPoller) note(node string, code int) {
	now := time.Now()
	pp.mu.Lock()
	defer pp.mu.Unlock()
	prev, seen := pp.current[node]
	if seen && prev == code {
		return
	}
	pp.current[node] = code
	o := strconv.Itoa(code)
	if code == 0 {
		o = "no answer"
	}
	pp.events = append(pp.events, event{At: now, Node: node, Outcome: o})
	if code == http.StatusOK {
		pp.became[node] = append(pp.became[node], now)
	}
}

func (pp *primaryPoller) Stop() {
	pp.once.Do(func() { close(pp.stop) })
	<-pp.done
}

// waitNew waits until a node other than old answers 200 and returns it and when it started.
func (pp *primaryPoller) waitNew(t testing.TB, old string, d time.Duration) (string, time.Time) {
	t.Helper()
	var who string
	var at time.Time
	Eventually(t, d, 50*time.Millisecond, "a node other than "+old+" answering 200 on GET /primary", func() (bool, string) {
		pp.mu.Lock()
		defer pp.mu.Unlock()
		for n, code := range pp.current {
			if n != old && code == http.StatusOK {
				who, at = n, pp.became[n][len(pp.became[n])-1]
				return true, ""
			}
		}
		return false, fmt.Sprint(pp.current)
	})
	return who, at
}

// promotedNear reports whether at lies within [became-before, became+after] for one of the
// times node started answering 200 on /primary, and how long after that time.
func (pp *primaryPoller) promotedNear(node string, at time.Time, before, after time.Duration) (time.Duration, bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for _, b := range pp.became[node] {
		if !at.Before(b.Add(-before)) && !at.After(b.Add(after)) {
			return at.Sub(b), true
		}
	}
	return 0, false
}

func (pp *primaryPoller) Timeline(t testing.TB) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	var b strings.Builder
	for _, e := range pp.events {
		fmt.Fprintf(&b, "\n  %s  %-14s %s", e.At.Format("15:04:05.000"), e.Node, e.Outcome)
	}
	t.Logf("GET /primary per node, changes:%s", b.String())
}

// ---------------------------------------------------------------------------------------------
// sysbench through the write port

type sbReport struct {
	N        int
	Arrived  time.Time
	TPS, Err float64
}

type sysbenchRun struct {
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once

	mu         sync.Mutex
	lines      []sbReport
	reconnects []time.Time
	fatal      map[string]int // driver's FATAL lines by error
	tail       []string
	err        error
}

var (
	sbLineRe  = regexp.MustCompile(`^\[ *(\d+)s \] thds: \d+ tps: ([\d.]+) qps: [\d.]+ \(r/w/o: [\d./]+\) lat \(ms,95%\): [\d.]+ err/s: ([\d.]+) reconn/s: [\d.]+`)
	sbFatalRe = regexp.MustCompile(`returned error (\d+)|unable to connect`)
)

// sysbenchConfig writes sysbench's connection options to a file (the password stays out of
// argv) and returns its path.
func sysbenchConfig(t testing.TB, p *Project, dir string) string {
	t.Helper()
	cfg := filepath.Join(dir, "sysbench.cfg")
	body := fmt.Sprintf("db-driver=mysql\nmysql-host=127.0.0.1\nmysql-port=%d\nmysql-user=%s\nmysql-password=%s\nmysql-db=%s\ntables=2\ntable-size=1000\n",
		p.WritePort, p.AppUser, p.AppPassword, p.AppDB)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startSysbench prepares two small tables through the write port and starts
// oltp_write_only (4 threads, a report per second) through it.
func startSysbench(t *testing.T, p *Project, dir string) *sysbenchRun {
	t.Helper()
	cfg := sysbenchConfig(t, p, dir)
	if out, err := run(context.Background(), 3*time.Minute, nil, dir, "sysbench", "--config-file="+cfg, "oltp_write_only", "prepare"); err != nil {
		t.Fatalf("sysbench prepare through 127.0.0.1:%d: %v\n%s", p.WritePort, err, out)
	}
	lua := filepath.Join(dir, "failover_write.lua")
	if err := os.WriteFile(lua, []byte(sysbenchLua), 0o644); err != nil {
		t.Fatal(err)
	}
	// --time is only a bound: the test interrupts it when the faults are done.
	cmd := exec.Command("sysbench", "--config-file="+cfg, "--threads=4", "--time=1800", "--report-interval=1",
		"--mysql-ignore-errors="+sysbenchIgnored, lua, "run")
	cmd.Dir = dir
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	sb := &sysbenchRun{cmd: cmd, done: make(chan struct{}), fatal: map[string]int{}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sysbench: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			sb.line(sc.Text(), time.Now())
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		sb.mu.Lock()
		sb.err = err
		sb.mu.Unlock()
		close(sb.done)
	}()
	t.Cleanup(sb.Stop)
	return sb
}

func (sb *sysbenchRun) line(l string, at time.Time) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if m := sbLineRe.FindStringSubmatch(l); m != nil {
		n, _ := strconv.Atoi(m[1])
		tps, _ := strconv.ParseFloat(m[2], 64)
		errs, _ := strconv.ParseFloat(m[3], 64)
		sb.lines = append(sb.lines, sbReport{N: n, Arrived: at, TPS: tps, Err: errs})
		return
	}
	if strings.HasPrefix(l, "RECONNECTED") {
		sb.reconnects = append(sb.reconnects, at)
		return
	}
	if m := sbFatalRe.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "FATAL") {
		k := "unable to connect"
		if m[1] != "" {
			k = "error " + m[1]
		}
		sb.fatal[k]++
		return
	}
	if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "(last message repeated") {
		sb.tail = append(sb.tail, l)
		if len(sb.tail) > 40 {
			sb.tail = sb.tail[1:]
		}
	}
}

// Stop interrupts sysbench (idempotent) and waits for it to end.
func (sb *sysbenchRun) Stop() {
	sb.once.Do(func() {
		_ = sb.cmd.Process.Signal(os.Interrupt)
		select {
		case <-sb.done:
		case <-time.After(10 * time.Second):
			_ = sb.cmd.Process.Kill()
		}
	})
	<-sb.done
}

func (sb *sysbenchRun) Lines() []sbReport {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return append([]sbReport(nil), sb.lines...)
}

func (sb *sysbenchRun) Summary() string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return fmt.Sprintf("%d reconnects; driver errors logged: %v", len(sb.reconnects), sb.fatal)
}

// waitTPS waits until n reports arrived after since with transactions in each (sysbench must
// be running: its end fails the test with its last words).
func (sb *sysbenchRun) waitTPS(t testing.TB, n int, since time.Time, d time.Duration) {
	t.Helper()
	Eventually(t, d, 100*time.Millisecond, fmt.Sprintf("%d sysbench seconds with transactions", n), func() (bool, string) {
		select {
		case <-sb.done:
			sb.mu.Lock()
			defer sb.mu.Unlock()
			t.Fatalf("sysbench ended (%v); its last lines:\n%s", sb.err, strings.Join(sb.tail, "\n"))
		default:
		}
		got := 0
		for _, l := range sb.Lines() {
			if l.Arrived.After(since) && l.TPS > 0 && l.N > 1 {
				got++
			}
		}
		return got >= n, fmt.Sprintf("%d", got)
	})
}

// origin is the wall-clock instant of sysbench's second 0: report N covers (origin+N-1 s,
// origin+N s] and arrives just after its end, never before.
func origin(lines []sbReport) time.Time {
	var o time.Time
	for _, l := range lines {
		c := l.Arrived.Add(-time.Duration(l.N) * time.Second)
		if o.IsZero() || c.Before(o) {
			o = c
		}
	}
	return o
}

type sbGap struct {
	zeroSeconds int           // the longest run of reports with no transaction
	estimate    time.Duration // that run plus the missing fraction of the seconds around it
	steady      float64       // median tps in the 10 s before the fault
	errors      int           // errors reported from the fault to the end of the window
	reconnects  int
}

// gap measures the fault at t0 in the reports covering [t0, until].
func (sb *sysbenchRun) gap(t0, until time.Time) sbGap {
	lines := sb.Lines()
	o := origin(lines)
	first := int(t0.Sub(o)/time.Second) + 1 // the report covering t0
	last := int(until.Sub(o)/time.Second) + 1
	var before []float64
	byN := map[int]sbReport{}
	for _, l := range lines {
		byN[l.N] = l
		if l.N < first && l.N >= first-10 {
			before = append(before, l.TPS)
		}
	}
	var g sbGap
	sort.Float64s(before)
	if len(before) > 0 {
		g.steady = before[len(before)/2]
	}
	missing := func(n int) float64 { // the fraction of second n without transactions
		l, ok := byN[n]
		if !ok || g.steady <= 0 {
			return 0
		}
		return max(0, 1-l.TPS/g.steady)
	}
	runStart, runLen, bestStart := 0, 0, 0
	minN := first
	for n := first; n <= last; n++ {
		l, ok := byN[n]
		if !ok {
			continue
		}
		g.errors += int(l.Err + 0.5)
		if l.TPS < byN[minN].TPS {
			minN = n
		}
		if l.TPS == 0 {
			if runLen == 0 || runStart+runLen != n {
				runStart, runLen = n, 0
			}
			runLen++
			if runLen > g.zeroSeconds {
				g.zeroSeconds, bestStart = runLen, runStart
			}
		}
	}
	est := 0.0
	if g.zeroSeconds > 0 {
		est = float64(g.zeroSeconds) + missing(bestStart-1) + missing(bestStart+g.zeroSeconds)
	} else {
		// A gap under a second spans at most two reports: the slowest and a neighbour.
		est = missing(minN) + max(missing(minN-1), missing(minN+1))
	}
	g.estimate = time.Duration(est * float64(time.Second))
	sb.mu.Lock()
	for _, r := range sb.reconnects {
		if !r.Before(t0) && !r.After(until) {
			g.reconnects++
		}
	}
	sb.mu.Unlock()
	return g
}

func (sb *sysbenchRun) meanTPS() float64 {
	lines := sb.Lines()
	if len(lines) == 0 {
		return 0
	}
	sum := 0.0
	for _, l := range lines {
		sum += l.TPS
	}
	return sum / float64(len(lines))
}

// logAround logs the reports covering [from, to].
func (sb *sysbenchRun) logAround(t testing.TB, what string, from, to time.Time) {
	lines := sb.Lines()
	o := origin(lines)
	var b strings.Builder
	for _, l := range lines {
		end := o.Add(time.Duration(l.N) * time.Second)
		if end.Before(from) || end.Add(-time.Second).After(to) {
			continue
		}
		fmt.Fprintf(&b, "\n  %s-%s  [%4ds] tps %7.1f  err/s %6.1f", end.Add(-time.Second).Format("15:04:05.000"), end.Format("05.000"), l.N, l.TPS, l.Err)
	}
	t.Logf("sysbench around %s:%s", what, b.String())
}

// ---------------------------------------------------------------------------------------------
// Go clients through HAProxy: a writer and a reader, each on a new connection every time

func frontDB(t testing.TB, p *Project, port int) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = p.AppUser, p.AppPassword, p.AppDB
	cfg.Net, cfg.Addr = "tcp", fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, time.Second, time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mysql connector: %v", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(0) // a new connection each time: HAProxy picks the server anew
	return db
}

const frontTable = "front_probe"

type frontWriter struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	acks   []Ack
	failed []event // event.Outcome: the error's kind
}

func startFrontWriter(t *testing.T, p *Project) *frontWriter {
	t.Helper()
	w := &frontWriter{db: frontDB(t, p, p.WritePort), stop: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := w.db.ExecContext(ctx, "CREATE TABLE "+frontTable+" (id BIGINT PRIMARY KEY, node VARCHAR(64) NOT NULL, at DATETIME(6) NOT NULL)"); err != nil {
		t.Fatalf("create %s through 127.0.0.1:%d: %v", frontTable, p.WritePort, err)
	}
	go w.run()
	t.Cleanup(w.Stop)
	return w
}

func (w *frontWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for id := int64(1); ; id++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		sent := time.Now()
		_, err := w.db.ExecContext(ctx, "INSERT INTO "+frontTable+" VALUES (?, @@hostname, NOW(6))", id)
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acks = append(w.acks, Ack{ID: id, Sent: sent, At: now})
		} else {
			w.failed = append(w.failed, event{At: now, Outcome: outcome(ctx, err)})
		}
		w.mu.Unlock()
		cancel()
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

func (w *frontWriter) Stop() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	w.db.Close()
}

// waitAck waits for a write acknowledged after since.
func (w *frontWriter) waitAck(t testing.TB, since time.Time, d time.Duration) {
	t.Helper()
	Eventually(t, d, 50*time.Millisecond, "a write through HAProxy acknowledged", func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acks) > 0 && w.acks[len(w.acks)-1].At.After(since), ""
	})
}

type failures struct {
	total  int
	byKind map[string]int
}

// gap is the longest time between two acknowledgements around [t0, until] (from the last one
// before t0 to the first one after until), with the failed writes in between.
func (w *frontWriter) gap(t0, until time.Time) (time.Duration, failures) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := failures{byKind: map[string]int{}}
	var gap time.Duration
	prev := t0
	for _, a := range w.acks {
		if !a.At.After(t0) {
			prev = a.At
			continue
		}
		if d := a.At.Sub(prev); d > gap {
			gap = d
		}
		prev = a.At
		if a.At.After(until) {
			break
		}
	}
	for _, e := range w.failed {
		if e.At.After(t0) && !e.At.After(until) {
			f.total++
			f.byKind[e.Outcome]++
		}
	}
	return gap, f
}

// verify checks that every acknowledged write is on node.
func (w *frontWriter) verify(t testing.TB, p *Project, node Node) (checked, lost int) {
	t.Helper()
	ids, err := p.IDs(node, frontTable)
	if err != nil {
		t.Fatalf("reading %s on %s: %v", frontTable, node, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var missing []int64
	for _, a := range w.acks {
		checked++
		if !ids[a.ID] {
			missing = append(missing, a.ID)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d writes acknowledged through HAProxy missing on %s: %v", len(missing), node, missing)
	}
	return checked, len(missing)
}

type frontRead struct {
	At   time.Time
	Host string
	RO   bool
	Err  string
}

type frontReader struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	reads []frontRead
}

func startFrontReader(t *testing.T, p *Project) *frontReader {
	r := &frontReader{db: frontDB(t, p, p.ReadPort), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	t.Cleanup(r.Stop)
	return r
}

func (r *frontReader) run() {
	defer close(r.done)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var rd frontRead
		var ro int
		err := r.db.QueryRowContext(ctx, "SELECT @@hostname, @@global.read_only").Scan(&rd.Host, &ro)
		rd.At, rd.RO = time.Now(), ro == 1
		if err != nil {
			rd.Err = outcome(ctx, err)
		}
		cancel()
		r.mu.Lock()
		r.reads = append(r.reads, rd)
		r.mu.Unlock()
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
	}
}

func (r *frontReader) Stop() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	r.db.Close()
}

type readStats struct {
	total, failed, writable, late int
	gap                           time.Duration
}

// check fails the test for a read answered by a writable server that had not just been
// promoted (GET /primary turned 200 more than readGrace before, or never), and logs the
// reads per node and the reads answered by a writable server.
func (r *frontReader) check(t testing.TB, pp *primaryPoller) readStats {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var st readStats
	perHost := map[string]int{}
	errs := map[string]int{}
	var lastOK time.Time
	var b strings.Builder
	for _, rd := range r.reads {
		st.total++
		if rd.Err != "" {
			st.failed++
			errs[rd.Err]++
			continue
		}
		if !lastOK.IsZero() && rd.At.Sub(lastOK) > st.gap {
			st.gap = rd.At.Sub(lastOK)
		}
		lastOK = rd.At
		perHost[rd.Host]++
		if rd.RO {
			continue
		}
		st.writable++
		// Read-only is turned off as the node opens writes, a moment before its loop reports
		// it primary: allow a second before the poller saw 200, too.
		since, ok := pp.promotedNear(rd.Host, rd.At, time.Second, readGrace)
		if !ok {
			st.late++
			t.Errorf("a read through the read port at %s was answered by %s with read_only=0, not within %s of its promotion",
				rd.At.Format("15:04:05.000"), rd.Host, readGrace)
			continue
		}
		fmt.Fprintf(&b, "\n  %s  %s, %s after it said 200 on /primary", rd.At.Format("15:04:05.000"), rd.Host, since.Round(time.Millisecond))
	}
	t.Logf("reads through the read port: %d, answered per node %v, failed %v, longest gap between answers %s",
		st.total, perHost, errs, st.gap.Round(time.Millisecond))
	if st.writable > 0 {
		t.Logf("reads answered by a just-promoted primary (expected: HAProxy drops it from the read backend at its next checks):%s", b.String())
	}
	if st.total-st.failed == 0 {
		t.Errorf("no read through the read port succeeded")
	}
	return st
}
