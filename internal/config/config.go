// Package config loads mysqlpilot's JSON configuration: ${VAR} and ${VAR:-default} are expanded
// inside string values, unknown fields are rejected by their path, durations are strings
// ("10s"), and every validation error names the field and the fix.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/seal"
)

// DefaultPath is where `mysqlpilot run` looks for its config when --config is not given.
const DefaultPath = "/etc/mysqlpilot.json"

// defaultJSON is the embedded default config: the seed image's environment names
// (MYSQL_*, CONSUL, SNAPSHOT_BACKEND, MANTA_*) mapped onto the config.
//
//go:embed default.json
var defaultJSON []byte

// DefaultJSON returns the embedded default config file.
func DefaultJSON() []byte { return append([]byte(nil), defaultJSON...) }

// Config is the whole configuration. Field comments give the default.
type Config struct {
	// Node is this node's name in Consul and in the cluster: unique per container, stable across
	// restarts of that container. Default: ${HOSTNAME}, else the kernel hostname.
	Node     string         `json:"node"`
	Consul   ConsulConfig   `json:"consul"`
	Service  ServiceConfig  `json:"service"`
	MySQL    MySQLConfig    `json:"mysql"`
	HA       HAConfig       `json:"ha"`
	Snapshot SnapshotConfig `json:"snapshot"`
	Storage  StorageConfig  `json:"storage"`
	Jobs     []JobConfig    `json:"jobs"`
	Control  ControlConfig  `json:"control"`
	Metrics  MetricsConfig  `json:"metrics"`
	Log      LogConfig      `json:"log"`
}

// ConsulConfig says how to reach Consul.
type ConsulConfig struct {
	Address            string `json:"address"`            // host:port of an agent's HTTP API; default "consul:8500"
	Scheme             string `json:"scheme"`             // "http" (default) or "https"
	Token              string `json:"token"`              // ACL token; default "" (never logged)
	Datacenter         string `json:"datacenter"`         // default: the agent's
	CAFile             string `json:"caFile"`             // TLS CA bundle; default none
	CertFile           string `json:"certFile"`           // TLS client certificate; default none
	KeyFile            string `json:"keyFile"`            // TLS client key; default none
	InsecureSkipVerify bool   `json:"insecureSkipVerify"` // default false
	// Prefix of every key mysqlpilot writes; default "service/<service.name>/".
	Prefix string `json:"prefix"`
	// Fallback: other HTTP APIs of the same Consul datacenter (agents or servers), as
	// comma-separated host:port, reached with this section's scheme, token and TLS settings.
	// A session renewal or a read that address has not answered within 300ms is also sent
	// through them, so that the death of the one server an agent forwards to does not fence
	// the primary. Default: with agent.join set, the joined servers on Consul's HTTP port (8500,
	// or 8501 with https; with a token, only over https); otherwise none. "none" turns it off.
	Fallback string `json:"fallback"`
	// Agent runs a local Consul agent (client mode) beside mysqld, as Consul is meant to be
	// run: this node's session is bound to its own agent's health, so losing a Consul
	// server (the leader, say) ends no session, and a dead container's session ends as
	// soon as gossip finds its agent gone.
	Agent ConsulAgentConfig `json:"agent"`
}

// ConsulAgentConfig is the local Consul agent (see ConsulConfig.Agent). It runs when Join is
// set; address must then name it (127.0.0.1:8500).
type ConsulAgentConfig struct {
	// Join: the Consul servers to join, comma-separated host[:port] (the agent retries
	// each until it joins); "" runs no agent (the default).
	Join    string `json:"join"`
	Exec    string `json:"exec"`    // the consul binary; default "consul" (on PATH)
	DataDir string `json:"dataDir"` // default "<mysql.datadir>/../consul-agent" (kept across restarts: the node's id)
}

// ServiceConfig is how this node registers in Consul.
type ServiceConfig struct {
	Name       string   `json:"name"`       // default "mysql"; the primary also registers "<name>-primary"
	Port       int      `json:"port"`       // default 3306
	Interfaces []string `json:"interfaces"` // address sources tried in order; default ["eth0", "static:127.0.0.1"]
	Tags       []string `json:"tags"`       // extra tags; "primary"/"replica" are added by role
}

