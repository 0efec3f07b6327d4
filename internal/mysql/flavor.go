package mysql

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// Flavor is the server family: "mariadb" (MariaDB 10.11 and later) or "mysql" (MySQL and
// Percona Server 8.x, from 8.0.26: the release that renamed master/slave variables to
// source/replica). Every statement, variable or tool that differs between the two lives in
// this file; the rest of the package asks the flavor.
type Flavor string

// The supported flavors.
const (
	MariaDB Flavor = "mariadb"
	MySQL   Flavor = "mysql"
)

// ParseFlavor accepts "mariadb" or "mysql" (any case), as mysql.flavor's validation does:
// Percona Server is "mysql". The node parses mysql.flavor once, at start.
func ParseFlavor(s string) (Flavor, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mariadb":
		return MariaDB, nil
	case "mysql":
		return MySQL, nil
	}
	return "", fmt.Errorf("mysql: unknown flavor %q (want mariadb, or mysql for MySQL and Percona Server)", s)
}

// Validate reports a flavor that is neither MariaDB nor MySQL.
func (f Flavor) Validate() error {
	if f == MariaDB || f == MySQL {
		return nil
	}
	return fmt.Errorf("mysql: unknown flavor %q (want mariadb or mysql)", string(f))
}

func (f Flavor) String() string { return string(f) }

// ServerBinary is the server executable's usual name.
func (f Flavor) ServerBinary() string {
	if f == MySQL {
		return "mysqld"
	}
	return "mariadbd"
}

// BackupTool is the hot-backup tool's usual name.
func (f Flavor) BackupTool() string {
	if f == MySQL {
		return "xtrabackup"
	}
	return "mariabackup"
}

// initCommand returns the command that creates a fresh datadir with a passwordless root account
// reachable over the socket (Bootstrap sets its password). --no-defaults: the datadir must not
// depend on a stale option file; server options that matter at init time are passed here.
func (f Flavor) initCommand(datadir string, o InitOptions) supervisor.Cmd {
	var c supervisor.Cmd
	switch f {
	case MySQL:
		c = supervisor.Cmd{Name: "mysqld --initialize-insecure", Path: "mysqld",
			Args: []string{"--no-defaults", "--initialize-insecure", "--datadir=" + datadir}}
	default:
		// --skip-name-resolve: no root@<hostname> account tied to the image's build host.
		c = supervisor.Cmd{Name: "mariadb-install-db", Path: "mariadb-install-db",
			Args: []string{"--no-defaults", "--datadir=" + datadir,
				"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"}}
	}
	if o.Installer != "" {
		c.Path = o.Installer
	}
	if o.OSUser != "" {
		c.Args = append(c.Args, "--user="+o.OSUser)
	}
	if o.TmpDir != "" {
		c.Args = append(c.Args, "--tmpdir="+o.TmpDir) // mariadb-install-db passes it on to mariadbd
	}
	c.Stdout, c.Stderr = o.Stdout, o.Stderr
	return c
}

// ---------------------------------------------------------------------------------------------
// Read-only

// readOnlyOnSQL turns writes off for everyone but replication (and, on MariaDB, accounts with
// READ ONLY ADMIN such as root). MySQL's super_read_only also stops SUPER accounts and implies
// read_only.
func (f Flavor) readOnlyOnSQL() []string {
	if f == MySQL {
		return []string{"SET GLOBAL super_read_only = ON"}
	}
	return []string{"SET GLOBAL read_only = ON"}
}

// readOnlyOffSQL opens writes. On MySQL super_read_only goes first: read_only cannot be turned
// off while super_read_only is on.
func (f Flavor) readOnlyOffSQL() []string {
	if f == MySQL {
		return []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
	}
	return []string{"SET GLOBAL read_only = OFF"}
}

// readOnlyQuery reads whether application writes are refused.
func (f Flavor) readOnlyQuery() string { return "SELECT @@GLOBAL.read_only" }

// superReadOnlyQuery reads MySQL's super_read_only; MariaDB has none ("" then).
func (f Flavor) superReadOnlyQuery() string {
	if f == MySQL {
		return "SELECT @@GLOBAL.super_read_only"
	}
	return ""
}

