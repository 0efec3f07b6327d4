package harness

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // driver for the test clients
)

// Test credentials: they must never show up in a node's log (AssertNoSecrets checks).
const (
	RootPassword = "root-Secret-4711"
	AppUser      = "app"
	AppPassword  = "app-Secret-4712"
	AppDatabase  = "appdb"
	ReplPassword = "repl-Secret-4713"
	// SnapshotKey seals the snapshots of a cluster with Snapshots on (snapshot.encrypt.key).
	SnapshotKey = "c25hcHNob3Qta2V5LW9mLXRoZS10ZXN0LWNsdXN0ZXI="
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// PilotBinary builds ./cmd/mysqlpilot once per test binary and returns its path.
func PilotBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mysqlpilot-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "mysqlpilot")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/mysqlpilot")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/mysqlpilot: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RepoFile reads a file of the repository, by its path from the top (e.g. "etc/x.hcl").
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), rel))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return string(b)
}

// ClusterOptions tune StartCluster.
type ClusterOptions struct {
	Nodes    int            // default 3
	SemiSync bool           // ha.semiSync
	HA       map[string]any // extra "ha" config fields, e.g. {"sessionTTL": "25s"}
	// Snapshots turns on the local snapshot backend in a directory all nodes share.
	Snapshots bool
	// Drills turns on restore drills (snapshot.verify) with Snapshots. Off otherwise: a drill's
	// throw-away server outlives a node killed with SIGKILL outside a container (in one, the
	// container's end takes it), and would load the machine during other scenarios.
	Drills bool
	Mutate func(i int, cfg map[string]any)
	// Consul: with Consul.Secure, Consul runs with ACLs (default deny) and TLS, and the nodes
	// reach it over HTTPS with the test's CA and client certificate and a token that holds
	// only ACLPolicy (HCL rules, required then), given to them as CONSUL_HTTP_TOKEN.
	Consul    ConsulOptions
	ACLPolicy string
}

// Cluster is a Consul dev agent and N mysqlpilot nodes, each supervising its own mariadbd.
type Cluster struct {
	t      testing.TB
	o      ClusterOptions
	bin    string
	base   string
	Consul *Consul
	Nodes  []*PilotNode
	// Token is the nodes' Consul ACL token (ClusterOptions.Consul.Secure), a secret like the
	// passwords: AssertNoSecrets looks for it too.
	Token string
}

// PilotNode is one mysqlpilot process and its mariadbd.
type PilotNode struct {
	t       testing.TB
	Name    string
	Dir     string
	Port    int
	Config  string
	LogPath string
	// Metrics is the node's HTTP listener (role endpoints, /cluster, /metrics) on loopback.
	Metrics string
	cmd     *exec.Cmd
	done    chan struct{}
	bin     string
	env     []string // what the node's mysqlpilot gets beside the test's environment
	mu      sync.Mutex
	exit    error
}

// StartCluster starts Consul and the nodes at once, as `docker-compose scale` would.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	c := &Cluster{t: t, o: o, bin: PilotBinary(t), base: t.TempDir(), Consul: StartConsulWith(t, o.Consul)}
	if o.Consul.Secure {
		if o.ACLPolicy == "" {
			t.Fatal("harness: ClusterOptions.Consul.Secure needs ACLPolicy")
		}
		c.Token = c.Consul.CreateToken("mysqlpilot", o.ACLPolicy)
	}
	for i := 1; i <= o.Nodes; i++ {
		c.newNode(i)
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.Kill()
		}
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("---- %s log (last lines) ----\n%s", n.Name, tail(n.LogPath, 60))
			}
		}
	})
	return c
}

// AddNode starts one more node, as `docker-compose scale` does later in a cluster's life.
func (c *Cluster) AddNode() *PilotNode {
	n := c.newNode(len(c.Nodes) + 1)
	n.Start()
	return n
}