// MySQLConfig describes the server mysqlpilot runs and the accounts it creates.
type MySQLConfig struct {
	Flavor       string   `json:"flavor"`       // "mariadb" (default) or "mysql" (MySQL/Percona)
	Exec         []string `json:"exec"`         // server command; default ["mariadbd", "--user=mysql"]
	Datadir      string   `json:"datadir"`      // default "/var/lib/mysql/data" (inside the volume, so a re-seed can move it aside)
	Socket       string   `json:"socket"`       // default "/run/mysqld/mysqld.sock"
	ConfigFile   string   `json:"configFile"`   // generated option file; default "/etc/mysql/mysqlpilot.cnf"
	RootPassword string   `json:"rootPassword"` // required
	User         string   `json:"user"`         // application user; default none
	Password     string   `json:"password"`     // required when user is set
	Database     string   `json:"database"`     // application database; default none
	ReplUser     string   `json:"replUser"`     // default "repl"
	ReplPassword string   `json:"replPassword"` // required
	// MaxLag is the replication lag above which a replica reports unhealthy; default 30s.
	MaxLag Duration `json:"maxLag"`
	// StopTimeout is how long mysqld gets after SIGTERM before SIGKILL; default 60s.
	StopTimeout Duration `json:"stopTimeout"`
	// StartTimeout bounds crash recovery at start before the node reports an error; default 10m.
	StartTimeout Duration `json:"startTimeout"`
	// TLS encrypts replication (and offers TLS to clients); see TLSConfig.
	TLS TLSConfig `json:"tls"`
	// RequireSecureTransport refuses client connections over TCP without TLS
	// (require_secure_transport=ON; the local socket, which mysqlpilot uses, stays allowed).
	// Needs tls.mode auto or files. Default false.
	RequireSecureTransport bool `json:"requireSecureTransport"`
}

// TLS modes of mysql.tls.mode.
const (
	TLSAuto  = "auto"  // a cluster CA in Consul (its key sealed), a certificate per node
	TLSFiles = "files" // the operator's CA, certificate and key files
	TLSOff   = "off"   // plain TCP replication
)

// TLSConfig is mysql.tls: how the server gets its certificate, and replicas verify the
// primary's. With auto or files, replicas connect with TLS and verify the primary's certificate
// against the CA (and its name: the address in the leader key), and the replication user
// requires TLS.
type TLSConfig struct {
	// Mode: "auto" (the first node makes a cluster CA, kept in Consul with its key sealed under
	// the replication password; each node issues itself a certificate), "files" (ca, cert and
	// key below) or "off". Default "auto" (secure by default).
	Mode string `json:"mode"`
	CA   string `json:"ca"`   // files: the CA certificate(s) replicas verify the primary against
	Cert string `json:"cert"` // files: this server's certificate (PEM), naming its service address
	Key  string `json:"key"`  // files: its private key (PEM), readable by the OS user of mysql.exec
	// Dir is where auto writes ca.pem, server.pem and server-key.pem (0700, owned by the OS
	// user of mysql.exec); default "<datadir>.tls", beside the datadir so snapshots never
	// carry it.
	Dir string `json:"dir"`
}

// On reports whether replication uses TLS.
func (t TLSConfig) On() bool { return t.Mode == TLSAuto || t.Mode == TLSFiles }

// OSUser is the --user= of the server command (mysql.exec), or "" when it has none: the one
// place that reads it, for the datadir's owner, the restore and the point-in-time restore.
func (m MySQLConfig) OSUser() string {
	for _, a := range m.Exec[min(1, len(m.Exec)):] {
		if u, ok := strings.CutPrefix(a, "--user="); ok {
			return u
		}
	}
	return ""
}

// HAConfig holds the timings and switches of the HA loop (DESIGN.md section 4).
type HAConfig struct {
	SessionTTL      Duration `json:"sessionTTL"`      // default 10s; Consul's minimum is 10s
	CheckTTL        Duration `json:"checkTTL"`        // health TTL check bound to the session; default 5s
	LockDelay       Duration `json:"lockDelay"`       // default 1s (Consul's own 15s default is an outage)
	HealthInterval  Duration `json:"healthInterval"`  // default 1s; must be well under checkTTL
	FenceMargin     Duration `json:"fenceMargin"`     // fence this long before the earliest expiry; default 1.5s
	CandidateWindow Duration `json:"candidateWindow"` // wait for members' GTIDs before acquiring; default 1s
	HandoverTimeout Duration `json:"handoverTimeout"` // graceful stop: wait for a replica to catch up; default 10s
	FailoverBlock   Duration `json:"failoverBlock"`   // no second automatic failover within; default 0 (off)
	// SemiSync: the primary's commits wait for a replica's acknowledgement while a member
	// that could be promoted replicates from it, and are acknowledged by the primary alone
	// (said first in its member key) while none does (a cluster of one, every replica down,
	// broken or quarantined). Default true.
	SemiSync bool `json:"semiSync"`
	// SemiSyncStrict: with semiSync, wait for an acknowledgement even when no other node could
	// take it: no write is ever acknowledged by the primary alone, and a primary without a
	// replica takes no writes. Default false.
	SemiSyncStrict bool `json:"semiSyncStrict"`
	// Watch wakes the loop at once when the cluster's keys change (a Consul blocking query);
	// false polls every healthInterval only, as the seed did. Default true.
	Watch bool `json:"watch"`
	// SemiSyncTimeout is how long the primary waits for a replica's ack before falling back to
	// async; 0, the default and the only value accepted with semi-sync, means never (the
	// fallback would be silent, and the sync set relies on knowing who acknowledged).
	SemiSyncTimeout Duration `json:"semiSyncTimeout"`
}

