//go:build integration

package harness

import (
	"context"
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
