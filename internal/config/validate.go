package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
)

// minSessionTTL is Consul's floor for a session TTL.
const minSessionTTL = consul.MinSessionTTL

// Validate checks the whole config and returns every problem found, one per line, each
// naming the field and the fix.
// Timing floors: below these a margin no longer covers a fence taking effect, a message
// crossing Consul, or one cycle of the HA loop.
const (
	minMargin    = 500 * time.Millisecond
	watchdogRoom = 2 * time.Second
)

func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, fieldErr(field, format, args...)) }

	if c.Node == "" {
		add("node", "empty: set MYSQLPILOT_NODE or HOSTNAME")
	} else if !validName(c.Node) {
		add("node", "%q may hold only letters, digits, '.', '_' and '-' (it is a Consul key)", c.Node)
	}

	if c.Consul.Address == "" {
		add("consul.address", "required: host:port of a Consul agent (set CONSUL)")
	}
	if j := c.Consul.Agent.Join; j != "" {
		for _, srv := range strings.Split(j, ",") {
			if strings.TrimSpace(srv) == "" {
				add("consul.agent.join", "%q has an empty entry: list the Consul servers as host[:port],host[:port]", j)
				break
			}
		}
		if host, _, err := net.SplitHostPort(c.Consul.Address); err != nil || !isLoopback(host) {
			add("consul.address", "%q: with consul.agent.join set, mysqlpilot talks to its own local agent: set it to 127.0.0.1:8500 (CONSUL=127.0.0.1:8500)", c.Consul.Address)
		}
	}
	if _, err := c.Consul.FallbackAddresses(); err != nil {
		add("consul.fallback", "%v", err)
	}
	if c.Consul.Scheme != "http" && c.Consul.Scheme != "https" {
		add("consul.scheme", "%q: use \"http\" or \"https\"", c.Consul.Scheme)
	}

	if !validName(c.Service.Name) {
		add("service.name", "%q may hold only letters, digits, '.', '_' and '-'", c.Service.Name)
	}
	if c.Service.Port < 1 || c.Service.Port > 65535 {
		add("service.port", "%d is not a TCP port (1-65535)", c.Service.Port)
	}
	if len(c.Service.Interfaces) == 0 {
		add("service.interfaces", "empty: list at least one address source, e.g. [\"eth0\", \"static:127.0.0.1\"]")
	}

	m := c.MySQL
	if m.Flavor != "mariadb" && m.Flavor != "mysql" {
		add("mysql.flavor", "%q: use \"mariadb\" (MariaDB) or \"mysql\" (MySQL or Percona)", m.Flavor)
	}
	if len(m.Exec) == 0 || m.Exec[0] == "" {
		add("mysql.exec", "empty: give the server command, e.g. [\"mariadbd\", \"--user=mysql\"]")
	}
	for _, p := range []struct{ field, path string }{{"mysql.datadir", m.Datadir}, {"mysql.socket", m.Socket}, {"mysql.configFile", m.ConfigFile}} {
		if !filepath.IsAbs(p.path) {
			add(p.field, "%q must be an absolute path", p.path)
		}
	}
	if m.RootPassword == "" {
		add("mysql.rootPassword", "required: set MYSQL_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD_FILE to a file holding it)")
	}
	if m.ReplPassword == "" {
		add("mysql.replPassword", "required: set MYSQL_REPL_PASSWORD (or MYSQL_REPL_PASSWORD_FILE to a file holding it)")
	}
	for _, p := range []struct{ field, env, v string }{
		{"mysql.rootPassword", "MYSQL_ROOT_PASSWORD", m.RootPassword}, {"mysql.replPassword", "MYSQL_REPL_PASSWORD", m.ReplPassword},
		{"mysql.password", "MYSQL_PASSWORD", m.Password},
	} {
		// Long enough to guess by nothing but brute force, and to scrub from logs without
		// scrubbing ordinary words (never quoted: only its length is said).
		if n := len(p.v); n > 0 && n < MinPasswordLen {
			add(p.field, "%d characters is too short: use at least %d (set %s, e.g. to the output of `openssl rand -hex 16`; `make up` generates them into .secrets/)", n, MinPasswordLen, p.env)
		}
	}
	if m.ReplUser == "" {
		add("mysql.replUser", "required: set MYSQL_REPL_USER or leave the default \"repl\"")
	}
	if m.User != "" && m.Password == "" {
		add("mysql.password", "required because mysql.user is set: set MYSQL_PASSWORD")
	}
	if m.User != "" && (m.User == "root" || m.User == m.ReplUser) {
		add("mysql.user", "%q is reserved (root and the replication user are managed by mysqlpilot): choose another MYSQL_USER", m.User)
	}
	for _, p := range []struct {
		field string
		v     Duration
	}{{"mysql.maxLag", m.MaxLag}, {"mysql.stopTimeout", m.StopTimeout}, {"mysql.startTimeout", m.StartTimeout}} {
		if p.v.Duration <= 0 {
			add(p.field, "must be positive, e.g. \"30s\"")
		}
	}

	c.validateTLS(add)

	h := c.HA
	switch {
	case h.SessionTTL.Duration < minSessionTTL:
		add("ha.sessionTTL", "%s is below Consul's minimum of 10s", h.SessionTTL)
	case h.SessionTTL.Duration > consul.MaxSessionTTL:
		add("ha.sessionTTL", "%s is above Consul's maximum of 24h", h.SessionTTL)
	}
	if h.CheckTTL.Duration < 2*time.Second {
		add("ha.checkTTL", "%s is too short: use at least 2s (default 5s)", h.CheckTTL)
	}
	if h.HealthInterval.Duration <= 0 || 2*h.HealthInterval.Duration > h.CheckTTL.Duration {
		add("ha.healthInterval", "%s must be positive and at most half of ha.checkTTL (%s), so one late check does not fail the TTL", h.HealthInterval, h.CheckTTL)
	}
	switch {
	case h.FenceMargin.Duration < minMargin:
		add("ha.fenceMargin", "%s is too small: use at least %s (default 1.5s); the fence must take effect before another node can take the lock", h.FenceMargin, minMargin)
	case h.FenceMargin.Duration+h.HealthInterval.Duration+watchdogRoom > h.CheckTTL.Duration:
		// The primary re-arms its in-server watchdog every healthInterval, for what is left of
		// checkTTL less the watchdog's 1s period and fenceMargin: with less room than one
		// interval plus a cycle's own work, the watchdog fires between re-arms and the
		// primary flaps.
		add("ha.fenceMargin", "ha.fenceMargin (%s) + ha.healthInterval (%s) + %s (the watchdog's 1s period and 1s for a cycle's own work) must not exceed ha.checkTTL (%s): raise checkTTL or lower the others",
			h.FenceMargin, h.HealthInterval, watchdogRoom, h.CheckTTL)
	}
	switch {
	case h.LockDelay.Duration < minMargin:
		add("ha.lockDelay", "%s is too small: use at least %s (default 1s); it keeps a new primary from taking the lock the instant the old one's session ends", h.LockDelay, minMargin)
	case h.LockDelay.Duration > consul.MaxLockDelay:
		add("ha.lockDelay", "%s is above Consul's maximum of 60s", h.LockDelay)
	}
	if h.CandidateWindow.Duration < minMargin {
		add("ha.candidateWindow", "%s is too small: use at least %s (default 1s); candidates need it to hear each other's GTIDs", h.CandidateWindow, minMargin)
	}
	if h.SemiSyncStrict && !h.SemiSync {
		add("ha.semiSyncStrict", "needs ha.semiSync: true (set both, or drop semiSyncStrict)")
	}
	if h.SemiSync && h.SemiSyncTimeout.Duration > 0 {
		add("ha.semiSyncTimeout", "%s would let the primary fall back to acknowledging writes alone without saying so, which the sync set relies on: leave it 0 (adaptive semi-sync already commits alone, saying so first, when nobody acknowledges; strict semi-sync waits), or set ha.semiSync: false for asynchronous replication", h.SemiSyncTimeout)
	}
	if h.CandidateWindow.Duration > h.SessionTTL.Duration {
		add("ha.candidateWindow", "%s is longer than ha.sessionTTL (%s): failover would wait longer than it needs", h.CandidateWindow, h.SessionTTL)
	}

	s := c.Snapshot
	switch s.Backend {
	case "local":
		if !filepath.IsAbs(c.Storage.Local.Dir) {
			add("storage.local.dir", "%q must be an absolute path (snapshot.backend is \"local\")", c.Storage.Local.Dir)
		}
	case "s3":
		s3 := c.Storage.S3
		for _, p := range []struct{ field, v, env string }{{"endpoint", s3.Endpoint, "S3_ENDPOINT"}, {"bucket", s3.Bucket, "S3_BUCKET"}, {"accessKey", s3.AccessKey, "S3_ACCESS_KEY"}, {"secretKey", s3.SecretKey, "S3_SECRET_KEY"}} {
			if p.v == "" {
				add("storage.s3."+p.field, "required because snapshot.backend is \"s3\": set %s", p.env)
			}
		}
		if s3.PartSize < 5 {
			add("storage.s3.partSize", "%d MiB is below S3's minimum part size of 5 MiB", s3.PartSize)
		}
	case "manta":
		mt := c.Storage.Manta
		if mt.URL == "" {
			add("storage.manta.url", "required because snapshot.backend is \"manta\": set MANTA_URL")
		}
		if mt.User == "" {
			add("storage.manta.user", "required because snapshot.backend is \"manta\": set MANTA_USER")
		}
		if mt.Key == "" && mt.KeyPath == "" {
			add("storage.manta.key", "required because snapshot.backend is \"manta\": set MANTA_PRIVATE_KEY or storage.manta.keyPath")
		}
		if mt.Durability < 1 || mt.Durability > 6 {
			add("storage.manta.durability", "%d: Manta keeps 1 to 6 copies", mt.Durability)
		}
	case "none":
	default:
		add("snapshot.backend", "%q: use \"local\", \"s3\", \"manta\" or \"none\"", s.Backend)
	}
	if s.Backend != "none" && s.Keep < 1 {
		add("snapshot.keep", "%d: keep at least 1 snapshot", s.Keep)
	}
	switch s.Compress {
	case "zstd", "lz4", "none":
	default:
		add("snapshot.compress", "%q: use \"zstd\" (the default), \"lz4\" or \"none\"", s.Compress)
	}
	if v := s.Verify; v.Enabled && s.Backend != "none" {
		if v.Interval.Duration < time.Minute {
			add("snapshot.verify.interval", "%s is too short: use at least 1m (default 1h); each drill restores a whole snapshot", v.Interval)
		}
		if v.Timeout.Duration < time.Minute {
			add("snapshot.verify.timeout", "%s is too short: use at least 1m (default 6h); a drill downloads, prepares and checks a whole snapshot", v.Timeout)
		}
	}
	if s.Verify.SampleTables < 0 {
		add("snapshot.verify.sampleTables", "%d: use 0 to check every InnoDB table, or the number of tables to sample", s.Verify.SampleTables)
	}
	if _, err := s.Encrypt.LoadKey(); err != nil {
		errs = append(errs, err)
	}

	seen := map[string]bool{}
	for i, j := range c.Jobs {
		f := fmt.Sprintf("jobs[%d]", i)
		switch {
		case j.Name == "":
			add(f+".name", "required")
		case seen[j.Name]:
			add(f+".name", "%q is used by another job", j.Name)
		}
		seen[j.Name] = true
		if len(j.Exec) == 0 || j.Exec[0] == "" {
			add(f+".exec", "required: the command and its arguments")
		}
		if j.Restart != "never" && j.Restart != "on-failure" && j.Restart != "always" {
			add(f+".restart", "%q: use \"never\", \"on-failure\" or \"always\"", j.Restart)
		}
	}

	if c.Control.Socket != "" && !filepath.IsAbs(c.Control.Socket) {
		add("control.socket", "%q must be an absolute path", c.Control.Socket)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q: use \"debug\", \"info\", \"warn\" or \"error\"", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", "%q: use \"text\" or \"json\"", c.Log.Format)
	}
	return errors.Join(errs...)
}