func (c *Cluster) newNode(i int) *PilotNode {
	t, o, base := c.t, c.o, c.base
	n := &PilotNode{t: t, Name: fmt.Sprintf("n%d", i), Dir: filepath.Join(base, fmt.Sprintf("n%d", i)), Port: FreePort(t), bin: c.bin,
		Metrics: Addr(FreePort(t))}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ha := map[string]any{"semiSync": o.SemiSync}
	for k, v := range o.HA {
		ha[k] = v
	}
	snapshots := map[string]any{"backend": "none"}
	if o.Snapshots {
		snapshots = map[string]any{"backend": "local", "interval": "6h", "encrypt": map[string]any{"key": "${SNAPSHOT_KEY}"},
			"verify": map[string]any{"enabled": o.Drills}}
	}
	n.env = []string{"MYSQL_ROOT_PASSWORD=" + RootPassword, "MYSQL_PASSWORD=" + AppPassword, "MYSQL_REPL_PASSWORD=" + ReplPassword, "SNAPSHOT_KEY=" + SnapshotKey}
	consulCfg := map[string]any{"address": c.Consul.HTTPAddr()}
	if c.Consul.Secure() {
		f := c.Consul.TLS()
		consulCfg = map[string]any{"address": "https://" + c.Consul.HTTPAddr(), "token": "${CONSUL_HTTP_TOKEN}",
			"caFile": f.CA, "certFile": f.ClientCert, "keyFile": f.ClientKey}
		n.env = append(n.env, "CONSUL_HTTP_TOKEN="+c.Token)
	}
	{
		cfg := map[string]any{
			"node":    n.Name,
			"consul":  consulCfg,
			"service": map[string]any{"port": n.Port, "interfaces": []string{"static:127.0.0.1"}},
			"mysql": map[string]any{
				"exec": []string{"mariadbd", "--user=root"}, "datadir": filepath.Join(n.Dir, "data"),
				"socket": filepath.Join(n.Dir, "mysqld.sock"), "configFile": filepath.Join(n.Dir, "my.cnf"),
				"rootPassword": "${MYSQL_ROOT_PASSWORD}", "user": AppUser, "password": "${MYSQL_PASSWORD}",
				"database": AppDatabase, "replPassword": "${MYSQL_REPL_PASSWORD}",
			},
			"ha":       ha,
			"snapshot": snapshots,
			"storage":  map[string]any{"local": map[string]any{"dir": filepath.Join(base, "snapshots")}},
			"control":  map[string]any{"socket": filepath.Join(n.Dir, "ctl.sock")},
			"metrics":  map[string]any{"listen": n.Metrics},
		}
		if o.Mutate != nil {
			o.Mutate(i, cfg)
		}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		n.Config = filepath.Join(n.Dir, "mysqlpilot.json")
		n.LogPath = filepath.Join(n.Dir, "mysqlpilot.log")
		if err := os.WriteFile(n.Config, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.Nodes = append(c.Nodes, n)
	return n
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var keep []string
	for _, l := range ls {
		if strings.Contains(l, "level=") { // mysqlpilot's lines, not mariadbd's
			keep = append(keep, l)
		}
	}
	if len(keep) > lines {
		keep = keep[len(keep)-lines:]
	}
	return strings.Join(keep, "\n")
}

// Start runs the node's mysqlpilot (again).
func (n *PilotNode) Start() {
	n.t.Helper()
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(n.bin, "run", "--config", n.Config)
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	n.cmd, n.done, n.exit = cmd, make(chan struct{}), nil
	done := n.done
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		n.mu.Lock()
		n.exit = err
		n.mu.Unlock()
		close(done)
	}()
}

// Running reports whether mysqlpilot runs.
func (n *PilotNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to mysqlpilot only.
func (n *PilotNode) Signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(sig)
	}
}

