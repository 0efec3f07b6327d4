//go:build integration

package harness

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConsul_StartRestartStop(t *testing.T) {
	c := StartConsul(t)
	hc := &http.Client{Timeout: 2 * time.Second}
	ctx := context.Background()

	leader, err := httpGet(ctx, hc, "http://"+c.HTTPAddr()+"/v1/status/leader")
	if err != nil || !strings.Contains(leader, "127.0.0.1:") {
		t.Fatalf("leader = %q, %v", leader, err)
	}

	// The DNS interface answers for the agent's own node.
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", c.DNSAddr())
	}}
	addrs, err := r.LookupHost(ctx, c.NodeName()+".node.consul")
	if err != nil || len(addrs) == 0 || addrs[0] != "127.0.0.1" {
		t.Fatalf("dns lookup of the node = %v, %v", addrs, err)
	}

	start := time.Now()
	c.Restart()
	t.Logf("restart took %s", time.Since(start).Round(time.Millisecond))
	if _, err := httpGet(ctx, hc, "http://"+c.HTTPAddr()+"/v1/status/leader"); err != nil {
		t.Fatalf("after restart: %v", err)
	}

	c.Stop()
	if _, err := httpGet(ctx, hc, "http://"+c.HTTPAddr()+"/v1/status/leader"); err == nil {
		t.Fatal("agent still answers after Stop")
	}
	c.Stop() // idempotent
}

// TestConsul_Secure: the secure agent serves its API over TLS only, requires a client
// certificate, and refuses a request without a token (default deny); the management token
// reads and creates a token holding only the policy given.
func TestConsul_Secure(t *testing.T) {
	c := StartConsulWith(t, ConsulOptions{Secure: true})
	if _, err := httpGet(context.Background(), &http.Client{Timeout: 2 * time.Second}, "http://"+c.HTTPAddr()+"/v1/status/leader"); err == nil {
		t.Error("the agent answers plain HTTP")
	}
	noCert := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.TLS().ClientConfig(t).RootCAs}}}
	if _, err := httpGet(context.Background(), noCert, c.URL("/v1/status/leader")); err == nil {
		t.Error("the agent answers a client without a certificate")
	}
	anon := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: c.TLS().ClientConfig(t)}}
	if _, err := httpGet(context.Background(), anon, c.URL("/v1/kv/x")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("anonymous KV read: %v, want 403", err)
	}
	if _, err := c.Put("/v1/kv/x", nil); err != nil {
		t.Fatalf("management token: %v", err)
	}
	tok := c.CreateToken("reader", `key "x" { policy = "read" }`)
	req, _ := http.NewRequest(http.MethodGet, c.URL("/v1/kv/x"), nil)
	req.Header.Set("X-Consul-Token", tok)
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("read with the new token: %s", resp.Status)
	}
}
