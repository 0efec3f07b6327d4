package mysql

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ServerConfig is what mysqlpilot writes into the server's option file. Only Flavor, Datadir,
// Port and ServerID are required.
type ServerConfig struct {
	Flavor  Flavor
	Datadir string // absolute
	Socket  string // default <Datadir>/mysqld.sock
	PidFile string // default <Datadir>/mysqld.pid
	Port    int
	// BindAddress is the listen address; default 0.0.0.0 (the container's interfaces).
	BindAddress string
	// ServerID must be unique in the group, 1..4294967295.
	ServerID uint32
	// ReportHost and ReportPort are what replicas show in SHOW SLAVE HOSTS (the node's service
	// address); ReportPort defaults to Port, ReportHost is omitted when empty.
	ReportHost string
	ReportPort int
	// BinlogBasename and RelayLogBasename name the binary and relay logs inside Datadir;
	// defaults "mysql-bin" and "relay-bin". Fixed names, not the hostname-based defaults, so a
	// container that comes back under another hostname finds its logs.
	BinlogBasename   string
	RelayLogBasename string
	// BinlogExpire is how long binary logs are kept; default 7 days.
	BinlogExpire time.Duration
	// InnoDBBufferPool is innodb_buffer_pool_size; default "128M", fit for small containers.
	InnoDBBufferPool string
	// MaxConnections; 0 keeps the server default (151).
	MaxConnections int
	// ErrorLog is the error log file; "" logs to stderr (the container's log).
	ErrorLog string
	// TmpDir is the server's tmpdir; "" keeps the server default ($TMPDIR or /tmp). Give each
	// server its own: every mariadbd deletes the "#sql*" files in its tmpdir when it starts,
	// so servers sharing one delete each other's temporary tables.
	TmpDir string
	// SemiSync, when set, loads and tunes semi-synchronous replication, disabled in both roles;
	// DB.EnableSemiSync turns it on for the node's role at runtime.
	SemiSync *SemiSyncConfig
	// TLS, when set, gives the server its certificate: replicas connect with TLS and verify
	// it, and clients may use TLS.
	TLS *ServerTLS
	// Extra holds more options, "name=value" or "name", appended verbatim to [mysqld].
	Extra []string
}

// ServerTLS are the server's TLS files (PEM), readable by the OS user mysqld runs as.
type ServerTLS struct {
	CA, Cert, Key string
	// RequireSecureTransport refuses TCP clients without TLS (the local socket stays allowed).
	RequireSecureTransport bool
}

// SemiSyncConfig tunes semi-synchronous replication.
type SemiSyncConfig struct {
	// Timeout is how long a primary waits for a replica's acknowledgement before it falls back
	// to asynchronous replication. A very long timeout (hours) means no fallback: an isolated
	// primary cannot acknowledge writes.
	Timeout time.Duration
	// TruncateUnacknowledged starts the server in the role of a semi-sync replica
	// (init_rpl_role=SLAVE, replica side on), so that crash recovery rolls back and cuts from
	// the binlog every transaction not committed in the engine, instead of committing it:
	// a killed primary's writes that waited for an acknowledgement never come back as errant
	// transactions (MDEV-21117). Set it only when every write the server acknowledged is on
	// a replica too: MariaDB also cuts transactions that were acknowledged but whose engine
	// commit had not reached the disk, so a primary that acknowledged writes alone must
	// start without it.
	TruncateUnacknowledged bool
}

// Defaults used when ServerConfig leaves a field empty.
const (
	DefaultBinlogBasename   = "mysql-bin"
	DefaultRelayLogBasename = "relay-bin"
	DefaultBinlogExpire     = 7 * 24 * time.Hour
	DefaultInnoDBBufferPool = "128M"
)

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Socket == "" && c.Datadir != "" {
		c.Socket = filepath.Join(c.Datadir, "mysqld.sock")
	}
	if c.PidFile == "" && c.Datadir != "" {
		c.PidFile = filepath.Join(c.Datadir, "mysqld.pid")
	}
	if c.BindAddress == "" {
		c.BindAddress = "0.0.0.0"
	}
	if c.ReportPort == 0 {
		c.ReportPort = c.Port
	}
	if c.BinlogBasename == "" {
		c.BinlogBasename = DefaultBinlogBasename
	}
	if c.RelayLogBasename == "" {
		c.RelayLogBasename = DefaultRelayLogBasename
	}
	if c.BinlogExpire == 0 {
		c.BinlogExpire = DefaultBinlogExpire
	}
	if c.InnoDBBufferPool == "" {
		c.InnoDBBufferPool = DefaultInnoDBBufferPool
	}
	return c
}

