package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// Fault is a way of losing the primary.
type Fault string

// The faults. NetCut is an emulation on loopback: both mysqlpilot and mariadbd of the node
// are SIGSTOPped, so the host stops answering (Consul sees no check updates, clients and
// replicas get no replies) without touching the network shared with the other engineers.
const (
	Kill9   Fault = "kill9"   // SIGKILL mysqlpilot and mariadbd (host crash)
	Stop    Fault = "sigstop" // SIGSTOP mysqlpilot only; its mariadbd keeps running
	Term    Fault = "sigterm" // SIGTERM mysqlpilot (docker stop): graceful handover
	NetCut  Fault = "netcut"  // SIGSTOP mysqlpilot and mariadbd (emulated network cut)
	Unknown Fault = ""
)

// Faults in the order the bench reports them.
var Faults = []Fault{Kill9, Stop, Term, NetCut}

// Describe is a fault's table label.
func (f Fault) Describe() string {
	switch f {
	case Kill9:
		return "kill -9 (mysqlpilot + mariadbd)"
	case Stop:
		return "SIGSTOP mysqlpilot only"
	case Term:
		return "SIGTERM (graceful handover)"
	case NetCut:
		return "network cut (emulated: SIGSTOP mysqlpilot + mariadbd)"
	}
	return string(f)
}

// Injected is a fault in effect on a node; Heal ends it.
type Injected struct {
	Fault    Fault
	Node     *harness.PilotNode
	mysqlPid int
	At       time.Time
}

// Inject puts fault on n and returns when it is in effect.
func Inject(n *harness.PilotNode, fault Fault) (*Injected, error) {
	in := &Injected{Fault: fault, Node: n, mysqlPid: n.MySQLPid()}
	switch fault {
	case Kill9:
		in.At = time.Now()
		n.Kill9() // returns once both are gone
	case Stop:
		in.At = time.Now()
		n.Signal(syscall.SIGSTOP)
	case Term:
		in.At = time.Now()
		n.Signal(syscall.SIGTERM)
	case NetCut:
		if in.mysqlPid <= 0 {
			return nil, fmt.Errorf("%s: mariadbd pid unknown", n.Name)
		}
		in.At = time.Now()
		if err := syscall.Kill(in.mysqlPid, syscall.SIGSTOP); err != nil {
			return nil, fmt.Errorf("SIGSTOP mariadbd of %s: %w", n.Name, err)
		}
		n.Signal(syscall.SIGSTOP)
	default:
		return nil, fmt.Errorf("unknown fault %q", fault)
	}
	return in, nil
}

// Heal ends the fault: restart a killed or stopped node, continue a stopped one.
func (in *Injected) Heal() error {
	n := in.Node
	switch in.Fault {
	case Kill9:
		n.Start()
	case Stop:
		n.Signal(syscall.SIGCONT)
	case Term:
		if code := n.Wait(90 * time.Second); code != 0 {
			return fmt.Errorf("%s: mysqlpilot exited %d after SIGTERM, want 0", n.Name, code)
		}
		n.Start()
	case NetCut:
		_ = syscall.Kill(in.mysqlPid, syscall.SIGCONT)
		n.Signal(syscall.SIGCONT)
	}
	return nil
}

// Settled waits up to d for exactly one healthy writable primary and want-1 healthy replicas
// of it, like harness.Cluster.WaitSettled but returning an error instead of failing. A node
// that stays quarantined (errant transactions: it waits for a re-seed that only a snapshot
// restore can do) for 5s means the cluster will not settle: it returns a *QuarantineError
// at once then.
func Settled(c *harness.Cluster, want int, d time.Duration) (*harness.PilotNode, error) {
	if want != len(c.Nodes) {
		return nil, fmt.Errorf("Settled: want %d of %d nodes: use SettledAmong", want, len(c.Nodes))
	}
	return SettledAmong(c, c.Nodes, d)
}