// Statements that lift super_read_only around our own administrative writes on MySQL while
// read_only stays on (applications remain blocked); MariaDB's root bypasses read_only.
const (
	superReadOnlyOffSQL = "SET GLOBAL super_read_only = OFF"
	superReadOnlyOnSQL  = "SET GLOBAL super_read_only = ON"
)

// ---------------------------------------------------------------------------------------------
// GTIDs

// gtidExecutedQuery reads the transactions this server has applied (its own and replicated).
// MariaDB: gtid_binlog_state (the last transaction per domain and originating server in the
// binary log, which with log_slave_updates has everything applied here since the datadir was
// made) merged with gtid_slave_pos (what replication applied, including a restored backup's
// position, which the binlog does not show). gtid_current_pos would keep one GTID per domain
// and lose what errant-transaction checks need (see MariaDBGTIDSet).
func (f Flavor) gtidExecutedQuery() string {
	if f == MySQL {
		return "SELECT @@GLOBAL.gtid_executed"
	}
	return "SELECT CONCAT_WS(',', NULLIF(@@GLOBAL.gtid_binlog_state, ''), NULLIF(@@GLOBAL.gtid_slave_pos, ''))"
}

// gtidAppliedQuery reads what the replication SQL thread has applied: MariaDB's
// gtid_slave_pos; on MySQL the executed set (Executed_Gtid_Set in SHOW REPLICA STATUS).
func (f Flavor) gtidAppliedQuery() string {
	if f == MySQL {
		return "SELECT @@GLOBAL.gtid_executed"
	}
	return "SELECT @@GLOBAL.gtid_slave_pos"
}

// setGTIDPositionSQL makes a restored datadir start replicating after pos (the backup's own
// GTID). MariaDB: the binary log is reset and starts with pos as its GTID state
// (gtid_binlog_state), and gtid_slave_pos is pos, one GTID per domain (replication must be
// stopped). Without the binlog state, the node, once primary, could not serve a replica that
// asks for pos itself (another node restored from the same snapshot): error 1236, "not in
// the master's binlog", which reads like an errant replica. MySQL: gtid_purged, which
// needs an empty gtid_executed first, so the binary logs and GTID history are reset: RESET
// BINARY LOGS AND GTIDS from 8.2 (8.4 removed RESET MASTER), RESET MASTER before. The position
// is bound as the statement's parameter.
func (f Flavor) setGTIDPositionSQL(serverVersion string) []string {
	if f == MySQL {
		reset := "RESET MASTER"
		if versionAtLeast(serverVersion, 8, 2) {
			reset = "RESET BINARY LOGS AND GTIDS"
		}
		return []string{reset, "SET GLOBAL gtid_purged = ?"}
	}
	return []string{"RESET MASTER", "SET GLOBAL gtid_binlog_state = ?", "SET GLOBAL gtid_slave_pos = ?"}
}

// waitGTIDQuery waits up to the second argument (seconds) for the SQL thread to have applied
// the GTID set in the first; both functions return 0 when it has.
// MariaDB MASTER_GTID_WAIT returns -1 on timeout, MySQL WAIT_FOR_EXECUTED_GTID_SET 1.
func (f Flavor) waitGTIDQuery() string {
	if f == MySQL {
		return "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)"
	}
	return "SELECT MASTER_GTID_WAIT(?, ?)"
}

// relayDrainedState is the SQL thread's state once it applied everything in the relay log.
func (f Flavor) relayDrainedState() string {
	if f == MySQL {
		return "Replica has read all relay log; waiting for more updates"
	}
	return "Slave has read all relay log; waiting for more updates"
}

// ---------------------------------------------------------------------------------------------
// Replication

func (f Flavor) startReplicaSQL() string {
	if f == MySQL {
		return "START REPLICA"
	}
	return "START SLAVE"
}

func (f Flavor) stopReplicaSQL() string {
	if f == MySQL {
		return "STOP REPLICA"
	}
	return "STOP SLAVE"
}

