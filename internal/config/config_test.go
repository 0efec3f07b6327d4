package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var baseEnv = map[string]string{
	"HOSTNAME": "node-a", "MYSQL_ROOT_PASSWORD": "r00t-pw-12chars", "MYSQL_REPL_PASSWORD": "r3pl-pw-12chars",
}

func withEnv(extra map[string]string) LookupEnv {
	m := map[string]string{}
	for k, v := range baseEnv {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return envMap(m)
}

// TestConsulAddressWithScheme: CONSUL may carry the scheme, which then also picks the default
// port.
func TestConsulAddressWithScheme(t *testing.T) {
	for _, tt := range []struct{ consul, addr, scheme string }{
		{"consul", "consul:8500", "http"},
		{"https://consul", "consul:8501", "https"},
		{"https://10.0.0.5:8443", "10.0.0.5:8443", "https"},
		{"http://consul:8500", "consul:8500", "http"},
	} {
		cfg, err := Load("", withEnv(map[string]string{"CONSUL": tt.consul}))
		if err != nil {
			t.Fatalf("CONSUL=%s: %v", tt.consul, err)
		}
		if cfg.Consul.Address != tt.addr || cfg.Consul.Scheme != tt.scheme {
			t.Errorf("CONSUL=%s: address %q scheme %q, want %q %q", tt.consul, cfg.Consul.Address, cfg.Consul.Scheme, tt.addr, tt.scheme)
		}
	}
	_, err := Load("", withEnv(map[string]string{"CONSUL": "ftp://consul"}))
	if err == nil || !strings.Contains(err.Error(), `consul.scheme: "ftp": use "http" or "https"`) {
		t.Errorf("CONSUL=ftp://consul: %v", err)
	}
}

// consul.fallback: with a local agent, the servers it joins (on their HTTP port) carry a
// session renewal the agent does not; set, it names its own list; "none" turns it off.
func TestConsulFallback(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"CONSUL": "consul"}, nil},
		{map[string]string{"CONSUL": "127.0.0.1:8500", "CONSUL_AGENT_JOIN": "consul,consul-2:8301, consul-3"},
			[]string{"consul:8500", "consul-2:8500", "consul-3:8500"}},
		{map[string]string{"CONSUL": "https://127.0.0.1:8501", "CONSUL_AGENT_JOIN": "c1,c2"}, []string{"c1:8501", "c2:8501"}},
		{map[string]string{"CONSUL": "127.0.0.1:8500", "CONSUL_AGENT_JOIN": "c1", "CONSUL_FALLBACK": "none"}, nil},
		// A token never goes to the servers over plain http unless asked for.
		{map[string]string{"CONSUL": "127.0.0.1:8500", "CONSUL_AGENT_JOIN": "c1", "CONSUL_HTTP_TOKEN": "0b7f2d0e-6c1e-4c39-9d55-3c1f9f0a1b2c"}, nil},
		{map[string]string{"CONSUL": "https://127.0.0.1:8501", "CONSUL_AGENT_JOIN": "c1", "CONSUL_HTTP_TOKEN": "0b7f2d0e-6c1e-4c39-9d55-3c1f9f0a1b2c"}, []string{"c1:8501"}},
		{map[string]string{"CONSUL": "consul-a", "CONSUL_FALLBACK": "consul-b:8500,http://consul-c:8500"}, []string{"consul-b:8500", "consul-c:8500"}},
	} {
		cfg, err := Load("", withEnv(tt.env))
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		got, err := cfg.Consul.FallbackAddresses()
		if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%v: fallback %q (%v), want %q", tt.env, got, err, tt.want)
		}
	}
	for fallback, want := range map[string]string{
		"consul-b":              `consul.fallback: "consul-b" is not host:port`,
		"consul-b:8500,,c:1":    `consul.fallback: "" is not host:port`,
		"https://consul-b:8501": "consul.fallback: \"https://consul-b:8501\": scheme https differs from consul.scheme http",
	} {
		_, err := Load("", withEnv(map[string]string{"CONSUL": "consul", "CONSUL_FALLBACK": fallback}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CONSUL_FALLBACK=%s: %v, want an error containing %s", fallback, err, want)
		}
	}
}