func (c ServerConfig) validate() error {
	var errs []error
	if err := c.Flavor.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Datadir == "" || !filepath.IsAbs(c.Datadir) {
		errs = append(errs, fmt.Errorf("datadir %q must be an absolute path", c.Datadir))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", c.Port))
	}
	if c.ReportPort < 1 || c.ReportPort > 65535 {
		errs = append(errs, fmt.Errorf("report port %d out of range", c.ReportPort))
	}
	if c.ServerID == 0 {
		errs = append(errs, errors.New("server id must be 1..4294967295"))
	}
	if len(c.Socket) >= 108 {
		errs = append(errs, fmt.Errorf("socket path %q is longer than a unix socket allows (107 bytes)", c.Socket))
	}
	if c.BinlogExpire < time.Second {
		errs = append(errs, fmt.Errorf("binlog expiry %s is below one second", c.BinlogExpire))
	}
	for _, base := range []string{c.BinlogBasename, c.RelayLogBasename} {
		if strings.ContainsAny(base, "/ \t") {
			errs = append(errs, fmt.Errorf("log basename %q must be a plain file name", base))
		}
	}
	if t := c.TLS; t != nil {
		for name, v := range map[string]string{"ssl_ca": t.CA, "ssl_cert": t.Cert, "ssl_key": t.Key} {
			if !filepath.IsAbs(v) || strings.ContainsAny(v, "\n\r\x00") {
				errs = append(errs, fmt.Errorf("%s %q must be an absolute path", name, v))
			}
		}
	}
	if c.SemiSync != nil && c.SemiSync.Timeout <= 0 {
		errs = append(errs, errors.New("semi-sync timeout must be positive"))
	}
	for name, v := range map[string]string{"datadir": c.Datadir, "socket": c.Socket, "pid file": c.PidFile,
		"bind address": c.BindAddress, "report host": c.ReportHost, "error log": c.ErrorLog, "tmpdir": c.TmpDir,
		"innodb buffer pool": c.InnoDBBufferPool} {
		if strings.ContainsAny(v, "\n\r\x00") {
			errs = append(errs, fmt.Errorf("%s contains a line break or NUL", name))
		}
	}
	for _, e := range c.Extra {
		if strings.ContainsAny(e, "\n\r\x00") || strings.TrimSpace(e) == "" || strings.HasPrefix(strings.TrimSpace(e), "[") {
			errs = append(errs, fmt.Errorf("extra option %q must be one name=value line", e))
		}
	}
	return errors.Join(errs...)
}

