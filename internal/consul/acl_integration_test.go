//go:build integration

package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// policy is the README's ACL policy (etc/consul-acl-policy.hcl), less the blocks named by
// drop (their first line), plus extra rules.
func policy(t *testing.T, extra string, drop ...string) string {
	t.Helper()
	p := harness.RepoFile(t, PolicyFile)
	for _, d := range drop {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(d) + ` \{[^}]*\}\n`)
		if !re.MatchString(p) {
			t.Fatalf("the policy has no block %q", d)
		}
		p = re.ReplaceAllString(p, "")
	}
	return p + extra
}

// secureClient is a Client for h over TLS with token.
func secureClient(t *testing.T, h *harness.Consul, token string) *Client {
	t.Helper()
	f := h.TLS()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Options{Address: h.HTTPAddr(), Scheme: "https", Token: token, CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey}, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// needs is what a node of service "mysql" under the default prefix asks for (a subset of the
// keys cluster.Needs lists: the lock, the sync set, a member key).
var needs = Needs{
	KeyPrefix: "service/mysql/",
	Keys:      []string{"service/mysql/leader", "service/mysql/sync", "service/mysql/members/n1"},
	Services:  []string{"mysql", "mysql-primary", "mysqlpilot"},
	Session:   true,
}

// TestCheckPermissions_ACLAndTLS runs the start-up check against Consul with ACLs in
// default-deny mode over TLS: the README's policy passes, and each right taken away is named
// with the rule that grants it.
func TestCheckPermissions_ACLAndTLS(t *testing.T) {
	h := harness.StartConsulWith(t, harness.ConsulOptions{Secure: true})
	node := h.NodeName()
	tests := []struct {
		name  string
		rules string
		want  []string // one per missing right, in order
	}{
		{name: "the README's policy", rules: policy(t, "")},
		{name: "the README's policy narrowed to the agent's node, as its comments say",
			rules: policy(t, `session "`+node+`" { policy = "write" }`+"\n"+`agent "`+node+`" { policy = "read" }`+"\n"+`node "`+node+`" { policy = "read" }`+"\n",
				`session_prefix ""`, `agent_prefix ""`, `node_prefix ""`)},
		{name: "no session rights", rules: policy(t, "", `session_prefix ""`),
			want: []string{`the token may not create sessions (ACL permission denied): grant session:write on node "` + node +
				`" (session "` + node + `" { policy = "write" }, or session_prefix "" { policy = "write" }; see etc/consul-acl-policy.hcl)`}},
		{name: "the sync set's key read-only", rules: policy(t, `key "service/mysql/sync" { policy = "read" }`+"\n"),
			want: []string{`the token may not write the key "service/mysql/sync" (ACL permission denied): grant key:write on key "service/mysql/sync" (key_prefix "service/mysql/" { policy = "write" }`}},
		{name: "no KV rights", rules: policy(t, "", `key_prefix "service/mysql/"`),
			want: []string{`write the key "service/mysql/leader"`, `write the key "service/mysql/sync"`, `write the key "service/mysql/members/n1"`}},
		{name: "no mysql-primary service", rules: policy(t, "", `service "mysql-primary"`),
			want: []string{`the token may not register the service "mysql-primary" (ACL permission denied): grant service:write on service "mysql-primary" (service "mysql-primary" { policy = "write" }`}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := h.CreateToken("p"+string(rune('a'+i)), tt.rules)
			c := secureClient(t, h, tok)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := c.WaitReady(ctx); err != nil {
				t.Fatalf("WaitReady: %v", err)
			}
			err := c.CheckPermissions(ctx, needs)
			got := PermissionErrors(err)
			if len(got) != len(tt.want) {
				t.Fatalf("CheckPermissions = %v, want %d missing rights", err, len(tt.want))
			}
			for j, w := range tt.want {
				if !strings.Contains(got[j].Error(), w) || !errors.Is(got[j], ErrPermissionDenied) {
					t.Errorf("missing right %d:\n got  %v\n want %s", j, got[j], w)
				}
				if strings.Contains(got[j].Error(), tok) {
					t.Errorf("the error holds the token")
				}
			}
			// Nothing is left behind: no session, no key.
			if ids, err := c.SessionsNamed(ctx, probeSessionName); err != nil || len(ids) != 0 {
				t.Errorf("probe sessions left: %v, %v", ids, err)
			}
		})
	}
	if b, err := h.Get("/v1/kv/?keys"); err == nil && strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("the probes left keys: %s", b)
	} else if err != nil && !strings.Contains(err.Error(), "404") {
		t.Errorf("list keys: %v", err)
	}
}

