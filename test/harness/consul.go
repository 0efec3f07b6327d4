package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	consulInstall      = "test/tools/install-consul.sh"
	consulReadyTimeout = 30 * time.Second
	consulStopTimeout  = 10 * time.Second
	consulStartTries   = 3 // a port picked by FreePort may be taken before consul binds it
)

// ConsulOptions tune StartConsulWith.
type ConsulOptions struct {
	// Secure runs the agent as production should: ACLs on in default-deny mode (with a
	// management token only the harness holds, also the agent's own token) and its HTTP API
	// over TLS only (plain HTTP off), requiring client certificates, with a CA and
	// certificates made for the test (TLS). Optional, defaults to false: plain HTTP, no ACLs.
	Secure bool
}

// Consul is a Consul dev agent (server, in-memory state) on loopback, with every port its own.
type Consul struct {
	t       testing.TB
	bin     string
	node    string
	logPath string
	dir     string

	secure bool
	mgmt   string   // the management token (Secure)
	tls    TLSFiles // (Secure)
	hc     *http.Client

	httpPort, dnsPort, grpcPort, serverPort, serfLANPort, serfWANPort int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	starts int
}

// StartConsul starts a Consul dev agent on free loopback ports and waits until it has a leader
// and has registered its own node. It is stopped when the test ends; if the test failed, the
// agent's log is printed.
func StartConsul(t testing.TB) *Consul {
	t.Helper()
	return StartConsulWith(t, ConsulOptions{})
}

// StartConsulWith is StartConsul with options (ACLs and TLS: ConsulOptions.Secure).
func StartConsulWith(t testing.TB, o ConsulOptions) *Consul {
	t.Helper()
	dir := t.TempDir()
	c := &Consul{
		t:       t,
		bin:     Tool(t, "consul", consulInstall),
		node:    "dev-" + strconv.Itoa(os.Getpid()),
		logPath: filepath.Join(dir, "consul.log"),
		dir:     dir,
		secure:  o.Secure,
		hc:      &http.Client{Timeout: 2 * time.Second},
	}
	if o.Secure {
		c.mgmt = newUUID(t)
		c.tls = MakeTLS(t, dir)
		c.hc.Transport = &http.Transport{TLSClientConfig: c.tls.ClientConfig(t)}
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			c.dumpLog()
		}
	})
	var err error
	for try := 1; try <= consulStartTries; try++ {
		c.pickPorts()
		if err = c.start(); err == nil {
			return c
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		t.Logf("harness: consul: port clash, retrying with new ports (%d/%d)", try, consulStartTries)
	}
	t.Fatalf("harness: consul: %v", err)
	return nil
}

// HTTPAddr is the agent's HTTP API as "127.0.0.1:port" (HTTPS when Secure).
func (c *Consul) HTTPAddr() string { return Addr(c.httpPort) }

// Secure reports whether the agent runs with ACLs and TLS (ConsulOptions.Secure).
func (c *Consul) Secure() bool { return c.secure }

// TLS is the CA and certificates of a Secure agent.
func (c *Consul) TLS() TLSFiles { return c.tls }

// URL is the agent's HTTP API URL for path (e.g. "/v1/kv/x").
func (c *Consul) URL(path string) string {
	if c.secure {
		return "https://" + c.HTTPAddr() + path
	}
	return "http://" + c.HTTPAddr() + path
}

// Get reads path from the agent's HTTP API with the management token (when Secure); a status
// other than 200 is an error.
func (c *Consul) Get(path string) ([]byte, error) {
	return c.do(context.Background(), http.MethodGet, path, nil)
}

// Put writes body (JSON-encoded unless nil) to path with the management token; a status other
// than 200 is an error.
func (c *Consul) Put(path string, body any) ([]byte, error) {
	return c.do(context.Background(), http.MethodPut, path, body)
}

func (c *Consul) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path), rd)
	if err != nil {
		return nil, err
	}
	if c.mgmt != "" {
		req.Header.Set("X-Consul-Token", c.mgmt)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// CreateToken creates, with the management token, an ACL policy of rules (HCL) named name
// and a token holding only it, and returns the token's secret.
func (c *Consul) CreateToken(name, rules string) string {
	c.t.Helper()
	if !c.secure {
		c.t.Fatalf("harness: consul: CreateToken needs a Secure agent")
	}
	if _, err := c.Put("/v1/acl/policy", map[string]any{"Name": name, "Rules": rules}); err != nil {
		c.t.Fatalf("harness: consul: create policy %s: %v", name, err)
	}
	b, err := c.Put("/v1/acl/token", map[string]any{"Description": name, "Policies": []map[string]string{{"Name": name}}})
	if err != nil {
		c.t.Fatalf("harness: consul: create token for %s: %v", name, err)
	}
	var tok struct{ SecretID string }
	if err := json.Unmarshal(b, &tok); err != nil || tok.SecretID == "" {
		c.t.Fatalf("harness: consul: token for %s: %s (%v)", name, b, err)
	}
	return tok.SecretID
}

// newUUID is a random UUID (version 4), the form of a Consul token.
func newUUID(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// DNSAddr is the agent's DNS interface as "127.0.0.1:port" (UDP and TCP).
func (c *Consul) DNSAddr() string { return Addr(c.dnsPort) }

// NodeName is the agent's node name.
func (c *Consul) NodeName() string { return c.node }

// LogPath is the file the agent logs to (all its runs, appended).
func (c *Consul) LogPath() string { return c.logPath }

// Start starts the agent again on the same ports after Stop. A dev agent keeps nothing: it
// comes back with an empty catalog, KV and session table. It fails the test if the agent is
// already running or does not become ready.
func (c *Consul) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatalf("harness: consul: %v", err)
	}
}