// Render returns the option file's contents. The file holds no secrets.
func (c ServerConfig) Render() ([]byte, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("mysql: server config: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("# Written by mysqlpilot at every start; edits here are lost.\n")
	b.WriteString("[mysqld]\n")
	opt := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	path := func(k, v string) { opt(k, optionValue(v)) }
	path("datadir", c.Datadir)
	path("socket", c.Socket)
	path("pid-file", c.PidFile)
	if c.TmpDir != "" {
		path("tmpdir", c.TmpDir)
	}
	opt("port", strconv.Itoa(c.Port))
	opt("bind-address", c.BindAddress)
	opt("server-id", strconv.FormatUint(uint64(c.ServerID), 10))
	if c.ReportHost != "" {
		opt("report_host", optionValue(c.ReportHost))
	}
	opt("report_port", strconv.Itoa(c.ReportPort))
	opt("skip-name-resolve", "ON")
	if c.ErrorLog != "" {
		path("log-error", c.ErrorLog)
	}
	if c.MaxConnections > 0 {
		opt("max_connections", strconv.Itoa(c.MaxConnections))
	}
	b.WriteString("\n# Binary log and replication: GTIDs, every node a possible primary.\n")
	opt("log-bin", c.BinlogBasename)
	opt("log-bin-index", c.BinlogBasename+".index")
	opt("relay-log", c.RelayLogBasename)
	opt("relay-log-index", c.RelayLogBasename+".index")
	opt("binlog_format", "ROW")
	opt("binlog_expire_logs_seconds", strconv.FormatInt(int64(c.BinlogExpire/time.Second), 10))
	opt("sync_binlog", "1")
	opt("relay_log_recovery", "ON")
	for _, kv := range c.Flavor.serverOptions(c) {
		opt(kv[0], kv[1])
	}
	if c.TLS != nil {
		b.WriteString("\n# TLS: replicas connect encrypted and verify this certificate.\n")
		for _, kv := range c.Flavor.tlsServerOptions(*c.TLS) {
			opt(kv[0], kv[1])
		}
	}
	b.WriteString("\n# The watchdog event (mysqlpilot.fence_on_stale_heartbeat) needs the scheduler.\n")
	opt("event_scheduler", "ON")
	b.WriteString("\n# InnoDB sized for a small container, durable commits.\n")
	opt("innodb_buffer_pool_size", c.InnoDBBufferPool)
	opt("innodb_flush_log_at_trx_commit", "1")
	opt("innodb_file_per_table", "ON")
	if len(c.Extra) > 0 {
		b.WriteString("\n# Extra options from the configuration.\n")
		for _, e := range c.Extra {
			b.WriteString(strings.TrimSpace(e))
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// WriteServerConfig writes the option file at path with mode 0644, atomically (a reader sees
// the old file or the new one).
func WriteServerConfig(path string, c ServerConfig) error {
	data, err := c.Render()
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("mysql: write server config: %w", err)
	}
	return nil
}

// ServerArgs returns the server's arguments (after argv[0]): the option file, then the OS user
// to run as ("" omits --user; "root" is needed when running as root without a mysql account).
// --defaults-file comes first, as the server requires.
func ServerArgs(defaultsFile, osUser string) []string {
	args := []string{"--defaults-file=" + defaultsFile}
	if osUser != "" {
		args = append(args, "--user="+osUser)
	}
	return args
}

// ClientOptions are the connection settings a client tool (mariadb, mariabackup, xtrabackup)
// reads from an option file passed as --defaults-extra-file, so no password is in its argv.
type ClientOptions struct {
	User     string
	Password string
	Socket   string // used when set
	Host     string
	Port     int
}

// WriteClientOptionFile writes a [client] option file readable by its owner only (0600; the
// file is created with that mode, never wider). Remove it when the tool has finished.
func WriteClientOptionFile(path string, o ClientOptions) error {
	for name, v := range map[string]string{"user": o.User, "password": o.Password, "socket": o.Socket, "host": o.Host} {
		if err := checkNoNUL(name, v); err != nil {
			return fmt.Errorf("mysql: client option file: %w", err)
		}
	}
	var b bytes.Buffer
	b.WriteString("[client]\n")
	if o.User != "" {
		fmt.Fprintf(&b, "user = %s\n", optionValue(o.User))
	}
	if o.Password != "" {
		fmt.Fprintf(&b, "password = %s\n", optionValue(o.Password))
	}
	if o.Socket != "" {
		fmt.Fprintf(&b, "socket = %s\n", optionValue(o.Socket))
	}
	if o.Host != "" {
		fmt.Fprintf(&b, "host = %s\n", optionValue(o.Host))
	}
	if o.Port != 0 {
		fmt.Fprintf(&b, "port = %d\n", o.Port)
	}
	if err := WriteFileAtomic(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("mysql: write client option file: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to a temporary file in path's directory (created 0600 by
// os.CreateTemp), sets mode, syncs, and renames it over path.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