func (f Flavor) stopIOThreadSQL() string {
	if f == MySQL {
		return "STOP REPLICA IO_THREAD"
	}
	return "STOP SLAVE IO_THREAD"
}

func (f Flavor) startIOThreadSQL() string {
	if f == MySQL {
		return "START REPLICA IO_THREAD"
	}
	return "START SLAVE IO_THREAD"
}

func (f Flavor) startSQLThreadSQL() string {
	if f == MySQL {
		return "START REPLICA SQL_THREAD"
	}
	return "START SLAVE SQL_THREAD"
}

// resetReplicaSQL forgets the primary entirely (connection settings and relay logs), for a
// promotion. It keeps the GTID history.
func (f Flavor) resetReplicaSQL() string {
	if f == MySQL {
		return "RESET REPLICA ALL"
	}
	return "RESET SLAVE ALL"
}

func (f Flavor) replicaStatusSQL() string {
	if f == MySQL {
		return "SHOW REPLICA STATUS"
	}
	return "SHOW SLAVE STATUS"
}

// preChangePrimarySQL runs (replication stopped) before pointing at a new primary.
// MariaDB replicates from gtid_slave_pos (MASTER_USE_GTID=slave_pos), which holds only what
// this server applied as a replica: a former primary's own transactions are in its binlog,
// not there, and it would ask the new primary for transactions it already has. Copying
// gtid_binlog_pos into gtid_slave_pos makes the request "after everything I have" (with
// log_slave_updates the binlog holds every transaction the server applied, replicated or its
// own); should that include transactions the new primary lacks, gtid_strict_mode makes the
// primary refuse (error 1236) instead of replicating over them. Not gtid_current_pos: it
// counts as "own" only the GTIDs of the current server_id, and a node that took a new one
// (after a restore or a truncating restart) would ask again for what it wrote under the old
// one and fail on them (out-of-order sequence numbers). MySQL's auto-positioning sends the
// whole gtid_executed set already.
func (f Flavor) preChangePrimarySQL() []string {
	if f == MySQL {
		return nil
	}
	return []string{"SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"}
}

