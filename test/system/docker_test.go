//go:build system

// Package system runs mysqlpilot the way users do: the repository's docker-compose.yml, real
// containers, docker and docker-compose on the command line. Each test brings up its own
// compose project (a unique COMPOSE_PROJECT_NAME, a free loopback port for Consul's UI, random
// passwords), injects one fault, and checks with a continuous writer that no acknowledged
// write is lost and that two nodes never acknowledge writes in the same round. The last test
// deploys the same file with `docker stack deploy` on a one-node swarm.
//
// Run with `make test-system` (builds the images first), or, once the images exist:
//
//	go test -tags system -count=1 -timeout 40m -v ./test/system/
//
// The host talks to MariaDB through the containers' addresses on the project's bridge network
// and to mysqlpilot through `docker exec`. Nothing outside the project is touched.
package system

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Images the tests run; `make images` builds them.
var (
	mysqlImage   = envOr("MYSQLPILOT_IMAGE", "mysqlpilot/mysql:latest")
	consulImage  = "mysqlpilot/consul:1.16.3"
	haproxyImage = envOr("HAPROXY_IMAGE", "mysqlpilot/haproxy:latest")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// repoRoot is the repository root (this file is test/system/docker_test.go).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// run runs a command with a deadline and returns its stdout; the error carries stderr.
func run(ctx context.Context, d time.Duration, env []string, dir string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", d)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(redactArgs(args), " "), err, strings.TrimSpace(lastLines(stderr.String(), 20)))
	}
	return stdout.String(), nil
}