// QuarantineError says which nodes are quarantined.
type QuarantineError struct {
	Nodes []*harness.PilotNode
	State string
}

func (e *QuarantineError) Error() string {
	var names []string
	for _, n := range e.Nodes {
		names = append(names, n.Name)
	}
	return fmt.Sprintf("cluster cannot settle: %s quarantined (errant transactions, waiting for a re-seed): %s", strings.Join(names, ","), e.State)
}

// SettledAmong waits up to d until one of nodes is a healthy writable primary and every other
// one of nodes a healthy replica of it (nodes outside the list are ignored). It returns a
// *QuarantineError as soon as one of nodes has stayed quarantined for 5s.
func SettledAmong(c *harness.Cluster, nodes []*harness.PilotNode, d time.Duration) (*harness.PilotNode, error) {
	var p *harness.PilotNode
	since := map[string]time.Time{}
	var stuck []*harness.PilotNode
	err := UntilEvery(d, 100*time.Millisecond, func() bool {
		var found *harness.PilotNode
		healthy := 0
		statuses := map[string]harness.Status{}
		for _, n := range nodes {
			st, ok := Status(n)
			if !ok {
				delete(since, n.Name)
				continue
			}
			statuses[n.Name] = st
			if strings.HasPrefix(st.Action, "Quarantine") {
				if since[n.Name].IsZero() {
					since[n.Name] = time.Now()
				}
				if time.Since(since[n.Name]) > 5*time.Second {
					stuck = append(stuck, n)
				}
			} else {
				delete(since, n.Name)
			}
			if st.Role == "primary" && st.Writable && st.Healthy {
				if found != nil {
					return false // two claim it: not settled
				}
				found = n
			}
		}
		if len(stuck) > 0 {
			return true
		}
		if found == nil {
			return false
		}
		for _, n := range nodes {
			if st, ok := statuses[n.Name]; ok && st.Healthy && st.Holder == found.Name {
				healthy++
			}
		}
		p = found
		return healthy == len(nodes)
	})
	if len(stuck) > 0 {
		return nil, &QuarantineError{Nodes: stuck, State: Describe(c)}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster not settled (one primary, %d healthy replicas) within %s: %s", len(nodes)-1, d, Describe(c))
	}
	return p, nil
}

// Describe is one line per node: role, health, action, error.
func Describe(c *harness.Cluster) string {
	var b strings.Builder
	for _, n := range c.Nodes {
		st, ok := Status(n)
		if !ok {
			fmt.Fprintf(&b, "[%s: no status] ", n.Name)
			continue
		}
		fmt.Fprintf(&b, "[%s: role=%q healthy=%v writable=%v holder=%q action=%q err=%q] ", n.Name, st.Role, st.Healthy, st.Writable, st.Holder, st.Action, st.Error)
	}
	return b.String()
}

// Quarantined returns the nodes whose status says they hold errant transactions.
func Quarantined(c *harness.Cluster) []*harness.PilotNode {
	var out []*harness.PilotNode
	for _, n := range c.Nodes {
		if st, ok := Status(n); ok && strings.HasPrefix(st.Action, "Quarantine") {
			out = append(out, n)
		}
	}
	return out
}

// PilotPid is the pid of n's mysqlpilot, found as the parent of its mariadbd (0 if unknown).
func PilotPid(n *harness.PilotNode) int {
	pid := n.MySQLPid()
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			p, _ := strconv.Atoi(strings.TrimSpace(v))
			return p
		}
	}
	return 0
}

// statusClients keeps one HTTP client per control socket. harness.PilotNode.Status makes a
// new http.Transport on every call and never closes its keep-alive connection, so polling it
// leaks one file descriptor per call (20000 of them in about a minute of 20ms polling of
// three nodes, after which nothing can be opened); these clients reuse their connection.
var (
	statusMu      sync.Mutex
	statusClients = map[string]*http.Client{}
)

