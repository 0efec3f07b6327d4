package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Default returns the built-in defaults that a config file overrides field by field.
func Default() *Config {
	d := func(x time.Duration) Duration { return Duration{x} }
	return &Config{
		Consul:  ConsulConfig{Address: "consul:8500", Scheme: "http"},
		Service: ServiceConfig{Name: "mysql", Port: 3306, Interfaces: []string{"eth0", "static:127.0.0.1"}},
		MySQL: MySQLConfig{
			Flavor: "mariadb", Exec: []string{"mariadbd", "--user=mysql"},
			Datadir: "/var/lib/mysql/data", Socket: "/run/mysqld/mysqld.sock",
			ConfigFile: "/etc/mysql/mysqlpilot.cnf", ReplUser: "repl",
			MaxLag: d(30 * time.Second), StopTimeout: d(60 * time.Second), StartTimeout: d(10 * time.Minute),
			TLS: TLSConfig{Mode: TLSAuto},
		},
		HA: HAConfig{
			SessionTTL: d(10 * time.Second), CheckTTL: d(5 * time.Second), LockDelay: d(time.Second),
			HealthInterval: d(time.Second), FenceMargin: d(1500 * time.Millisecond),
			CandidateWindow: d(time.Second), HandoverTimeout: d(10 * time.Second), Watch: true, SemiSync: true,
		},
		Snapshot: SnapshotConfig{
			Backend: "local", Interval: d(6 * time.Hour), OnBinlogRotate: true, OnPrimaryChange: true, Keep: 7,
			Compress: "zstd", BinlogFlushInterval: d(5 * time.Minute),
			Verify: VerifyConfig{Enabled: true, Interval: d(time.Hour), Timeout: d(6 * time.Hour)},
		},
		Storage: StorageConfig{
			Local: LocalStorage{Dir: "/snapshots"},
			S3:    S3Storage{Region: "us-east-1", PartSize: 16},
			Manta: MantaStorage{Durability: 2},
		},
		Control: ControlConfig{Socket: "/var/run/mysqlpilot.sock"},
		Metrics: MetricsConfig{Listen: ":9104"},
		Log:     LogConfig{Level: "info", Format: "text"},
	}
}

// fill derives the defaults that depend on other fields or on the environment.
func (c *Config) fill(env LookupEnv) {
	if c.Node == "" {
		if h, ok := env("HOSTNAME"); ok && h != "" {
			c.Node = h
		} else if h, err := os.Hostname(); err == nil {
			c.Node = h
		}
	}
	if a := c.Consul.Address; a != "" {
		// CONSUL=https://consul:8501 sets the scheme (validate refuses one not http or https).
		if scheme, rest, ok := strings.Cut(a, "://"); ok {
			c.Consul.Scheme, a = scheme, rest
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, consulHTTPPort(c.Consul.Scheme)) // the seed's CONSUL=consul
		}
		c.Consul.Address = a
	}
	if c.Consul.Agent.Join != "" {
		if c.Consul.Agent.Exec == "" {
			c.Consul.Agent.Exec = "consul"
		}
		if c.Consul.Agent.DataDir == "" && c.MySQL.Datadir != "" {
			c.Consul.Agent.DataDir = filepath.Join(filepath.Dir(filepath.Clean(c.MySQL.Datadir)), "consul-agent")
		}
		// Not over plain http with a token: it would cross the network in clear (to the
		// local agent it does not); consul.fallback set explicitly still does.
		if c.Consul.Fallback == "" && (c.Consul.Token == "" || c.Consul.Scheme == "https") {
			c.Consul.Fallback = joinedServersHTTP(c.Consul.Agent.Join, c.Consul.Scheme)
		}
	}
	if c.Consul.Prefix == "" {
		c.Consul.Prefix = "service/" + c.Service.Name + "/"
	} else if !strings.HasSuffix(c.Consul.Prefix, "/") {
		c.Consul.Prefix += "/"
	}
	if c.MySQL.TLS.Mode == TLSAuto && c.MySQL.TLS.Dir == "" && c.MySQL.Datadir != "" {
		c.MySQL.TLS.Dir = strings.TrimRight(c.MySQL.Datadir, "/") + ".tls"
	}
	if c.Snapshot.TempDir == "" && c.MySQL.Datadir != "" {
		c.Snapshot.TempDir = strings.TrimRight(c.MySQL.Datadir, "/") + "-restore"
	}
	m := &c.Storage.Manta
	if m.Dir == "" && m.User != "" {
		m.Dir = "/" + m.User + "/stor/mysqlpilot"
	}
	// The seed's image took the key with newlines written as '#' (env files cannot hold them).
	if m.Key != "" && !strings.Contains(m.Key, "\n") && strings.Contains(m.Key, "#") {
		m.Key = strings.ReplaceAll(m.Key, "#", "\n")
	}
	for i := range c.Jobs {
		j := &c.Jobs[i]
		if j.Restart == "" {
			j.Restart = "on-failure"
		}
		if j.RestartDelay.Duration == 0 {
			j.RestartDelay = Duration{time.Second}
		}
		if j.StopTimeout.Duration == 0 {
			j.StopTimeout = Duration{10 * time.Second}
		}
	}
}

// Redacted returns a copy safe to print: every secret replaced by "<redacted>" when set.
func (c *Config) Redacted() *Config {
	r := *c
	hide := func(s *string) {
		if *s != "" {
			*s = "<redacted>"
		}
	}
	hide(&r.Consul.Token)
	hide(&r.MySQL.RootPassword)
	hide(&r.MySQL.Password)
	hide(&r.MySQL.ReplPassword)
	hide(&r.Storage.S3.AccessKey)
	hide(&r.Storage.S3.SecretKey)
	hide(&r.Storage.Manta.Key)
	hide(&r.Snapshot.Encrypt.Key)
	return &r
}

// Secrets lists the secret values in c, for log scrubbing and for tests that grep logs.
func (c *Config) Secrets() []string {
	var out []string
	for _, s := range []string{c.Consul.Token, c.MySQL.RootPassword, c.MySQL.Password, c.MySQL.ReplPassword,
		c.Storage.S3.SecretKey, c.Storage.Manta.Key, c.Snapshot.Encrypt.Key} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// joinedServersHTTP is consul.fallback's default with an agent: the HTTP API of each server
// it joins (join names serf's port, if any; the HTTP API is on Consul's default port).
func joinedServersHTTP(join, scheme string) string {
	port := consulHTTPPort(scheme)
	var out []string
	for _, srv := range strings.Split(join, ",") {
		srv = strings.TrimSpace(srv)
		if host, _, err := net.SplitHostPort(srv); err == nil {
			srv = host
		}
		if srv != "" {
			out = append(out, net.JoinHostPort(srv, port))
		}
	}
	return strings.Join(out, ",")
}

// consulHTTPPort is Consul's default port for its HTTP API: 8500, or 8501 for https.
func consulHTTPPort(scheme string) string {
	if scheme == "https" {
		return "8501"
	}
	return "8500"
}