func TestEmbeddedDefaultLoadsWithSeedEnvironment(t *testing.T) {
	cfg, err := Load("", withEnv(map[string]string{
		"CONSUL": "consul", "MYSQL_USER": "app", "MYSQL_PASSWORD": "apppw-long-enough", "MYSQL_DATABASE": "appdb",
		"MYSQL_REPL_USER": "replicator", "SNAPSHOT_BACKEND": "manta", "MANTA_USER": "acme",
		"MANTA_KEY_ID": "aa:bb", "MANTA_PRIVATE_KEY": "-----BEGIN KEY-----#abc#-----END KEY-----",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"node", cfg.Node, "node-a"},
		{"consul.address", cfg.Consul.Address, "consul:8500"},
		{"consul.prefix", cfg.Consul.Prefix, "service/mysql/"},
		{"mysql.user", cfg.MySQL.User, "app"},
		{"mysql.database", cfg.MySQL.Database, "appdb"},
		{"mysql.replUser", cfg.MySQL.ReplUser, "replicator"},
		{"snapshot.backend", cfg.Snapshot.Backend, "manta"},
		{"storage.manta.dir", cfg.Storage.Manta.Dir, "/acme/stor/mysqlpilot"},
		{"storage.manta.key", cfg.Storage.Manta.Key, "-----BEGIN KEY-----\nabc\n-----END KEY-----"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if v := cfg.Snapshot.Verify; !v.Enabled || v.Interval.Duration != time.Hour || v.SampleTables != 0 {
		t.Errorf("snapshot.verify = %+v, want the drill on, at most hourly, every table", v)
	}
	if cfg.HA.SessionTTL.Duration != 10*time.Second || cfg.HA.CheckTTL.Duration != 5*time.Second || cfg.HA.LockDelay.Duration != time.Second {
		t.Errorf("ha timings = %+v", cfg.HA)
	}
}

func TestInterpolate(t *testing.T) {
	env := envMap(map[string]string{"A": "x", "EMPTY": "", "Q": `p"w\d`})
	cases := []struct{ name, in, want, err string }{
		{"plain", "abc", "abc", ""},
		{"set", "${A}", "x", ""},
		{"unset", "${NOPE}", "", ""},
		{"default when unset", "${NOPE:-d}", "d", ""},
		{"default when empty", "${EMPTY:-d}", "d", ""},
		{"no default when set", "${A:-d}", "x", ""},
		{"embedded", "pre-${A}-post", "pre-x-post", ""},
		{"default with colon", "${NOPE:-consul:8500}", "consul:8500", ""},
		{"dollar escape", "$${A}", "${A}", ""},
		{"lone dollar", "a$b", "a$b", ""},
		{"quote in value stays a value", "${Q}", `p"w\d`, ""},
		{"unterminated", "${A", "", "unterminated"},
		{"bad name", "${1A}", "", "bad variable name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := interpolate(c.in, env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestBadInputNamesFieldAndFix(t *testing.T) {
	const pw = `"rootPassword": "${MYSQL_ROOT_PASSWORD}", "replPassword": "${MYSQL_REPL_PASSWORD}"`
	cases := []struct {
		name string
		doc  string
		env  map[string]string
		want string
	}{
		{"invalid JSON with line and column", "{\n  \"node\": \"a\",\n  \"ha\": {\"sessionTTL\": 10s}\n}", nil, "invalid JSON at line 3, column 26"},
		{"truncated JSON", `{"node": "a"`, nil, "unexpected end of file"},
		{"not an object", `[1]`, nil, "must be an object"},
		{"unknown field with suggestion", `{"ha": {"sesionTTL": "10s"}}`, nil, `config: ha.sesionTTL: unknown field (did you mean "sessionTTL"?)`},
		{"unknown top-level field", `{"zzzzzzzzzz": 1}`, nil, "config: zzzzzzzzzz: unknown field (known fields:"},
		{"bad duration", `{"ha": {"lockDelay": "soon"}}`, nil, `config: ha.lockDelay: "soon" is not a duration`},
		{"duration as number", `{"ha": {"lockDelay": 5}}`, nil, "config: ha.lockDelay: must be a duration string"},
		{"TTL below Consul minimum", `{"mysql": {` + pw + `}, "ha": {"sessionTTL": "5s"}}`, nil, "config: ha.sessionTTL: 5s is below Consul's minimum of 10s"},
		{"missing root password", `{"mysql": {` + pw + `}}`, map[string]string{"MYSQL_ROOT_PASSWORD": ""}, "config: mysql.rootPassword: required: set MYSQL_ROOT_PASSWORD"},
		{"missing repl password", `{"mysql": {` + pw + `}}`, map[string]string{"MYSQL_REPL_PASSWORD": ""}, "config: mysql.replPassword: required: set MYSQL_REPL_PASSWORD"},
		{"user without password", `{"mysql": {` + pw + `, "user": "app"}}`, nil, "config: mysql.password: required because mysql.user is set"},
		{"reserved user", `{"mysql": {` + pw + `, "user": "repl", "password": "x"}}`, nil, "config: mysql.user: \"repl\" is reserved"},
		{"port from env out of range", `{"mysql": {` + pw + `}, "service": {"port": "${PORT:-70000}"}}`, nil, "config: service.port: 70000 is not a TCP port"},
		{"port not a number", `{"service": {"port": "x"}}`, nil, `config: service.port: "x" is not a whole number`},
		{"bad flavor", `{"mysql": {` + pw + `, "flavor": "postgres"}}`, nil, `config: mysql.flavor: "postgres": use "mariadb"`},
		{"s3 incomplete", `{"mysql": {` + pw + `}, "snapshot": {"backend": "s3"}}`, nil, "config: storage.s3.bucket: required because snapshot.backend is \"s3\": set S3_BUCKET"},
		{"semi-sync timeout with adaptive semi-sync", `{"mysql": {` + pw + `}, "ha": {"semiSyncTimeout": "10s"}}`, nil, "config: ha.semiSyncTimeout: 10s would let the primary fall back"},
		{"semi-sync timeout with strict semi-sync", `{"mysql": {` + pw + `}, "ha": {"semiSyncStrict": true, "semiSyncTimeout": "10s"}}`, nil, "config: ha.semiSyncTimeout: 10s would let the primary fall back"},
		{"strict semi-sync without semi-sync", `{"mysql": {` + pw + `}, "ha": {"semiSync": false, "semiSyncStrict": true}}`, nil, "config: ha.semiSyncStrict: needs ha.semiSync: true"},
		{"health interval too long", `{"mysql": {` + pw + `}, "ha": {"healthInterval": "4s"}}`, nil, "config: ha.healthInterval: 4s must be positive and at most half of ha.checkTTL"},
		{"watchdog would fire between re-arms", `{"mysql": {` + pw + `}, "ha": {"checkTTL": "2s", "healthInterval": "1s", "fenceMargin": "500ms"}}`, nil,
			"config: ha.fenceMargin: ha.fenceMargin (500ms) + ha.healthInterval (1s) + 2s (the watchdog's 1s period and 1s for a cycle's own work) must not exceed ha.checkTTL (2s)"},
		{"zero fence margin", `{"mysql": {` + pw + `}, "ha": {"fenceMargin": "1ns"}}`, nil, "config: ha.fenceMargin: 1ns is too small: use at least 500ms"},
		{"zero lock delay", `{"mysql": {` + pw + `}, "ha": {"lockDelay": "0s"}}`, nil, "config: ha.lockDelay: 0s is too small: use at least 500ms"},
		{"zero candidate window", `{"mysql": {` + pw + `}, "ha": {"candidateWindow": "0s"}}`, nil, "config: ha.candidateWindow: 0s is too small: use at least 500ms"},
		{"local agent with a remote address", `{"mysql": {` + pw + `}, "consul": {"address": "consul:8500", "agent": {"join": "consul"}}}`, nil,
			`config: consul.address: "consul:8500": with consul.agent.join set, mysqlpilot talks to its own local agent: set it to 127.0.0.1:8500`},
		{"local agent with an empty server", `{"mysql": {` + pw + `}, "consul": {"address": "127.0.0.1:8500", "agent": {"join": "consul,,consul-3"}}}`, nil,
			`config: consul.agent.join: "consul,,consul-3" has an empty entry`},
		{"job without exec", `{"mysql": {` + pw + `}, "jobs": [{"name": "agent"}]}`, nil, "config: jobs[0].exec: required"},
		{"snapshot key not a key", `{"mysql": {` + pw + `}, "snapshot": {"encrypt": {"key": "${K}"}}}`, map[string]string{"K": "hunter2-hunter2"},
			"config: snapshot.encrypt.key: not a 256-bit key (want 32 random bytes as base64 or 64 hex digits, e.g. `mysqlpilot keygen`; 15 characters given)"},
		{"snapshot key twice", `{"mysql": {` + pw + `}, "snapshot": {"encrypt": {"key": "${K}", "keyFile": "/k"}}}`, map[string]string{"K": strings.Repeat("ab", 32)},
			"config: snapshot.encrypt: give the key in key or in keyFile, not both"},
		{"snapshot key file missing", `{"mysql": {` + pw + `}, "snapshot": {"encrypt": {"keyFile": "/nonexistent/k"}}}`, nil,
			"config: snapshot.encrypt.keyFile: cannot read the key: open /nonexistent/k: no such file or directory"},
		{"unknown compression", `{"mysql": {` + pw + `}, "snapshot": {"compress": "gzip"}}`, nil,
			`config: snapshot.compress: "gzip": use "zstd" (the default), "lz4" or "none"`},
		{"drill interval too short", `{"mysql": {` + pw + `}, "snapshot": {"verify": {"interval": "10s"}}}`, nil,
			"config: snapshot.verify.interval: 10s is too short: use at least 1m (default 1h)"},
		{"drill sample negative", `{"mysql": {` + pw + `}, "snapshot": {"verify": {"sampleTables": -1}}}`, nil,
			"config: snapshot.verify.sampleTables: -1: use 0 to check every InnoDB table"},
		{"bad interpolation", `{"node": "${A"}`, nil, "config: node: unterminated ${"},
		{"string where list expected", `{"mysql": {"exec": "mariadbd"}}`, nil, "config: mysql.exec: must be a list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"HOSTNAME": "h", "MYSQL_ROOT_PASSWORD": "root-pw-long-enough", "MYSQL_REPL_PASSWORD": "repl-pw-long-enough"}
			for k, v := range c.env {
				env[k] = v
			}
			_, err := Parse([]byte(c.doc), envMap(env))
			if err == nil {
				t.Fatalf("no error for %s", c.doc)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, c.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"), withEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "nope.json does not exist") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadFileReportsSource(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(p, []byte("{\n  \"node\": ,\n}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, withEnv(nil))
	if err == nil || !strings.Contains(err.Error(), p+": invalid JSON at line 2, column 11") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`{"ha": {"sessionTTL": "1s"}, "log": {"level": "loud"}}`), envMap(map[string]string{"HOSTNAME": "h"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"ha.sessionTTL", "log.level", "mysql.rootPassword", "mysql.replPassword"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestRedactedHidesEverySecret(t *testing.T) {
	cfg, err := Load("", withEnv(map[string]string{"MYSQL_USER": "app", "MYSQL_PASSWORD": "apppw-long-enough", "CONSUL_HTTP_TOKEN": "tok", "S3_SECRET_KEY": "s3s",
		"SNAPSHOT_KEY": strings.Repeat("c3", 32)}))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Redacted()
	dump := strings.Join([]string{r.Consul.Token, r.MySQL.RootPassword, r.MySQL.Password, r.MySQL.ReplPassword, r.Storage.S3.SecretKey, r.Snapshot.Encrypt.Key}, " ")
	for _, s := range cfg.Secrets() {
		if strings.Contains(dump, s) {
			t.Errorf("secret %q survives redaction", s)
		}
	}
	if len(cfg.Secrets()) != 6 {
		t.Errorf("Secrets() = %d values, want 6", len(cfg.Secrets()))
	}
	if k, err := cfg.Snapshot.Encrypt.LoadKey(); err != nil || k == nil {
		t.Errorf("SNAPSHOT_KEY: %v, %v", k, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(DefaultJSON()))
	f.Add([]byte(`{"ha": {"sessionTTL": "${X:-10s}"}, "service": {"port": "${P}"}}`))
	f.Add([]byte(`{"jobs": [{"name": "a", "exec": ["x"]}], "mysql": {"exec": []}}`))
	f.Add([]byte(`{"a":`))
	env := envMap(map[string]string{"X": "5s", "P": "99", "HOSTNAME": "h"})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, env)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// A short password is refused, naming the variable and never quoting the value.
func TestShortPasswordRefused(t *testing.T) {
	_, err := Load("", withEnv(map[string]string{"MYSQL_ROOT_PASSWORD": "consul"}))
	if err == nil || !strings.Contains(err.Error(), "mysql.rootPassword: 6 characters is too short: use at least 12 (set MYSQL_ROOT_PASSWORD") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "consul\"") || strings.Contains(err.Error(), ": consul") {
		t.Errorf("the error quotes the password: %v", err)
	}
}

// A secret field's value is never quoted in an error, and a literal ${ in it is refused
// rather than expanded silently.
func TestSecretFieldErrorsQuoteNothing(t *testing.T) {
	for _, doc := range []string{
		`{"mysql": {"rootPassword": "s3cret-${et-pass"}}`,
		`{"mysql": {"rootPassword": "s3cret-${x}-tail-long"}}`,
		`{"mysql": {"rootPassword": "${bad-name}"}}`,
	} {
		_, err := Parse([]byte(doc), withEnv(nil))
		if err == nil || !strings.Contains(err.Error(), "mysql.rootPassword:") || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "et-pass") || strings.Contains(err.Error(), "bad-name") {
			t.Errorf("%s: err = %v", doc, err)
		}
	}
	cfg, err := Parse([]byte(`{"mysql": {"rootPassword": "dollar$$-literal-ok", "replPassword": "${MYSQL_REPL_PASSWORD}"}}`), withEnv(nil))
	if err != nil || cfg.MySQL.RootPassword != "dollar$-literal-ok" {
		t.Errorf("$$ in a literal password: %v %q", err, cfg.MySQL.RootPassword)
	}
}

// NAME_FILE gives a variable's value from a file (a Docker secret), so the secret never shows
// in `docker inspect` or a process's environment; its errors name the file, not the secret.
func TestVariableFromFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "root")
	if err := os.WriteFile(pw, []byte("from-a-file-long-enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("", withEnv(map[string]string{"MYSQL_ROOT_PASSWORD": "", "MYSQL_ROOT_PASSWORD_FILE": pw, "SNAPSHOT_KEY_FILE": key}))
	if err != nil || cfg.MySQL.RootPassword != "from-a-file-long-enough" {
		t.Fatalf("root password from file: %v", err)
	}
	if k, err := cfg.Snapshot.Encrypt.LoadKey(); err != nil || k == nil {
		t.Errorf("SNAPSHOT_KEY_FILE in the embedded default: %v, %v", k, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for env, want := range map[string]map[string]string{
		"SNAPSHOT_KEY_FILE names " + empty + ", which is empty":                       {"SNAPSHOT_KEY_FILE": empty},
		"MYSQL_ROOT_PASSWORD_FILE: /dev/zero is not a regular file of at most 64 KiB": {"MYSQL_ROOT_PASSWORD": "", "MYSQL_ROOT_PASSWORD_FILE": "/dev/zero"},
		"both MYSQL_ROOT_PASSWORD and MYSQL_ROOT_PASSWORD_FILE are set: keep one":     {"MYSQL_ROOT_PASSWORD": "in-the-env-long-enough", "MYSQL_ROOT_PASSWORD_FILE": pw},
		"MYSQL_ROOT_PASSWORD_FILE names /nonexistent/x, which does not exist":         {"MYSQL_ROOT_PASSWORD": "", "MYSQL_ROOT_PASSWORD_FILE": "/nonexistent/x"},
	} {
		_, err := Load("", withEnv(want))
		if err == nil || !strings.Contains(err.Error(), env) || strings.Contains(err.Error(), "long-enough") {
			t.Errorf("%v: err = %v, want %q", want, err, env)
		}
	}
}