func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if k, _, ok := strings.Cut(a, "="); ok && (strings.Contains(strings.ToUpper(k), "PASSWORD") || strings.Contains(strings.ToUpper(k), "PWD")) {
			a = k + "=***"
		}
		out[i] = a
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// docker runs the docker CLI (bounded).
func docker(d time.Duration, args ...string) (string, error) {
	return run(context.Background(), d, nil, "", "docker", args...)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freePort returns a TCP port free on 127.0.0.1 right now (for Consul's published UI port).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// preflight fails the test at once, plainly, when docker or the images are missing.
func preflight(t testing.TB) {
	t.Helper()
	preflightOnce.Do(func() {
		if _, err := docker(30*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
			preflightErr = fmt.Errorf("docker daemon not reachable (start it, then retry): %v", err)
			return
		}
		if _, err := exec.LookPath("docker-compose"); err != nil {
			preflightErr = fmt.Errorf("docker-compose not found on PATH (1.29 works)")
			return
		}
		for _, img := range []string{mysqlImage, consulImage, haproxyImage} {
			if _, err := docker(30*time.Second, "image", "inspect", "-f", "{{.Id}}", img); err != nil {
				preflightErr = fmt.Errorf("image %s is missing: build the images with `make images` (make test-system does)", img)
				return
			}
		}
	})
	if preflightErr != nil {
		t.Fatal(preflightErr)
	}
}

var (
	preflightOnce sync.Once
	preflightErr  error
)

// ---------------------------------------------------------------------------------------------
// Compose project

// Project is one deployment of the repository's docker-compose.yml (a compose project, or a
// swarm stack), owned by one test.
type Project struct {
	t          testing.TB
	Name       string
	Root       string
	ConsulPort int
	Env        map[string]string // extra environment for docker-compose (e.g. HA_SEMI_SYNC)

	// HAProxy's published ports on 127.0.0.1 (MYSQL_WRITE_PORT, MYSQL_READ_PORT): free ports,
	// so that projects never collide with each other or with a developer's `make up`.
	WritePort, ReadPort, PagePort int

	AppUser, AppPassword, AppDB, RootPassword, ReplPassword string
	// SnapshotKey seals the project's snapshots (a compose project: from its secrets dir).
	SnapshotKey string
	// Secrets is the directory of the secret files docker-compose.secrets.yml mounts, as
	// `make up` writes them (compose projects; a stack gets its passwords from the environment).
	Secrets string

	// Stack: deployed with `docker stack deploy` on a swarm instead of docker-compose.
	Stack bool

	mu      sync.Mutex
	dbs     map[string]*sqlDB // by container ID + address
	volumes map[string]bool   // every volume seen mounted in the project's containers
	downed  bool
}

var nameRe = regexp.MustCompile(`[^a-z0-9]+`)

// NewProject makes a compose project named after the test, with random passwords and a free
// port for Consul's UI. Its cleanup removes every container, network and volume of the project.
func NewProject(t testing.TB, env map[string]string) *Project {
	t.Helper()
	short := strings.Trim(nameRe.ReplaceAllString(strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), "-"), "-")
	if len(short) > 20 {
		short = short[:20]
	}
	p := newProject(t, "mpsys-"+short+"-"+randHex(3), env, false)
	t.Logf("compose project %s (Consul UI on 127.0.0.1:%d)", p.Name, p.ConsulPort)
	return p
}

// NewStack makes a project deployed with `docker stack deploy` (the swarm must be active);
// its cleanup removes the stack and its volumes.
func NewStack(t testing.TB, env map[string]string) *Project {
	t.Helper()
	p := newProject(t, "mpsys-stack-"+randHex(3), env, true)
	t.Logf("stack %s (Consul UI published on port %d)", p.Name, p.ConsulPort)
	return p
}

func newProject(t testing.TB, name string, env map[string]string, stack bool) *Project {
	t.Helper()
	preflight(t)
	p := &Project{
		t: t, Name: name, Root: repoRoot(), ConsulPort: freePort(t), WritePort: freePort(t), ReadPort: freePort(t), PagePort: freePort(t), Env: env, Stack: stack,
		AppUser: "app", AppPassword: randHex(12), AppDB: "app", RootPassword: randHex(12), ReplPassword: randHex(12),
		dbs: map[string]*sqlDB{}, volumes: map[string]bool{},
	}
	if !stack {
		// As `make up` does: the secrets as files, mounted by docker-compose.secrets.yml.
		p.Secrets, p.SnapshotKey = t.TempDir(), base64.StdEncoding.EncodeToString([]byte(randHex(16)))
		for name, v := range map[string]string{"mysql_root_password": p.RootPassword, "mysql_password": p.AppPassword,
			"mysql_repl_password": p.ReplPassword, "snapshot_key": p.SnapshotKey} {
			if err := os.WriteFile(filepath.Join(p.Secrets, name), []byte(v+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(p.Down)
	return p
}

// projectLabel selects every container of the project (both services).
func (p *Project) projectLabel() string {
	if p.Stack {
		return "label=com.docker.stack.namespace=" + p.Name
	}
	return "label=com.docker.compose.project=" + p.Name
}

// mysqlFilter selects the project's mysql containers.
func (p *Project) mysqlFilter() []string {
	if p.Stack {
		return []string{"--filter", "label=com.docker.swarm.service.name=" + p.Name + "_mysql"}
	}
	return []string{"--filter", "label=com.docker.compose.project=" + p.Name, "--filter", "label=com.docker.compose.service=mysql"}
}

// environ is the environment docker-compose runs with: the caller's, minus anything that
// would point it at another project or file, plus this project's settings.
func (p *Project) environ() []string {
	var env []string
	files := "docker-compose.yml"
	if f := p.Env["COMPOSE_FILE"]; f != "" {
		files = f
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "COMPOSE_"), strings.HasPrefix(k, "MYSQL_"), strings.HasPrefix(k, "HA_"),
			k == "CONSUL", k == "CONSUL_UI_PORT", k == "SNAPSHOT_BACKEND", k == "LOG_LEVEL", k == "HAPROXY_IMAGE",
			k == "SERVICE_NAME", k == "REPLICA_MAX_LAG":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"COMPOSE_PROJECT_NAME="+p.Name,
		"COMPOSE_HTTP_TIMEOUT=120",
		"CONSUL_UI_PORT="+strconv.Itoa(p.ConsulPort),
		"MYSQLPILOT_IMAGE="+mysqlImage,
		"HAPROXY_IMAGE="+haproxyImage,
		"MYSQL_WRITE_PORT="+strconv.Itoa(p.WritePort),
		"MYSQL_READ_PORT="+strconv.Itoa(p.ReadPort),
		"MYSQLPILOT_PAGE_PORT="+strconv.Itoa(p.PagePort),
		"MYSQL_USER="+p.AppUser,
		"MYSQL_DATABASE="+p.AppDB,
		// The run's TLS mode (MYSQL_TLS in the test's environment, else the compose default).
		"MYSQL_TLS="+tlsMode(),
	)
	if p.Secrets != "" {
		env = append(env, "COMPOSE_FILE="+files+":docker-compose.secrets.yml", "MYSQLPILOT_SECRETS="+p.Secrets)
	} else {
		env = append(env, "COMPOSE_FILE="+files, "MYSQL_ROOT_PASSWORD="+p.RootPassword, "MYSQL_PASSWORD="+p.AppPassword,
			"MYSQL_REPL_PASSWORD="+p.ReplPassword)
	}
	for k, v := range p.Env {
		if k != "COMPOSE_FILE" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Compose runs docker-compose in the project (bounded).
func (p *Project) Compose(d time.Duration, args ...string) (string, error) {
	return run(context.Background(), d, p.environ(), p.Root, "docker-compose", args...)
}

// MustCompose runs docker-compose and fails the test on error.
func (p *Project) MustCompose(d time.Duration, args ...string) string {
	p.t.Helper()
	out, err := p.Compose(d, args...)
	if err != nil {
		p.t.Fatalf("%v", err)
	}
	return out
}

// Up starts consul and n mysql containers (`up -d --scale mysql=n`); the images must exist.
func (p *Project) Up(n int) {
	p.t.Helper()
	p.MustCompose(5*time.Minute, "up", "-d", "--no-build", "--scale", fmt.Sprintf("mysql=%d", n))
}

// Down removes the project with its volumes (idempotent), including the anonymous datadir
// volumes of containers that a scale-down removed (docker-compose leaves those behind). On a
// failed test it first prints the containers' state and the end of their logs.
func (p *Project) Down() {
	p.mu.Lock()
	if p.downed {
		p.mu.Unlock()
		return
	}
	p.downed = true
	for _, db := range p.dbs {
		db.Close()
	}
	p.dbs = map[string]*sqlDB{}
	p.mu.Unlock()
	if p.t.Failed() || os.Getenv("SYSTEM_TEST_LOGS") != "" {
		p.dumpLogs()
	}
	// A paused container cannot be stopped: unpause first. Containers disconnected from the
	// network are removed with it.
	all := p.containers(true)
	for _, n := range all {
		if n.Paused {
			_, _ = docker(30*time.Second, "unpause", n.ID)
		}
	}
	start := time.Now()
	if p.Stack {
		p.stackDown()
	} else if _, err := p.Compose(5*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "20"); err != nil {
		p.t.Errorf("cleanup: %v", err)
		// Last resort: remove what carries the project label.
		if ids, _ := docker(time.Minute, "ps", "-aq", "--filter", p.projectLabel()); strings.TrimSpace(ids) != "" {
			_, _ = docker(2*time.Minute, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
		}
	}
	p.removeVolumes()
	p.t.Logf("project %s removed in %s", p.Name, time.Since(start).Round(100*time.Millisecond))
}

func (p *Project) dumpLogs() {
	if p.Stack {
		for _, svc := range []string{"consul", "mysql"} {
			out, _ := run(context.Background(), time.Minute, nil, "", "docker", "service", "logs", "--no-task-ids", "--tail", "80", p.Name+"_"+svc)
			p.t.Logf("docker service logs %s_%s (last 80 lines):\n%s", p.Name, svc, out)
		}
		return
	}
	if out, err := p.Compose(time.Minute, "ps"); err == nil {
		p.t.Logf("docker-compose ps:\n%s", out)
	}
	if out, err := p.Compose(2*time.Minute, "logs", "--no-color", "--tail=80"); err == nil {
		p.t.Logf("docker-compose logs (last 80 lines per container):\n%s", filterLogs(out))
	}
}

// stackDown removes the stack and waits (bounded) until its containers and network are gone.
func (p *Project) stackDown() {
	if _, err := docker(2*time.Minute, "stack", "rm", p.Name); err != nil {
		p.t.Errorf("cleanup: %v", err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		ids, _ := docker(30*time.Second, "ps", "-aq", "--filter", p.projectLabel())
		nets, _ := docker(30*time.Second, "network", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.Name)
		if strings.TrimSpace(ids) == "" && strings.TrimSpace(nets) == "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	p.t.Errorf("cleanup: stack %s still has containers or networks after 3 minutes", p.Name)
}

// removeVolumes removes the project's named volumes and every volume seen mounted in its
// containers that no container uses any more.
func (p *Project) removeVolumes() {
	named, _ := docker(30*time.Second, "volume", "ls", "-q", "--filter", "label="+p.volumeLabel())
	p.mu.Lock()
	vols := strings.Fields(named)
	for v := range p.volumes {
		vols = append(vols, v)
	}
	p.mu.Unlock()
	for _, v := range vols {
		if out, err := docker(30*time.Second, "volume", "inspect", "-f", "{{.Name}}", v); err != nil || strings.TrimSpace(out) == "" {
			continue // already gone
		}
		if _, err := docker(time.Minute, "volume", "rm", v); err != nil {
			p.t.Errorf("cleanup: %v", err)
		}
	}
}

func (p *Project) volumeLabel() string {
	if p.Stack {
		return "com.docker.stack.namespace=" + p.Name
	}
	return "com.docker.compose.project=" + p.Name
}

// filterLogs drops the noisiest lines of compose logs (Consul's agent chatter at info level).
func filterLogs(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "consul_1") && strings.Contains(l, "[DEBUG]") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// ---------------------------------------------------------------------------------------------
// Containers

// Node is one mysql container of the project.
type Node struct {
	ID        string // container ID (full)
	Name      string // mysqlpilot's node name: the container's hostname
	Container string // container name, e.g. mpsys-x_mysql_2
	IP        string // address on the project's network, "" when not attached
	Running   bool
	Paused    bool
	Restart   bool // between two runs under its restart policy
	ExitCode  int
	Volumes   []string // volumes mounted (the datadir's anonymous volume among them)
}

func (n Node) String() string { return n.Name + "(" + n.Container + ")" }

type inspectJSON struct {
	ID     string `json:"Id"`
	Name   string
	Config struct {
		Hostname string
		Labels   map[string]string
	}
	State struct {
		Running    bool
		Paused     bool
		Restarting bool
		ExitCode   int
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
	Mounts []struct {
		Type string
		Name string
	}
}

// inspect returns the containers' state, in the order given.
func inspect(ids []string) ([]Node, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := docker(30*time.Second, append([]string{"inspect"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var raw []inspectJSON
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return nil, fmt.Errorf("docker inspect: %w", err)
	}
	nodes := make([]Node, 0, len(raw))
	for _, r := range raw {
		n := Node{ID: r.ID, Name: r.Config.Hostname, Container: strings.TrimPrefix(r.Name, "/"),
			Running: r.State.Running, Paused: r.State.Paused, Restart: r.State.Restarting, ExitCode: r.State.ExitCode}
		for net, s := range r.NetworkSettings.Networks {
			if strings.HasSuffix(net, "_mysqlpilot") && s.IPAddress != "" {
				n.IP = s.IPAddress
			}
		}
		for _, m := range r.Mounts {
			if m.Type == "volume" && m.Name != "" {
				n.Volumes = append(n.Volumes, m.Name)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// containers lists the project's mysql containers (all states when all is set), by name, and
// notes their volumes for the cleanup.
func (p *Project) containers(all bool) []Node {
	args := append([]string{"ps", "-q", "--no-trunc"}, p.mysqlFilter()...)
	if all {
		args = append(args, "-a")
	}
	out, err := docker(30*time.Second, args...)
	if err != nil {
		p.t.Logf("list containers: %v", err)
		return nil
	}
	nodes, err := inspect(strings.Fields(out))
	if err != nil {
		p.t.Logf("%v", err)
		return nil
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Container < nodes[j].Container })
	p.trackVolumes(nodes)
	return nodes
}

func (p *Project) trackVolumes(nodes []Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range nodes {
		for _, v := range n.Volumes {
			p.volumes[v] = true
		}
	}
}

// Nodes returns the running mysql containers.
func (p *Project) Nodes() []Node { return p.containers(false) }

// Node returns the current state of the container with ID id.
func (p *Project) Node(id string) Node {
	p.t.Helper()
	nodes, err := inspect([]string{id})
	if err != nil || len(nodes) != 1 {
		p.t.Fatalf("inspect %s: %v", id, err)
	}
	return nodes[0]
}

// NetworkName is the project's network.
func (p *Project) NetworkName() string { return p.Name + "_mysqlpilot" }

// Docker runs a docker command and fails the test on error.
func (p *Project) Docker(d time.Duration, args ...string) string {
	p.t.Helper()
	out, err := docker(d, args...)
	if err != nil {
		p.t.Fatalf("%v", err)
	}
	return out
}

// Pause freezes a container. The freezer can fail transiently ("unable to freeze" when a
// process sits in an uninterruptible wait, e.g. on fuse-overlayfs I/O; the container is then
// left running): retry a few times. It returns when the last attempt started.
func (p *Project) Pause(id string) time.Time {
	p.t.Helper()
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		start := time.Now()
		if _, err = docker(time.Minute, "pause", id); err == nil {
			return start
		}
		p.t.Logf("docker pause, attempt %d: %v", attempt, err)
		time.Sleep(time.Second)
	}
	p.t.Fatalf("docker pause %s failed 5 times: %v", id, err)
	return time.Time{}
}

// Exec runs a command in a container with a deadline; env names variables (NAME=VALUE) set in
// the container through docker's environment, never its argv.
func (p *Project) Exec(d time.Duration, id string, env []string, args ...string) (string, error) {
	dargs := []string{"exec"}
	cenv := os.Environ()
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		dargs = append(dargs, "-e", k)
		cenv = append(cenv, kv)
	}
	dargs = append(dargs, id)
	dargs = append(dargs, args...)
	return run(context.Background(), d, cenv, "", "docker", dargs...)
}

// AssertNoSecrets fails when a password or the snapshot key shows up where it must not: in
// `docker inspect` of any of the project's containers (their environment, labels, mounts'
// sources), in any container's log, or in the argv or environment of any process in a running
// mysql container.
func (p *Project) AssertNoSecrets(t testing.TB) {
	t.Helper()
	secrets := map[string]string{"root password": p.RootPassword, "app password": p.AppPassword, "repl password": p.ReplPassword}
	if p.SnapshotKey != "" {
		secrets["snapshot key"] = p.SnapshotKey
	}
	look := func(where, text string) {
		for what, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the %s shows in %s", what, where)
			}
		}
	}
	ids := strings.Fields(p.Docker(30*time.Second, "ps", "-aq", "--no-trunc", "--filter", p.projectLabel()))
	if len(ids) == 0 {
		t.Fatal("AssertNoSecrets: the project has no containers")
	}
	for _, id := range ids {
		look("docker inspect "+id[:12], p.Docker(30*time.Second, "inspect", id))
		logs, err := exec.Command("docker", "logs", id).CombinedOutput()
		if err != nil {
			t.Errorf("docker logs %s: %v", id[:12], err)
		}
		look("docker logs "+id[:12], string(logs))
	}
	for _, n := range p.Nodes() {
		out, err := p.Exec(30*time.Second, n.ID, nil, "sh", "-c",
			`for d in /proc/[0-9]*; do tr '\0' '\n' <"$d/cmdline"; tr '\0' '\n' <"$d/environ"; done 2>/dev/null; echo END`)
		if err != nil || !strings.Contains(out, "END") || !strings.Contains(out, "mariadbd") {
			t.Errorf("AssertNoSecrets: cannot read the processes of %s: %v", n, err)
			continue
		}
		look("a process of "+n.String(), out)
	}
}

// Logs returns a container's output (stdout and stderr) since t.
func (p *Project) Logs(id string, since time.Time) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "docker", "logs", "--since", since.Format(time.RFC3339Nano), id).CombinedOutput()
	return string(out)
}

// RootSQL runs one query as root inside the container (mariadb client, password through the
// environment) and returns its tab-separated output.
func (p *Project) RootSQL(id, query string) (string, error) {
	out, err := p.Exec(10*time.Second, id, []string{"MYSQL_PWD=" + p.RootPassword}, "mariadb", "-uroot", "-N", "-B", "-e", query)
	return strings.TrimSpace(out), err
}

// Fenced reports whether the node cannot take writes, and why: read_only is on, or its server
// is down (the container restarting or stopped, or mysqld not answering on its socket).
func (p *Project) Fenced(id string) (bool, string) {
	nodes, err := inspect([]string{id})
	if err != nil || len(nodes) != 1 {
		return false, fmt.Sprint("inspect: ", err)
	}
	if n := nodes[0]; !n.Running || n.Restart {
		return true, "container not running (restarting or stopped)"
	}
	ro, err := p.ReadOnly(id)
	switch {
	case err == nil:
		return ro, fmt.Sprint("read_only=", ro)
	case strings.Contains(err.Error(), "is restarting"), strings.Contains(err.Error(), "is not running"):
		return true, "container not running (restarting or stopped)"
	case strings.Contains(err.Error(), "ERROR 2002"):
		return true, "mysqld not running"
	}
	return false, err.Error()
}

// ReadOnly reports the server's read_only inside the container.
func (p *Project) ReadOnly(id string) (bool, error) {
	out, err := p.RootSQL(id, "SELECT @@GLOBAL.read_only")
	if err != nil {
		return false, err
	}
	return out == "1", nil
}
