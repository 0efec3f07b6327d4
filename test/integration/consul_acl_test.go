//go:build integration

package integration

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/test/harness"
)

// aclPolicy is the README's ACL policy for mysqlpilot (etc/consul-acl-policy.hcl), less the
// blocks whose first line is in drop.
func aclPolicy(t *testing.T, drop ...string) string {
	t.Helper()
	p := harness.RepoFile(t, "etc/consul-acl-policy.hcl")
	for _, d := range drop {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(d) + ` \{[^}]*\}\n`)
		if !re.MatchString(p) {
			t.Fatalf("the policy has no block %q", d)
		}
		p = re.ReplaceAllString(p, "")
	}
	return p
}

// TestConsulACLAndTLS runs the cluster against Consul as production should run it: ACLs in
// default-deny mode and the HTTP API over TLS only (client certificates required). The nodes
// hold a token with exactly the README's policy: they elect a primary, replicate, register
// their services, fail over after a kill -9 of the primary with no acknowledged write lost,
// and the token shows up nowhere it must not.
func TestConsulACLAndTLS(t *testing.T) {
	c := harness.StartCluster(t, harness.ClusterOptions{SemiSync: true,
		Consul: harness.ConsulOptions{Secure: true}, ACLPolicy: aclPolicy(t)})
	p := c.WaitSettled(t, 3, 90*time.Second)
	t.Logf("primary: %s", p.Name)

	svcs := agentServices(t, c)
	if svcs["mysql-primary-"+p.Name] != "passing" {
		t.Errorf("mysql-primary-%s = %q in Consul, want passing (all: %v)", p.Name, svcs["mysql-primary-"+p.Name], svcs)
	}
	for _, n := range c.Nodes {
		for _, id := range []string{"mysql-" + n.Name, "mysqlpilot-" + n.Name} {
			if svcs[id] != "passing" {
				t.Errorf("%s = %q in Consul, want passing", id, svcs[id])
			}
		}
	}
	if _, ok := c.KV("sync"); !ok {
		t.Errorf("no sync set recorded under the token's policy")
	}

	pr := harness.StartProber(t, c, p, 50*time.Millisecond)
	pr.WaitAcks(t, 20, 30*time.Second)
	t0 := time.Now()
	p.Kill9()
	name, gap := pr.WaitNewPrimary(t, t0, p.Name, 60*time.Second)
	t.Logf("kill -9 of %s: %s took over; write gap %s", p.Name, name, gap)
	np := c.Node(name)
	pr.WaitAcks(t, 20, 30*time.Second)
	p.Start()
	if got := c.WaitSettled(t, 3, 90*time.Second); got != np {
		t.Errorf("primary after %s rejoined: %s, want %s", p.Name, got.Name, np.Name)
	}
	pr.Stop()
	checked, lost := pr.Verify(t, np)
	t.Logf("writes checked %d, lost %d, split-brain rounds %d", checked, lost, len(pr.Splits()))
	if s := pr.Splits(); len(s) > 0 {
		t.Errorf("two nodes acknowledged writes in the same round: %v", s)
	}
	for _, n := range c.Nodes {
		if l := n.Log(); strings.Contains(l, "Permission denied") || strings.Contains(l, "ACL permission denied") || strings.Contains(l, "ACL not found") {
			t.Errorf("%s's log shows a refused Consul request under the README's policy", n.Name)
		}
	}
	c.AssertNoSecrets(t)
}

// TestConsulTokenMissingRights: a token whose policy lacks a right mysqlpilot needs stops it
// at start, before it touches the datadir, with an error that names the missing right and the
// rule that grants it: session rights, the sync set's key (written only by a primary, maybe
// hours later), the primary's service.
func TestConsulTokenMissingRights(t *testing.T) {
	tests := []struct {
		name   string
		policy func(t *testing.T) string
		want   func(node string) string // slog's text format quotes the message and escapes its quotes
	}{
		{name: "no session:write",
			policy: func(t *testing.T) string { return aclPolicy(t, `session_prefix ""`) },
			want: func(node string) string {
				return `consul: the token may not create sessions (ACL permission denied): grant session:write on node \"` + node +
					`\" (session \"` + node + `\" { policy = \"write\" }, or session_prefix \"\" { policy = \"write\" }; see etc/consul-acl-policy.hcl)`
			}},
		{name: "the sync set's key read-only",
			policy: func(t *testing.T) string {
				return aclPolicy(t) + `key "service/mysql/sync" { policy = "read" }` + "\n"
			},
			want: func(string) string {
				return `consul: the token may not write the key \"service/mysql/sync\" (ACL permission denied): grant key:write on key \"service/mysql/sync\" (key_prefix \"service/mysql/\" { policy = \"write\" }; see etc/consul-acl-policy.hcl)`
			}},
		{name: "no mysql-primary service",
			policy: func(t *testing.T) string { return aclPolicy(t, `service "mysql-primary"`) },
			want: func(string) string {
				return `consul: the token may not register the service \"mysql-primary\" (ACL permission denied): grant service:write on service \"mysql-primary\" (service \"mysql-primary\" { policy = \"write\" }; see etc/consul-acl-policy.hcl)`
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := harness.StartCluster(t, harness.ClusterOptions{Nodes: 1,
				Consul: harness.ConsulOptions{Secure: true}, ACLPolicy: tt.policy(t)})
			n := c.Nodes[0]
			code := n.Wait(60 * time.Second)
			if code != 1 {
				t.Fatalf("mysqlpilot exited %d, want 1:\n%s", code, n.Log())
			}
			log, want := n.Log(), tt.want(c.Consul.NodeName())
			if !strings.Contains(log, want) {
				t.Errorf("the log does not name the missing right; want\n%s\nin\n%s", want, log)
			}
			if k := strings.Count(log, "the token may not"); k != 2 { // logged once, then as the reason it stopped
				t.Errorf("%d mentions of a missing right, want exactly this one twice:\n%s", k, log)
			}
			if _, err := os.Stat(n.Dir + "/data"); !os.IsNotExist(err) {
				t.Errorf("the datadir was touched before the check: %v", err)
			}
			if strings.Contains(log, c.Token) {
				t.Errorf("the log holds the token")
			}
		})
	}
}