// MySQLPid is mariadbd's pid from its pid file, 0 when unknown.
func (n *PilotNode) MySQLPid() int {
	b, err := os.ReadFile(filepath.Join(n.Dir, "data", "mysqld.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Kill9 kills mysqlpilot and its mariadbd at once with SIGKILL (a host crash).
func (n *PilotNode) Kill9() {
	pid := n.MySQLPid()
	n.Signal(syscall.SIGKILL)
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	n.Wait(30 * time.Second)
	if pid > 0 {
		waitGone(pid, 30*time.Second)
	}
}

// Kill is the cleanup: SIGCONT in case it was stopped, then Kill9.
func (n *PilotNode) Kill() {
	n.Signal(syscall.SIGCONT)
	n.Kill9()
}

// Wait waits up to d for mysqlpilot to exit and returns its exit code (-1 if it did not).
func (n *PilotNode) Wait(d time.Duration) int {
	n.mu.Lock()
	done, cmd := n.done, n.cmd
	n.mu.Unlock()
	if done == nil {
		return -1
	}
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

func waitGone(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DB opens a connection pool to the node as the application user, with short timeouts.
func (n *PilotNode) DB() *sql.DB {
	dsn := fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s?timeout=1s&readTimeout=2s&writeTimeout=2s", AppUser, AppPassword, n.Port, AppDatabase)
	db, _ := sql.Open("mysql", dsn)
	db.SetMaxOpenConns(2)
	db.SetConnMaxLifetime(time.Minute)
	return db
}

// Status is the node's control-socket status (decoded loosely).
type Status struct {
	Node     string `json:"node"`
	Role     string `json:"role"`
	Healthy  bool   `json:"healthy"`
	Action   string `json:"action"`
	Holder   string `json:"holder"`
	Writable bool   `json:"writable"`
	Alone    bool   `json:"alone"`
	Error    string `json:"error"`
}

// Status asks the node's control socket; ok is false when it does not answer.
func (n *PilotNode) Status() (Status, bool) {
	sock := filepath.Join(n.Dir, "ctl.sock")
	// One transport per call, without keep-alive: nothing is left open behind it.
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://x/status")
	if err != nil {
		return Status{}, false
	}
	defer resp.Body.Close()
	var st Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return Status{}, false
	}
	return st, true
}

// Control runs a CLI subcommand of the node's binary against its control socket.
func (n *PilotNode) Control(args ...string) (string, error) {
	args = append(args, "--socket", filepath.Join(n.Dir, "ctl.sock"))
	out, err := exec.Command(n.bin, args...).CombinedOutput()
	return string(out), err
}

// Log returns the node's log so far.
func (n *PilotNode) Log() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// Eventually polls cond every 50ms until it holds or d passes; it returns how long it took.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Node returns the node called name (nil when none).
func (c *Cluster) Node(name string) *PilotNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Primary returns the node whose status says primary and writable, or nil.
func (c *Cluster) Primary() *PilotNode {
	var found *PilotNode
	for _, n := range c.Nodes {
		if st, ok := n.Status(); ok && st.Role == "primary" && st.Writable && st.Healthy {
			if found != nil {
				return nil // two claim it: not settled
			}
			found = n
		}
	}
	return found
}

// WaitSettled waits until exactly one healthy primary and want-1 healthy replicas report.
func (c *Cluster) WaitSettled(t testing.TB, want int, d time.Duration) *PilotNode {
	t.Helper()
	var p *PilotNode
	Eventually(t, d, fmt.Sprintf("one primary and %d healthy replicas", want-1), func() bool {
		p = c.Primary()
		if p == nil {
			return false
		}
		healthy := 0
		for _, n := range c.Nodes {
			if st, ok := n.Status(); ok && st.Healthy && st.Holder == p.Name {
				healthy++
			}
		}
		return healthy == want
	})
	return p
}

// AssertNoSecrets fails when a password or the snapshot key shows up where it must not: any
// node's log, the argv or environment of any process under a node's mysqlpilot (mariadbd,
// tools, jobs), Consul's KV (keys and decoded values) and health checks (notes, outputs), and
// each node's /metrics and /cluster.
func (c *Cluster) AssertNoSecrets(t testing.TB) {
	t.Helper()
	secrets := [][]byte{[]byte(RootPassword), []byte(AppPassword), []byte(ReplPassword), []byte(SnapshotKey)}
	if c.Token != "" {
		secrets = append(secrets, []byte(c.Token))
	}
	check := func(where string, b []byte) {
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s contains a secret (a password, the snapshot key or the Consul token)", where)
			}
		}
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func(url string) []byte {
		resp, err := hc.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	checked := 0
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.LogPath)
		check(n.Name+"'s log", b)
		if !n.Running() {
			continue
		}
		for _, pid := range descendants(n.pid()) {
			for _, f := range []string{"cmdline", "environ"} {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
				if err == nil {
					check(fmt.Sprintf("%s's process %d (%s)", n.Name, pid, f), b)
					checked++
				}
			}
		}
		check(n.Name+"'s /metrics", get("http://"+n.Metrics+"/metrics"))
		check(n.Name+"'s /cluster", get("http://"+n.Metrics+"/cluster"))
	}
	consulGet := func(path string) []byte {
		b, err := c.Consul.Get(path)
		if err != nil {
			t.Errorf("consul: %v", err)
		}
		return b
	}
	// KV values come base64-encoded: decode each before looking.
	var kv []struct {
		Key   string
		Value []byte
	}
	if err := json.Unmarshal(consulGet("/v1/kv/?recurse"), &kv); err != nil || len(kv) == 0 {
		t.Errorf("Consul's KV: %d keys, %v", len(kv), err)
	}
	for _, e := range kv {
		check("Consul's KV key "+e.Key, append([]byte(e.Key+" "), e.Value...))
	}
	check("Consul's health checks", consulGet("/v1/health/state/any"))
	if checked == 0 {
		t.Error("no process of any node was checked for passwords")
	}
}

// pid is the node's mysqlpilot process (0 when not running).
func (n *PilotNode) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// descendants returns the children, grandchildren, ... of pid (from /proc), excluding pid
// itself, whose environment holds what its parent passed on purpose (the test's passwords).
func descendants(root int) []int {
	if root == 0 {
		return nil
	}
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; take what follows the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	for pid := range parent {
		for p := parent[pid]; p != 0 && p != 1; p = parent[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