// TestWaitReady_RefusedTokenStopsAtOnce: a token Consul does not know, or one without the
// reads WaitReady needs, is an error naming the fix, not an endless wait.
func TestWaitReady_RefusedTokenStopsAtOnce(t *testing.T) {
	h := harness.StartConsulWith(t, harness.ConsulOptions{Secure: true})
	tests := []struct {
		name, token, want string
		is                error
	}{
		{name: "unknown token", token: "00000000-0000-4000-8000-000000000000", want: "the token is unknown to Consul (ACL not found): check consul.token (CONSUL_HTTP_TOKEN)", is: ErrTokenNotFound},
		{name: "no agent read", token: h.CreateToken("noagent", policy(t, "", `agent_prefix ""`)),
			want: `the token may not read the agent's description (/v1/agent/self) (ACL permission denied): grant agent:read (agent_prefix "" { policy = "read" }`, is: ErrPermissionDenied},
		{name: "no node read", token: h.CreateToken("nonode", policy(t, "", `node_prefix ""`)),
			want: `the token may not read the agent's node in the catalog (ACL permission denied): grant node:read on node "` + h.NodeName() + `"`, is: ErrPermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := secureClient(t, h, tt.token)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			start := time.Now()
			err := c.WaitReady(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.is) {
				t.Fatalf("WaitReady = %v, want %q", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("WaitReady took %s to give up", d)
			}
		})
	}
}

// TestPolicy_EveryRuleIsNeeded: the README's policy is minimal for what mysqlpilot does:
// without any one of its rules, WaitReady or CheckPermissions refuses the token, naming it.
func TestPolicy_EveryRuleIsNeeded(t *testing.T) {
	h := harness.StartConsulWith(t, harness.ConsulOptions{Secure: true})
	rules := regexp.MustCompile(`(?m)^(\w+ "[^"]*") \{`).FindAllStringSubmatch(harness.RepoFile(t, PolicyFile), -1)
	if len(rules) < 5 {
		t.Fatalf("found only %d rules in %s", len(rules), PolicyFile)
	}
	for i, r := range rules {
		t.Run(r[1], func(t *testing.T) {
			c := secureClient(t, h, h.CreateToken(fmt.Sprintf("drop%d", i), policy(t, "", r[1])))
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := c.WaitReady(ctx)
			if err == nil {
				err = c.CheckPermissions(ctx, needs)
			}
			if pe := PermissionErrors(err); len(pe) == 0 {
				t.Fatalf("without %s: %v, want a missing right", r[1], err)
			} else {
				t.Logf("without %s: %v", r[1], pe[0])
			}
		})
	}
}

// TestWaitReady_TLSMismatchNamesTheField: each TLS mistake against an agent that serves
// HTTPS only, with client certificates required, is an error at once naming what to set.
func TestWaitReady_TLSMismatchNamesTheField(t *testing.T) {
	h := harness.StartConsulWith(t, harness.ConsulOptions{Secure: true})
	plain, _ := newClient(t)
	f, other := h.TLS(), harness.MakeTLS(t, t.TempDir())
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"a CA that did not sign the agent's certificate",
			Options{Address: "https://" + h.HTTPAddr(), CAFile: other.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey},
			"the agent's certificate is not signed by a CA this node trusts: set consul.caFile"},
		{"no client certificate", Options{Address: "https://" + h.HTTPAddr(), CAFile: f.CA},
			"the agent requires a client certificate: set consul.certFile and consul.keyFile"},
		{"a client certificate of another CA",
			Options{Address: "https://" + h.HTTPAddr(), CAFile: f.CA, CertFile: other.ClientCert, KeyFile: other.ClientKey},
			"the agent refused the client certificate"},
		{"plain HTTP to the HTTPS port", Options{Address: "http://" + h.HTTPAddr()},
			"the agent's port speaks HTTPS: set CONSUL=https://"},
		{"HTTPS to a plain HTTP agent", Options{Address: "https://" + plain.Address(), CAFile: f.CA},
			"the agent answers plain HTTP on that port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Token = "00000000-0000-4000-8000-000000000000"
			c, err := New(tt.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			start := time.Now()
			err = c.WaitReady(ctx)
			var te *TLSError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WaitReady = %v, want a *TLSError saying %q", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("WaitReady took %s to give up", d)
			}
			t.Logf("%v", err)
		})
	}
}

// TestCheckPermissions_ACLsOff: with ACLs off there is nothing to check, and nothing is done.
func TestCheckPermissions_ACLsOff(t *testing.T) {
	c, _ := newClient(t)
	if err := c.CheckPermissions(t.Context(), needs); err != nil {
		t.Fatal(err)
	}
}