// Restart is Stop then Start.
func (c *Consul) Restart() {
	c.t.Helper()
	c.Stop()
	c.Start()
}

// Stop stops the agent (SIGTERM, then SIGKILL after 10s) and waits for it to exit. Stopping
// a stopped agent does nothing.
func (c *Consul) Stop() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(consulStopTimeout)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		c.t.Logf("harness: consul: no exit %s after SIGTERM, killing it", consulStopTimeout)
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (c *Consul) pickPorts() {
	seen := map[int]bool{}
	pick := func(udp bool) int {
		for {
			p := FreePort(c.t)
			if seen[p] || (udp && !udpFree(p)) {
				continue
			}
			seen[p] = true
			return p
		}
	}
	c.httpPort = pick(false)
	c.dnsPort = pick(true)
	c.grpcPort = pick(false)
	c.serverPort = pick(false)
	c.serfLANPort = pick(true)
	c.serfWANPort = pick(true)
}

func udpFree(port int) bool {
	l, err := net.ListenPacket("udp", Addr(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (c *Consul) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New("start: already running")
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer logf.Close() // the child has its own copy
	c.starts++
	fmt.Fprintf(logf, "==== harness: start #%d, http %d, %s ====\n", c.starts, c.httpPort, time.Now().Format(time.RFC3339Nano))
	httpPort, httpsPort := c.httpPort, -1
	var secure []string
	if c.secure {
		httpPort, httpsPort = -1, c.httpPort
		cfg, err := c.secureConfig()
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		secure = []string{"-config-file=" + cfg}
	}
	args := append([]string{"agent", "-dev",
		"-node=" + c.node,
		"-bind=127.0.0.1", "-client=127.0.0.1", "-advertise=127.0.0.1",
		"-http-port=" + strconv.Itoa(httpPort),
		"-dns-port=" + strconv.Itoa(c.dnsPort),
		"-grpc-port=" + strconv.Itoa(c.grpcPort),
		"-grpc-tls-port=-1",
		"-https-port=" + strconv.Itoa(httpsPort),
		"-server-port=" + strconv.Itoa(c.serverPort),
		"-serf-lan-port=" + strconv.Itoa(c.serfLANPort),
		"-serf-wan-port=" + strconv.Itoa(c.serfWANPort),
		"-hcl=disable_update_check = true",
		"-log-level=debug",
	}, secure...)
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should the test binary die without cleanups (a timeout panic), take the agent with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := c.waitReady(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("start: %w; log tail:\n%s", err, c.logTail(4096))
	}
	c.cmd, c.exited = cmd, exited
	return nil
}

// secureConfig writes the agent's ACL and TLS configuration (0600: it holds the management
// token) and returns its path.
func (c *Consul) secureConfig() (string, error) {
	hcl := fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = true
  tokens {
    initial_management = %q
    agent = %q
  }
}
tls {
  defaults {
    ca_file = %q
    cert_file = %q
    key_file = %q
  }
  https {
    verify_incoming = true
  }
}
`, c.mgmt, c.mgmt, c.tls.CA, c.tls.ServerCert, c.tls.ServerKey)
	p := filepath.Join(c.dir, "secure.hcl")
	return p, os.WriteFile(p, []byte(hcl), 0o600)
}

// waitReady polls until the agent reports a leader and its node's serfHealth check passes
// (only then does session creation work), the process exits, or the deadline passes.
func (c *Consul) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), consulReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		// Requests have their own 2s timeout, so that the last error reported is the agent's.
		leader, err := c.Get("/v1/status/leader")
		switch {
		case err != nil:
			last = err.Error()
		case strings.Trim(strings.TrimSpace(string(leader)), `"`) == "":
			last = "no leader yet"
		default:
			body, err := c.Get("/v1/health/node/" + c.node)
			var checks []struct{ CheckID, Status string }
			if err == nil {
				err = json.Unmarshal(body, &checks)
			}
			if err != nil {
				last = err.Error()
				break
			}
			for _, ch := range checks {
				if ch.CheckID == "serfHealth" && ch.Status == "passing" {
					return nil
				}
			}
			last = "node not registered yet"
		}
		select {
		case <-exited:
			return errors.New("consul exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s; last: %s", consulReadyTimeout, last)
		case <-tick.C:
		}
	}
}

func httpGet(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return string(b), nil
}

func (c *Consul) logTail(n int64) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

func (c *Consul) dumpLog() {
	c.t.Logf("harness: consul log (%s), last 64KiB:\n%s", c.logPath, c.logTail(64<<10))
}