// SnapshotConfig says when and where backups go.
type SnapshotConfig struct {
	Backend        string   `json:"backend"`        // "local" (default), "s3", "manta" or "none"
	Interval       Duration `json:"interval"`       // default 6h; 0 disables scheduled snapshots
	OnBinlogRotate bool     `json:"onBinlogRotate"` // default true
	// OnPrimaryChange: a new primary takes a snapshot, a minute after its promotion, when the
	// latest one is of another server, so the binlog archive (kept per server) has a base to
	// roll forward from for point-in-time restores, and re-seeds restore recent data.
	// Default true.
	OnPrimaryChange     bool     `json:"onPrimaryChange"`
	Keep                int      `json:"keep"`                // snapshots kept; default 7
	Compress            string   `json:"compress"`            // "zstd" (default), "lz4" or "none"
	BinlogFlushInterval Duration `json:"binlogFlushInterval"` // default 5m; 0 disables binlog archiving
	TempDir             string   `json:"tempDir"`             // restore scratch space; default "<datadir>/../mysqlpilot-restore"
	// Encrypt seals snapshots and archived binlogs before they leave the node (see
	// internal/seal); off when neither field is set.
	Encrypt EncryptConfig `json:"encrypt"`
	// Verify is the restore drill: a replica restores the latest snapshot into scratch space
	// and checks it (internal/snapshot, verify.go).
	Verify VerifyConfig `json:"verify"`
}

// VerifyConfig says when the restore drill runs: on a healthy replica (never the primary),
// one node at a time, after a snapshot is published that has not been drilled yet, at most
// once per Interval cluster-wide.
type VerifyConfig struct {
	Enabled bool `json:"enabled"` // default true (with a snapshot backend)
	// Interval is the least time between two drills in the cluster; default 1h, at least 1m.
	Interval Duration `json:"interval"`
	// SampleTables: 0 (the default) runs CHECK TABLE on every InnoDB table; N > 0 on N tables
	// picked at random when there are more (large data sets).
	SampleTables int `json:"sampleTables"`
	// Timeout bounds one drill (download, prepare, server start, checks); default 6h.
	Timeout Duration `json:"timeout"`
}

// EncryptConfig gives the snapshot key: 32 random bytes as base64 or 64 hex digits
// (`mysqlpilot keygen` prints one), in a file or in the config (from the environment).
type EncryptConfig struct {
	KeyFile string `json:"keyFile"` // a file holding the key, e.g. a Docker secret under /run/secrets
	Key     string `json:"key"`     // the key itself, e.g. "${SNAPSHOT_KEY}"; never logged
	// AllowUnsealed lets a node with a key restore unsealed snapshots and binlogs (a cluster
	// moving to encryption, until its snapshots are sealed); default false: refused, since
	// whoever can write to the store could plant them.
	AllowUnsealed bool `json:"allowUnsealed"`
}

// Enabled reports whether a key is configured.
func (e EncryptConfig) Enabled() bool { return e.Key != "" || e.KeyFile != "" }

// LoadKey returns the configured key, or nil when encryption is off. Errors name the field
// (and the file) and never quote the key.
func (e EncryptConfig) LoadKey() (*seal.Key, error) {
	// seal.ParseKey's error starts with its source, which here starts with the field.
	parse := func(field, text, source string) (*seal.Key, error) {
		k, err := seal.ParseKey(text, source)
		if err != nil {
			return nil, &Error{Field: field, Msg: strings.TrimLeft(strings.TrimPrefix(err.Error(), field), ": ")}
		}
		return k, nil
	}
	switch {
	case e.Key != "" && e.KeyFile != "":
		return nil, fieldErr("snapshot.encrypt", "give the key in key or in keyFile, not both")
	case e.Key != "":
		return parse("snapshot.encrypt.key", e.Key, "snapshot.encrypt.key")
	case e.KeyFile != "":
		b, err := os.ReadFile(e.KeyFile)
		if err != nil {
			return nil, fieldErr("snapshot.encrypt.keyFile", "cannot read the key: %v", err)
		}
		return parse("snapshot.encrypt.keyFile", string(b), "snapshot.encrypt.keyFile "+e.KeyFile)
	}
	return nil, nil
}

