package harness

import (
	"bytes"
	"context"
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

// Consul is a Consul dev agent (server, in-memory state) on loopback, with every port its own.
type Consul struct {
	t       testing.TB
	bin     string
	node    string
	logPath string

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
	dir := t.TempDir()
	c := &Consul{
		t:       t,
		bin:     Tool(t, "consul", consulInstall),
		node:    "dev-" + strconv.Itoa(os.Getpid()),
		logPath: filepath.Join(dir, "consul.log"),
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

// HTTPAddr is the agent's HTTP API as "127.0.0.1:port".
func (c *Consul) HTTPAddr() string { return Addr(c.httpPort) }

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
	cmd := exec.Command(c.bin, "agent", "-dev",
		"-node="+c.node,
		"-bind=127.0.0.1", "-client=127.0.0.1", "-advertise=127.0.0.1",
		"-http-port="+strconv.Itoa(c.httpPort),
		"-dns-port="+strconv.Itoa(c.dnsPort),
		"-grpc-port="+strconv.Itoa(c.grpcPort),
		"-grpc-tls-port=-1",
		"-https-port=-1",
		"-server-port="+strconv.Itoa(c.serverPort),
		"-serf-lan-port="+strconv.Itoa(c.serfLANPort),
		"-serf-wan-port="+strconv.Itoa(c.serfWANPort),
		"-hcl=disable_update_check = true",
		"-log-level=debug",
	)
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

// waitReady polls until the agent reports a leader and its node's serfHealth check passes
// (only then does session creation work), the process exits, or the deadline passes.
func (c *Consul) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), consulReadyTimeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		// Requests have their own 1s timeout, so that the last error reported is the agent's.
		leader, err := httpGet(context.Background(), hc, "http://"+c.HTTPAddr()+"/v1/status/leader")
		switch {
		case err != nil:
			last = err.Error()
		case strings.Trim(strings.TrimSpace(leader), `"`) == "":
			last = "no leader yet"
		default:
			body, err := httpGet(context.Background(), hc, "http://"+c.HTTPAddr()+"/v1/health/node/"+c.node)
			var checks []struct{ CheckID, Status string }
			if err == nil {
				err = json.Unmarshal([]byte(body), &checks)
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