// changePrimarySQL points replication at p. String values are quoted for the session's
// sql_mode (noBackslash: NO_BACKSLASH_ESCAPES is set). The statement holds the replication
// password: it must never be logged, and errors from it go through redact.
func (f Flavor) changePrimarySQL(p Primary, o ChangePrimaryOptions, noBackslash bool) string {
	q := func(s string) string { return quoteString(s, noBackslash) }
	retry := max(1, int((o.ConnectRetry+time.Second-1)/time.Second))
	var b strings.Builder
	if f == MySQL {
		fmt.Fprintf(&b, "CHANGE REPLICATION SOURCE TO SOURCE_HOST = %s, SOURCE_PORT = %d, SOURCE_USER = %s, SOURCE_PASSWORD = %s, SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = %d, SOURCE_RETRY_COUNT = %d",
			q(p.Host), p.Port, q(p.User), q(p.Password), retry, o.RetryCount)
		if o.HeartbeatPeriod > 0 {
			fmt.Fprintf(&b, ", SOURCE_HEARTBEAT_PERIOD = %s", seconds(o.HeartbeatPeriod))
		}
		b.WriteString(f.replicationTLSClause(o, q))
		if !o.SSL {
			// caching_sha2_password (the default) over a plain connection needs the
			// primary's RSA key to send the password.
			b.WriteString(", GET_SOURCE_PUBLIC_KEY = 1")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %d, MASTER_USER = %s, MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = %d",
		q(p.Host), p.Port, q(p.User), q(p.Password), retry)
	if o.HeartbeatPeriod > 0 {
		fmt.Fprintf(&b, ", MASTER_HEARTBEAT_PERIOD = %s", seconds(o.HeartbeatPeriod))
	}
	b.WriteString(f.replicationTLSClause(o, q))
	return b.String()
}

// replicationTLSClause is the TLS part of changePrimarySQL. Every setting is stated, since
// CHANGE MASTER keeps what it is not told: a replica told once to use TLS would otherwise keep
// it after TLS is turned off. With a CA the primary's certificate must be signed by it and
// name the host replication connects to (MariaDB and MySQL check the subject alternative
// names against MASTER_HOST/SOURCE_HOST); without one the connection is encrypted only.
func (f Flavor) replicationTLSClause(o ChangePrimaryOptions, q func(string) string) string {
	p := "MASTER_SSL"
	if f == MySQL {
		p = "SOURCE_SSL"
	}
	switch {
	case !o.SSL:
		return ", " + p + " = 0"
	case o.SSLCA == "":
		return ", " + p + " = 1, " + p + "_VERIFY_SERVER_CERT = 0"
	}
	return fmt.Sprintf(", %[1]s = 1, %[1]s_CA = %[2]s, %[1]s_VERIFY_SERVER_CERT = 1", p, q(o.SSLCA))
}

// tlsServerOptions are the [mysqld] options of the server's TLS files; both flavors spell
// them alike (require_secure_transport: MariaDB from 10.5.2, MySQL from 5.7.8; a local
// socket counts as secure in both, so mysqlpilot's own connection stays allowed).
func (f Flavor) tlsServerOptions(t ServerTLS) [][2]string {
	o := [][2]string{{"ssl_ca", optionValue(t.CA)}, {"ssl_cert", optionValue(t.Cert)}, {"ssl_key", optionValue(t.Key)}}
	if t.RequireSecureTransport {
		o = append(o, [2]string{"require_secure_transport", "ON"})
	}
	return o
}

// replSSLType is the replication account's mysql.user.ssl_type for TLS on ("ANY": REQUIRE SSL)
// or off ("": REQUIRE NONE), and requireSQL the clause that sets it; both flavors alike.
func (f Flavor) replSSLType(on bool) (sslType, require string) {
	if on {
		return "ANY", "REQUIRE SSL"
	}
	return "", "REQUIRE NONE"
}

// seconds formats d as decimal seconds with millisecond precision.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// replicaStatusColumns names SHOW SLAVE/REPLICA STATUS columns. MySQL 8.0.22+ renamed
// Slave_*/Master_* to Replica_*/Source_*; both spellings are accepted.
type replicaStatusColumns struct {
	ioRunning, sqlRunning, lag, lastIOErrno, lastIOError, lastSQLErrno, lastSQLError []string
	host, port, retrieved, executed, ioState, sqlState, primaryServerID, usingGTID   []string
}

func (f Flavor) replicaStatusColumns() replicaStatusColumns {
	c := replicaStatusColumns{
		ioRunning:       []string{"Replica_IO_Running", "Slave_IO_Running"},
		sqlRunning:      []string{"Replica_SQL_Running", "Slave_SQL_Running"},
		lag:             []string{"Seconds_Behind_Source", "Seconds_Behind_Master"},
		lastIOErrno:     []string{"Last_IO_Errno"},
		lastIOError:     []string{"Last_IO_Error"},
		lastSQLErrno:    []string{"Last_SQL_Errno"},
		lastSQLError:    []string{"Last_SQL_Error"},
		host:            []string{"Source_Host", "Master_Host"},
		port:            []string{"Source_Port", "Master_Port"},
		ioState:         []string{"Replica_IO_State", "Slave_IO_State"},
		sqlState:        []string{"Replica_SQL_Running_State", "Slave_SQL_Running_State"},
		primaryServerID: []string{"Source_Server_Id", "Master_Server_Id"},
	}
	if f == MySQL {
		c.retrieved = []string{"Retrieved_Gtid_Set"}
		c.executed = []string{"Executed_Gtid_Set"}
		c.usingGTID = []string{"Auto_Position"}
	} else {
		// MariaDB shows Retrieved_Gtid_Set/Executed_Gtid_Set for compatibility, always empty.
		c.retrieved = []string{"Gtid_IO_Pos"}
		c.executed = nil // read from gtidAppliedQuery
		c.usingGTID = []string{"Using_Gtid"}
	}
	return c
}

// replicationPrivileges is what the replication account needs on the primary, and no more:
// the binlog dump (REPLICATION SLAVE). Replicas run no other query needing privileges.
func (f Flavor) replicationPrivileges() string { return "REPLICATION SLAVE" }

// ---------------------------------------------------------------------------------------------
// Accounts

// identifiedBy returns the IDENTIFIED clause for password. MariaDB gets the
// mysql_native_password hash computed here, so the clear password is in no statement text
// (processlist, general log, binlog). MySQL gets the password as a quoted literal (default
// plugin caching_sha2_password, whose salted hash the client cannot precompute); MySQL
// rewrites it to a hash in its logs and binlog.
func (f Flavor) identifiedBy(password string, noBackslash bool) string {
	if f == MySQL {
		return "IDENTIFIED BY " + quoteString(password, noBackslash)
	}
	return "IDENTIFIED BY PASSWORD '" + nativePasswordHash(password) + "'"
}

// maxUserNameLen is the longest account name the server stores.
func (f Flavor) maxUserNameLen() int {
	if f == MySQL {
		return 32
	}
	return 80
}

// ---------------------------------------------------------------------------------------------
// Processes

// isSystemThread reports a processlist entry that KillClientConnections must leave alone:
// server daemons (event scheduler), this server's replication threads, and the binlog dump
// threads that feed replicas (a fenced primary still lets replicas catch up). Both flavors
// use the same names; MySQL's replication threads run as "system user" with command Connect
// or Query, MariaDB's show Slave_IO/Slave_SQL/Slave_worker.
func (f Flavor) isSystemThread(user, command string) bool {
	switch user {
	case "system user", "event_scheduler":
		return true
	}
	switch command {
	case "Daemon", "Binlog Dump", "Binlog Dump GTID", "Slave_IO", "Slave_SQL", "Slave_worker", "Killed":
		return true
	}
	return false
}

// ---------------------------------------------------------------------------------------------
// Watchdog

// watchdogFenceSQL is what the watchdog event runs when the heartbeat is stale. On MySQL,
// super_read_only also stops SUPER accounts.
func (f Flavor) watchdogFenceSQL() string { return f.readOnlyOnSQL()[0] }

// ---------------------------------------------------------------------------------------------
// Semi-synchronous replication

// semiSyncPluginsSQL returns, for MySQL, the plugins semi-sync needs by name with their
// INSTALL statements (INSTALL PLUGIN fails when already installed, so the caller checks
// information_schema.PLUGINS first). MariaDB 10.3+ has semi-sync built in.
func (f Flavor) semiSyncPluginsSQL() [][2]string {
	if f != MySQL {
		return nil
	}
	return [][2]string{
		{"rpl_semi_sync_source", "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'"},
		{"rpl_semi_sync_replica", "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'"},
	}
}

// semiSyncSQL configures semi-sync for the role: a primary waits (after syncing its binlog,
// before committing: AFTER_SYNC, lossless) up to timeout for one replica to acknowledge each
// transaction, then falls back to asynchronous; a very long timeout means no fallback. A
// replica acknowledges; its setting applies from the next IO thread start.
func (f Flavor) semiSyncSQL(primary bool, timeout time.Duration) []string {
	src, rep := "rpl_semi_sync_master", "rpl_semi_sync_slave"
	if f == MySQL {
		src, rep = "rpl_semi_sync_source", "rpl_semi_sync_replica"
	}
	if !primary {
		return []string{
			"SET GLOBAL " + src + "_enabled = OFF",
			"SET GLOBAL " + rep + "_enabled = ON",
		}
	}
	ms := max(1, timeout.Milliseconds())
	return []string{
		"SET GLOBAL " + src + "_timeout = " + strconv.FormatInt(ms, 10),
		"SET GLOBAL " + src + "_wait_point = AFTER_SYNC",
		"SET GLOBAL " + rep + "_enabled = OFF",
		"SET GLOBAL " + src + "_enabled = ON",
	}
}

// semiSyncPrimaryQuery says whether a primary's commits wait for an acknowledgement.
func (f Flavor) semiSyncPrimaryQuery() string {
	if f == MySQL {
		return "SELECT @@GLOBAL.rpl_semi_sync_source_enabled"
	}
	return "SELECT @@GLOBAL.rpl_semi_sync_master_enabled"
}

// semiSyncOffSQL turns semi-sync off in both roles.
func (f Flavor) semiSyncOffSQL() []string {
	src, rep := "rpl_semi_sync_master", "rpl_semi_sync_slave"
	if f == MySQL {
		src, rep = "rpl_semi_sync_source", "rpl_semi_sync_replica"
	}
	return []string{"SET GLOBAL " + src + "_enabled = OFF", "SET GLOBAL " + rep + "_enabled = OFF"}
}

// ---------------------------------------------------------------------------------------------
// Option file

// serverOptions returns the flavor-specific [mysqld] settings of the option file.
func (f Flavor) serverOptions(c ServerConfig) [][2]string {
	if f == MySQL {
		o := [][2]string{
			{"gtid_mode", "ON"},
			{"enforce_gtid_consistency", "ON"},
			{"log_replica_updates", "ON"},
			{"skip_replica_start", "ON"},
			{"read_only", "ON"},
			{"super_read_only", "ON"},
			{"mysqlx", "OFF"}, // no second listener (33060) per container
			// A replica gives up on a silent primary after this (heartbeats come every second),
			// not after the default minute: it stops counting as replicating (and as able to
			// acknowledge semi-synchronous commits) within seconds of a cut.
			{"replica_net_timeout", "10"},
		}
		if c.SemiSync != nil {
			o = append(o,
				[2]string{"plugin-load-add", "semisync_source.so"},
				[2]string{"plugin-load-add", "semisync_replica.so"},
				[2]string{"loose_rpl_semi_sync_source_enabled", "OFF"},
				[2]string{"loose_rpl_semi_sync_replica_enabled", "OFF"},
				[2]string{"loose_rpl_semi_sync_source_wait_point", "AFTER_SYNC"},
				[2]string{"loose_rpl_semi_sync_source_timeout", strconv.FormatInt(max(1, c.SemiSync.Timeout.Milliseconds()), 10)})
		}
		return o
	}
	o := [][2]string{
		{"gtid_strict_mode", "ON"},
		{"log_slave_updates", "ON"},
		{"skip_slave_start", "ON"},
		{"read_only", "ON"},
		{"slave_net_timeout", "10"}, // see the MySQL branch
	}
	if c.SemiSync != nil {
		replica := "OFF"
		if c.SemiSync.TruncateUnacknowledged {
			// See SemiSyncConfig.TruncateUnacknowledged. The loop turns the replica side
			// off at once unless the node is a member of the primary's sync set.
			replica = "ON"
		}
		o = append(o,
			[2]string{"rpl_semi_sync_master_enabled", "OFF"},
			[2]string{"rpl_semi_sync_slave_enabled", replica})
		if c.SemiSync.TruncateUnacknowledged {
			o = append(o, [2]string{"init_rpl_role", "SLAVE"})
		}
		o = append(o,
			[2]string{"rpl_semi_sync_master_wait_point", "AFTER_SYNC"},
			[2]string{"rpl_semi_sync_master_timeout", strconv.FormatInt(max(1, c.SemiSync.Timeout.Milliseconds()), 10)})
	}
	return o
}

// versionAtLeast compares a server version string ("8.4.3", "10.11.19-MariaDB-0+deb12u1")
// with major.minor. Unparseable versions compare as old.
func versionAtLeast(v string, major, minor int) bool {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' })
	if len(f) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(f[0])
	mi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// ---------------------------------------------------------------------------------------------
// Backup and restore (internal/snapshot)

// StreamTool is the tool that unpacks a backup stream: mbstream (MariaDB) or xbstream.
func (f Flavor) StreamTool() string {
	if f == MySQL {
		return "xbstream"
	}
	return "mbstream"
}

// BackupArgs are the backup tool's arguments for a streamed hot backup (xbstream format on
// stdout) over the connection in optionFile (a [client] file from WriteClientOptionFile, so
// no password is in argv). --defaults-extra-file must come first. targetDir only holds the
// tool's scratch files while streaming.
//
// --log-copy-interval: at its end mariabackup blocks commits (BACKUP STAGE BLOCK_COMMIT)
// until its redo-log copying thread has caught up, and that thread looks only every
// log-copy-interval: 1 s by default (xtrabackup 8.0 takes the option too, and waits for its
// copier the same way under its backup lock; not measured here). Measured on MariaDB 10.11 under a commit
// every 5 ms: the worst commit waited 1.00 s at the default, 0.10 s at 100 ms, 14-19 ms at
// 20 ms; a small backup took 2.05 s, 0.24 s and 0.08 s. Polling the redo log 50 times a
// second costs next to nothing.
func (f Flavor) BackupArgs(optionFile, targetDir string) []string {
	return []string{"--defaults-extra-file=" + optionFile, "--backup", "--stream=xbstream",
		"--target-dir=" + targetDir, "--log-copy-interval=" + strconv.Itoa(backupLogCopyIntervalMs)}
}

// backupLogCopyIntervalMs is the backup's --log-copy-interval (see BackupArgs).
const backupLogCopyIntervalMs = 20

// ExtractArgs are StreamTool's arguments to unpack a stream read from stdin into dir.
func (f Flavor) ExtractArgs(dir string) []string { return []string{"-x", "-C", dir} }

// PrepareArgs are the backup tool's arguments to apply the redo log of an unpacked backup in
// dir, so that it is a consistent datadir. --no-defaults: no option file of this host
// changes how the backup is prepared. useMemory, when positive, is the buffer pool the redo
// log is applied in, in bytes (--use-memory: mariabackup and xtrabackup alike; both default
// to 100 MiB).
func (f Flavor) PrepareArgs(dir string, useMemory int64) []string {
	args := []string{"--no-defaults", "--prepare", "--target-dir=" + dir}
	if useMemory > 0 {
		args = append(args, fmt.Sprintf("--use-memory=%d", useMemory))
	}
	return args
}

// BinlogInfoFiles names the files, in order of preference, in which the backup tool records
// the binary log position and GTID of the backup: one line "file<TAB>position<TAB>gtid".
// MariaDB 10.11 writes xtrabackup_binlog_info; later releases renamed it
// mariadb_backup_binlog_info.
func (f Flavor) BinlogInfoFiles() []string {
	if f == MySQL {
		return []string{"xtrabackup_binlog_info"}
	}
	return []string{"mariadb_backup_binlog_info", "xtrabackup_binlog_info"}
}

// BackupInfoFiles names the files in which the backup tool records facts about the backup as
// "key = value" lines (server_version among them).
func (f Flavor) BackupInfoFiles() []string {
	if f == MySQL {
		return []string{"xtrabackup_info"}
	}
	return []string{"mariadb_backup_info", "xtrabackup_info"}
}

// ReloadTLS makes a running server load its certificate files again (new connections get
// them; established ones keep their session): FLUSH SSL on MariaDB (10.4+), ALTER INSTANCE
// RELOAD TLS on MySQL 8.
func (f Flavor) ReloadTLS() string {
	if f == MySQL {
		return "ALTER INSTANCE RELOAD TLS"
	}
	return "FLUSH SSL"
}

// BinlogTool is the binary log reader: mariadb-binlog or mysqlbinlog.
func (f Flavor) BinlogTool() string {
	if f == MySQL {
		return "mysqlbinlog"
	}
	return "mariadb-binlog"
}

// ClientTool is the command-line client that replays mysqlbinlog output.
func (f Flavor) ClientTool() string {
	if f == MySQL {
		return "mysql"
	}
	return "mariadb"
}

// ReplayClientArgs are ClientTool's arguments to execute binary log events read from stdin
// over the connection in optionFile. --binary-mode: row events hold arbitrary bytes.
func (f Flavor) ReplayClientArgs(optionFile string) []string {
	return []string{"--defaults-extra-file=" + optionFile, "--binary-mode"}
}

// BinlogReplayArgs are BinlogTool's arguments (before the file names) to print the events of
// binary log files for replay: those after the GTID position after (empty: all), up to the
// first event at or after the whole second stopAt (zero: no limit; the tool reads the time
// in its local time zone, so run it with TZ=UTC) or up to and including the GTIDs in
// untilGTID (empty: no limit).
func (f Flavor) BinlogReplayArgs(after string, stopAt time.Time, untilGTID string) []string {
	args := []string{"--no-defaults"}
	if f == MySQL {
		if after != "" {
			args = append(args, "--exclude-gtids="+after)
		}
		if untilGTID != "" {
			args = append(args, "--include-gtids="+untilGTID)
		}
	} else {
		if after != "" {
			args = append(args, "--start-position="+after)
		}
		if untilGTID != "" {
			args = append(args, "--stop-position="+untilGTID)
		}
	}
	if !stopAt.IsZero() {
		args = append(args, "--stop-datetime="+stopAt.UTC().Format("2006-01-02 15:04:05"))
	}
	return args
}

// BinlogStartPosQuery returns the GTID position at the start of binary log file ? (bound as
// the parameter), or "" when the flavor cannot tell (MySQL).
func (f Flavor) BinlogStartPosQuery() string {
	if f == MySQL {
		return ""
	}
	return "SELECT BINLOG_GTID_POS(?, 4)"
}

// BinlogBasenameQuery reads the path of the binary logs without the numeric extension
// (e.g. /var/lib/mysql/mysql-bin), or NULL when binary logging is off.
func (f Flavor) BinlogBasenameQuery() string { return "SELECT @@GLOBAL.log_bin_basename" }

// FlushBinlogsSQL closes the current binary log and opens the next one.
func (f Flavor) FlushBinlogsSQL() string { return "FLUSH BINARY LOGS" }

// ListBinlogsSQL lists the binary logs, oldest first: Log_name, File_size (and more columns
// on some versions).
func (f Flavor) ListBinlogsSQL() string { return "SHOW BINARY LOGS" }

// SeedGTIDStateSQL makes a freshly restored server a primary whose history ends at the
// backup's GTID position (bound as each statement's parameter, "?"), so replicas can follow
// it from there and replayed binlog events continue it: MariaDB gets an empty binlog with
// that binlog state and the same replication position; MySQL gets gtid_purged. The server
// must have nothing of its own in its binlog (a restored datadir has none).
func (f Flavor) SeedGTIDStateSQL(serverVersion string) []string {
	if f == MySQL {
		return f.setGTIDPositionSQL(serverVersion)
	}
	return []string{"RESET MASTER", "SET GLOBAL gtid_binlog_state = ?", "SET GLOBAL gtid_slave_pos = ?"}
}

// BinlogPosQuery reads the GTID position at the end of the server's own binary log
// (MariaDB gtid_binlog_pos, MySQL gtid_executed), after a replay.
func (f Flavor) BinlogPosQuery() string {
	if f == MySQL {
		return "SELECT @@GLOBAL.gtid_executed"
	}
	return "SELECT @@GLOBAL.gtid_binlog_pos"
}

// SyncReplicaPosSQL makes the replication position match what the binary log holds after a
// replay (bound as the parameter), so the node continues from there when it later follows a
// primary. MySQL's gtid_executed already covers both ("" then).
func (f Flavor) SyncReplicaPosSQL() string {
	if f == MySQL {
		return ""
	}
	return "SET GLOBAL gtid_slave_pos = ?"
}

// ReplayServerOptions are the [mysqld] options, appended to the node's usual option file,
// of a private server that replays binary logs into a restored datadir: no network, no
// replication start, no events (a restored watchdog event must not fence it), writable
// for root.
func (f Flavor) ReplayServerOptions() []string {
	o := []string{"skip-networking", "event_scheduler = OFF", "read_only = OFF"}
	if f == MySQL {
		return append(o, "skip_replica_start = ON", "super_read_only = OFF")
	}
	return append(o, "skip_slave_start = ON")
}

// DrillServerOptions are the [mysqld] options, appended to the usual option file, of a restore
// drill's throw-away server on a restored copy of a snapshot: those of ReplayServerOptions
// (no network, no replication start, no events) and no binary log (it writes nothing anyone
// replicates, and keeps nothing).
func (f Flavor) DrillServerOptions() []string {
	return append(f.ReplayServerOptions(), "skip-log-bin", "max_connections = 10")
}