// StorageConfig configures each backend; only the chosen one is validated.
type StorageConfig struct {
	Local LocalStorage `json:"local"`
	S3    S3Storage    `json:"s3"`
	Manta MantaStorage `json:"manta"`
}

// LocalStorage is a directory, e.g. a shared volume.
type LocalStorage struct {
	Dir string `json:"dir"` // default "/snapshots"
}

// S3Storage is any S3-compatible server.
type S3Storage struct {
	Endpoint  string `json:"endpoint"`  // host[:port]; required for s3
	Bucket    string `json:"bucket"`    // required for s3
	Region    string `json:"region"`    // default "us-east-1"
	AccessKey string `json:"accessKey"` // required for s3
	SecretKey string `json:"secretKey"` // required for s3
	Prefix    string `json:"prefix"`    // default ""
	Insecure  bool   `json:"insecure"`  // plain HTTP; default false
	PartSize  int    `json:"partSize"`  // multipart part size in MiB; default 16, minimum 5
}

// MantaStorage is Joyent Manta.
type MantaStorage struct {
	URL        string `json:"url"`        // required for manta, e.g. https://us-east.manta.joyent.com
	User       string `json:"user"`       // account login; required for manta
	Subuser    string `json:"subuser"`    // default none
	Role       string `json:"role"`       // default none
	KeyID      string `json:"keyId"`      // MD5 fingerprint; default: derived from the key
	KeyPath    string `json:"keyPath"`    // private key file; this or key is required
	Key        string `json:"key"`        // private key PEM (MANTA_PRIVATE_KEY); never logged
	Dir        string `json:"dir"`        // default "/<user>/stor/mysqlpilot"
	Durability int    `json:"durability"` // copies; default 2
}

// JobConfig is an extra process supervised beside mysqld (e.g. a local Consul agent).
type JobConfig struct {
	Name         string   `json:"name"`         // required, unique
	Exec         []string `json:"exec"`         // required
	Restart      string   `json:"restart"`      // "never", "on-failure" (default) or "always"
	RestartDelay Duration `json:"restartDelay"` // default 1s
	StopTimeout  Duration `json:"stopTimeout"`  // default 10s
	// Env names the variables of mysqlpilot's environment the job gets even though they
	// carry a secret (every other secret is kept from it); default none.
	Env []string `json:"env"`
}

// ControlConfig is the local control socket used by the CLI.
type ControlConfig struct {
	Socket string `json:"socket"` // default "/var/run/mysqlpilot.sock"; mode 0600
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `json:"listen"` // default ":9104"; "" disables
}

// LogConfig sets logging.
type LogConfig struct {
	Level  string `json:"level"`  // "debug", "info" (default), "warn", "error"
	Format string `json:"format"` // "text" (default) or "json"
}

// Duration is a time.Duration written as a string in JSON ("10s", "1m30s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return d.Duration }

// Error is a config error that names the field.
type Error struct {
	Field string // dotted path, e.g. "ha.sessionTTL"; "" for the file as a whole
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Field + ": " + e.Msg
}

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Load reads, interpolates, decodes and validates the config file at path. When path is ""
// the embedded default is used.
func Load(path string, env LookupEnv) (*Config, error) {
	data := defaultJSON
	source := "embedded default"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, &Error{Msg: fmt.Sprintf("%s does not exist (give --config a config file, or omit --config to use the embedded default)", path)}
			}
			return nil, &Error{Msg: fmt.Sprintf("read %s: %v", path, err)}
		}
		data, source = b, path
	}
	cfg, err := Parse(data, env)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Field == "" {
			ce.Msg = source + ": " + ce.Msg
		}
		return nil, err
	}
	return cfg, nil
}

// Parse decodes and validates a config document.
func Parse(data []byte, env LookupEnv) (*Config, error) {
	cfg := Default()
	if err := decode(data, env, cfg); err != nil {
		return nil, err
	}
	cfg.fill(env)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// FallbackAddresses is consul.fallback as a list of host:port (nil for "" or "none"); the
// error says which entry is not one.
func (c ConsulConfig) FallbackAddresses() ([]string, error) {
	if c.Fallback == "" || c.Fallback == "none" {
		return nil, nil
	}
	var out []string
	for _, a := range strings.Split(c.Fallback, ",") {
		a = strings.TrimSpace(a)
		hp := a
		if s, rest, ok := strings.Cut(a, "://"); ok {
			if s != c.Scheme {
				return nil, fmt.Errorf("%q: scheme %s differs from consul.scheme %s: the fallbacks are reached like consul.address", a, s, c.Scheme)
			}
			hp = rest
		}
		if host, port, err := net.SplitHostPort(hp); err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("%q is not host:port: list other Consul HTTP APIs as host:port,host:port (or \"none\")", a)
		}
		out = append(out, hp)
	}
	return out, nil
}