// Status asks n's control socket, as harness.PilotNode.Status does, without leaking.
func Status(n *harness.PilotNode) (harness.Status, bool) {
	sock := filepath.Join(n.Dir, "ctl.sock")
	statusMu.Lock()
	c := statusClients[sock]
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}}}
		statusClients[sock] = c
	}
	statusMu.Unlock()
	resp, err := c.Get("http://x/status")
	if err != nil {
		return harness.Status{}, false
	}
	defer resp.Body.Close()
	var st harness.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return harness.Status{}, false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return st, true
}

// Primary returns the node whose status says primary, writable and healthy, or nil (also nil
// when two say so), as harness.Cluster.Primary does.
func Primary(c *harness.Cluster) *harness.PilotNode {
	var found *harness.PilotNode
	for _, n := range c.Nodes {
		if st, ok := Status(n); ok && st.Role == "primary" && st.Writable && st.Healthy {
			if found != nil {
				return nil
			}
			found = n
		}
	}
	return found
}

// ExitReseed is mysqlpilot's exit code when a node with errant transactions asks to be
// restarted and re-seeded from the latest snapshot.
const ExitReseed = 75

// ExitRestart is mysqlpilot's exit code when its fence killed mysqld to drop commits nobody
// acknowledged: restarted, the node rejoins without a re-seed.
const ExitRestart = 76

// Restarter plays the container runtime's restart policy for exit codes 75 and 76: a node
// that exits asking for a re-seed is started again (and restores the latest snapshot); one
// whose fence killed mysqld is started again (and drops what nobody acknowledged). Other exits
// are the bench's own faults and are left to it.
type Restarter struct {
	c    *harness.Cluster
	logf func(string, ...any)
	mu   sync.Mutex
	n    int // re-seed restarts
	m    int // restarts to drop unacknowledged commits
	stop chan struct{}
	done chan struct{}
}

// StartRestarter watches c's nodes every 200ms.
func StartRestarter(c *harness.Cluster, logf func(string, ...any)) *Restarter {
	r := &Restarter{c: c, logf: logf, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			for _, n := range c.Nodes {
				if n.Running() {
					continue
				}
				switch code := n.Wait(time.Second); code {
				case ExitReseed:
					r.logf("%s exited %d (re-seed requested): starting it again", n.Name, code)
					n.Start()
					r.mu.Lock()
					r.n++
					r.mu.Unlock()
				case ExitRestart:
					r.logf("%s exited %d (mysqld killed to drop unacknowledged commits): starting it again", n.Name, code)
					n.Start()
					r.mu.Lock()
					r.m++
					r.mu.Unlock()
				}
			}
		}
	}()
	return r
}

// Restarts is how many re-seed restarts it made.
func (r *Restarter) Restarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Rejoins is how many restarts it made for nodes that dropped unacknowledged commits.
func (r *Restarter) Rejoins() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m
}

// Stop stops watching (idempotent).
func (r *Restarter) Stop() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// WaitSnapshot waits until n's log says a snapshot was published (the cluster then has one
// to re-seed or bootstrap from).
func WaitSnapshot(n *harness.PilotNode, d time.Duration) error {
	return UntilEvery(d, 200*time.Millisecond, func() bool { return strings.Contains(n.Log(), "snapshot published") })
}

// LogDir is where the logs of clusters that misbehaved are kept.
var LogDir = filepath.Join(os.TempDir(), "mpbench-logs")

// KeepLogs copies every node's log and Consul's log to a fresh directory under LogDir.
func KeepLogs(c *harness.Cluster, what string) (string, error) {
	if err := os.MkdirAll(LogDir, 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(LogDir, time.Now().Format("150405")+"-"+strings.ReplaceAll(what, "/", "-")+"-")
	if err != nil {
		return "", err
	}
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, copyFile(n.LogPath, filepath.Join(dir, n.Name+".log")))
	}
	errs = append(errs, copyFile(c.Consul.LogPath(), filepath.Join(dir, "consul.log")))
	return dir, errors.Join(errs...)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