// validateTLS checks mysql.tls and mysql.requireSecureTransport. In files mode each file
// must be readable and hold what its field says, so a typo fails here, naming the field,
// rather than as a server that will not start.
func (c *Config) validateTLS(add func(field, format string, args ...any)) {
	t := c.MySQL.TLS
	switch t.Mode {
	case TLSAuto, TLSOff:
		for _, f := range []struct{ field, v string }{{"ca", t.CA}, {"cert", t.Cert}, {"key", t.Key}} {
			if f.v != "" {
				add("mysql.tls."+f.field, "is only used with mysql.tls.mode \"files\" (mode is %q): remove it, or set the mode to \"files\"", t.Mode)
			}
		}
		if t.Mode == TLSAuto && t.Dir != "" && !filepath.IsAbs(t.Dir) {
			add("mysql.tls.dir", "%q must be an absolute path", t.Dir)
		}
	case TLSFiles:
		files := []struct{ field, env, v string }{{"ca", "MYSQL_TLS_CA", t.CA}, {"cert", "MYSQL_TLS_CERT", t.Cert}, {"key", "MYSQL_TLS_KEY", t.Key}}
		ok := true
		for _, f := range files {
			switch {
			case f.v == "":
				add("mysql.tls."+f.field, "required because mysql.tls.mode is \"files\": give the PEM file's path (%s), or use mode \"auto\"", f.env)
				ok = false
			case !filepath.IsAbs(f.v):
				add("mysql.tls."+f.field, "%q must be an absolute path", f.v)
				ok = false
			default:
				if _, err := os.ReadFile(f.v); err != nil {
					add("mysql.tls."+f.field, "cannot be read: %v (mount the file, or fix the path)", err)
					ok = false
				}
			}
		}
		if !ok {
			break
		}
		if pem, _ := os.ReadFile(t.CA); !x509.NewCertPool().AppendCertsFromPEM(pem) {
			add("mysql.tls.ca", "%s holds no PEM certificate (give the CA certificate replicas verify the primary against)", t.CA)
		}
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			add("mysql.tls.key", "%s and mysql.tls.cert %s are not a certificate and its key: %v", t.Key, t.Cert, err)
		}
	default:
		add("mysql.tls.mode", "%q: use \"auto\" (a cluster CA kept in Consul, a certificate per node), \"files\" (mysql.tls.ca, cert, key) or \"off\"", t.Mode)
	}
	if c.MySQL.RequireSecureTransport && !t.On() {
		add("mysql.requireSecureTransport", "needs TLS: set mysql.tls.mode to \"auto\" or \"files\" (MYSQL_TLS), or drop requireSecureTransport")
	}
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// isLoopback reports whether host names this machine's loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MinPasswordLen is the shortest password the config accepts.
const MinPasswordLen = 12
