package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
)

// Users are the accounts Bootstrap creates. Empty optional fields skip their account.
type Users struct {
	// RootPassword is set on root@localhost, root@127.0.0.1 and root@::1. Required.
	RootPassword string
	// User and Password: an application account ('User'@'%') with all privileges on Database.
	User, Password string
	// Database is created when missing.
	Database string
	// ReplUser and ReplPassword: the account replicas log in with ('ReplUser'@'%'), with
	// replication privileges only.
	ReplUser, ReplPassword string
}

func (u Users) secrets() []string { return []string{u.RootPassword, u.Password, u.ReplPassword} }

func (u Users) validate(f Flavor) error {
	var errs []error
	if u.RootPassword == "" {
		errs = append(errs, errors.New("root password is empty"))
	}
	if u.User != "" && u.Password == "" {
		errs = append(errs, fmt.Errorf("user %s has no password", u.User))
	}
	if u.ReplUser != "" && u.ReplPassword == "" {
		errs = append(errs, fmt.Errorf("replication user %s has no password", u.ReplUser))
	}
	if u.User != "" && u.User == u.ReplUser {
		errs = append(errs, errors.New("application and replication users must differ"))
	}
	for _, name := range []string{u.User, u.ReplUser} {
		if len(name) > f.maxUserNameLen() {
			errs = append(errs, fmt.Errorf("user name %q longer than %d characters", name, f.maxUserNameLen()))
		}
		if strings.EqualFold(name, "root") {
			errs = append(errs, errors.New("root cannot be the application or replication user"))
		}
	}
	if len(u.Database) > 64 || strings.ContainsAny(u.Database, "/\\.") || strings.HasSuffix(u.Database, " ") {
		errs = append(errs, fmt.Errorf("database name %q is not a valid name", u.Database))
	}
	for _, kv := range [][2]string{{"root password", u.RootPassword}, {"user", u.User},
		{"password", u.Password}, {"database", u.Database}, {"replication user", u.ReplUser},
		{"replication password", u.ReplPassword}} {
		if err := checkNoNUL(kv[0], kv[1]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// localRootHosts are the root accounts a fresh datadir has.
func localRootHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// Bootstrap creates or updates the accounts and database in u, logged to the binary log so
// that replicas get them. Idempotent: CREATE ... IF NOT EXISTS then ALTER USER, so running it
// again (or a replica replaying it) changes nothing but passwords. Every root account gets
// RootPassword; anonymous accounts are dropped (they would shadow 'user'@'%' for local logins). Run it on the primary; a node that
// will replicate uses BootstrapLocal. Passwords never appear in errors.
func (db *DB) Bootstrap(ctx context.Context, u Users) error {
	return db.bootstrap(ctx, u, false)
}

// BootstrapLocal is Bootstrap with sql_log_bin=0: for a fresh node that will be a replica (its
// root password must be set before it can be managed, and a transaction of its own would be
// errant in the cluster). The primary's Bootstrap, replicated later, then changes nothing.
func (db *DB) BootstrapLocal(ctx context.Context, u Users) error {
	return db.bootstrap(ctx, u, true)
}

func (db *DB) bootstrap(ctx context.Context, u Users, local bool) error {
	if err := u.validate(db.flavor); err != nil {
		return fmt.Errorf("mysql: bootstrap: %w", err)
	}
	err := db.withConn(ctx, adminOpts{noBinlog: local, superWritable: true}, func(c *sql.Conn, nb bool) error {
		// Every root account gets the password: the local ones a fresh datadir has always,
		// and any other (root@<build host>); IF EXISTS keeps replicas that lack one happy.
		hosts, err := listHosts(ctx, c, "root")
		if err != nil {
			return err
		}
		var stmts []string
		for _, h := range mergeHosts(localRootHosts(), hosts) {
			stmts = append(stmts, "ALTER USER IF EXISTS "+account("root", h, nb)+" "+db.flavor.identifiedBy(u.RootPassword, nb))
		}
		// Anonymous accounts would shadow 'user'@'%' for local logins.
		anon, err := listHosts(ctx, c, "")
		if err != nil {
			return err
		}
		for _, h := range anon {
			stmts = append(stmts, "DROP USER IF EXISTS "+account("", h, nb))
		}
		if u.Database != "" {
			stmts = append(stmts, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(u.Database))
		}
		if u.User != "" {
			acct := account(u.User, "%", nb)
			idb := db.flavor.identifiedBy(u.Password, nb)
			stmts = append(stmts, "CREATE USER IF NOT EXISTS "+acct+" "+idb, "ALTER USER "+acct+" "+idb)
			if u.Database != "" {
				stmts = append(stmts, "GRANT ALL PRIVILEGES ON "+quoteGrantDB(u.Database)+".* TO "+acct)
			}
		}
		if u.ReplUser != "" {
			acct := account(u.ReplUser, "%", nb)
			idb := db.flavor.identifiedBy(u.ReplPassword, nb)
			stmts = append(stmts, "CREATE USER IF NOT EXISTS "+acct+" "+idb, "ALTER USER "+acct+" "+idb,
				"GRANT "+db.flavor.replicationPrivileges()+" ON *.* TO "+acct)
		}
		for i, s := range stmts {
			if _, err := c.ExecContext(ctx, s); err != nil {
				// The statement may hold a password (or its hash): name it by position and
				// verb, and drop whatever the server quoted from it.
				return fmt.Errorf("statement %d (%s): %w", i+1, verb(s), scrubQuoted(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mysql: bootstrap accounts: %w", redactError(err, u.secrets()...))
	}
	return nil
}

// listHosts returns the hosts of the accounts named user.
func listHosts(ctx context.Context, c *sql.Conn, user string) ([]string, error) {
	rows, err := c.QueryContext(ctx, "SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host", user)
	if err != nil {
		return nil, fmt.Errorf("list accounts of %q: %w", user, err)
	}
	defer rows.Close()
	var hosts []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("list accounts of %q: %w", user, err)
		}
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts of %q: %w", user, err)
	}
	return hosts, nil
}

// mergeHosts returns a followed by the hosts of b not in a.
func mergeHosts(a, b []string) []string {
	out := slices.Clone(a)
	for _, h := range b {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// verb returns a statement's first words, up to the first quote: safe to show.
func verb(stmt string) string {
	if i := strings.IndexAny(stmt, "'`\""); i >= 0 {
		stmt = stmt[:i]
	}
	return strings.TrimSpace(stmt)
}

// ReadOnly reports whether the server refuses application writes (@@read_only; on MySQL
// super_read_only implies it).
func (db *DB) ReadOnly(ctx context.Context) (bool, error) {
	var v bool
	if err := db.pool.QueryRowContext(ctx, db.flavor.readOnlyQuery()).Scan(&v); err != nil {
		return false, fmt.Errorf("mysql: read read_only: %w", err)
	}
	return v, nil
}

// SetReadOnly turns application writes off (on: read_only, and super_read_only on MySQL) or
// on. Replication keeps applying either way. Safety rule: only a lock holder with a fresh
// session opens writes, and with the watchdog armed first (see OpenWrites).
func (db *DB) SetReadOnly(ctx context.Context, on bool) error {
	stmts := db.flavor.readOnlyOffSQL()
	if on {
		stmts = db.flavor.readOnlyOnSQL()
	}
	if err := db.exec(ctx, stmts...); err != nil {
		return fmt.Errorf("mysql: set read_only=%t: %w", on, err)
	}
	return nil
}

// OpenWrites makes this server a writable primary: it arms the watchdog for d (when d > 0)
// and only then turns read_only off, so that there is no moment with writes open and nothing
// to fence them if mysqlpilot freezes. The watchdog must be installed.
func (db *DB) OpenWrites(ctx context.Context, d time.Duration) error {
	if d > 0 {
		if err := db.ArmWatchdog(ctx, d); err != nil {
			return fmt.Errorf("mysql: open writes: %w", err)
		}
	}
	if err := db.SetReadOnly(ctx, false); err != nil {
		return fmt.Errorf("mysql: open writes: %w", err)
	}
	return nil
}

// KillClientConnections kills every connection but the server's own threads (event
// scheduler, replication threads, binlog dumps feeding replicas) and this pool's connections,
// and returns how many it killed. Connections that end on their own meanwhile are not errors.
func (db *DB) KillClientConnections(ctx context.Context) (int, error) {
	type proc struct {
		id              uint64
		user, host, cmd string
	}
	rows, err := db.pool.QueryContext(ctx,
		"SELECT ID, USER, HOST, COMMAND FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()")
	if err != nil {
		return 0, fmt.Errorf("mysql: kill client connections: list: %w", err)
	}
	var victims []proc
	for rows.Next() {
		var p proc
		var user, host, cmd sql.NullString
		if err := rows.Scan(&p.id, &user, &host, &cmd); err != nil {
			rows.Close()
			return 0, fmt.Errorf("mysql: kill client connections: list: %w", err)
		}
		p.user, p.host, p.cmd = user.String, host.String, cmd.String
		if db.own.has(p.id) || db.flavor.isSystemThread(p.user, p.cmd) {
			continue
		}
		victims = append(victims, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("mysql: kill client connections: list: %w", err)
	}
	killed := 0
	var errs []error
	for _, p := range victims {
		_, err := db.pool.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", p.id))
		if isErrno(err, 1094) { // unknown thread id: it ended by itself
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("kill %d (%s@%s): %w", p.id, p.user, p.host, err))
			continue
		}
		killed++
		db.log.Debug("killed client connection", "id", p.id, "user", p.user, "host", p.host, "command", p.cmd)
	}
	if len(errs) > 0 {
		return killed, fmt.Errorf("mysql: kill client connections: %w", errors.Join(errs...))
	}
	return killed, nil
}

// fenceKillAfter is how long Fence lets SET GLOBAL read_only wait before it kills clients
// anyway: setting read_only waits for running write statements, which the kill ends.
const fenceKillAfter = time.Second

// Fence stops writes now: read_only on first (a client that reconnects meets it), then every
// client connection killed. When read_only waits behind a long write for more than a second,
// clients are killed at once to end it, and once more after read_only is on. Returns the
// number of connections killed.
func (db *DB) Fence(ctx context.Context) (int, error) {
	roDone := make(chan error, 1)
	go func() { roDone <- db.SetReadOnly(ctx, true) }()
	killed := 0
	t := time.NewTimer(fenceKillAfter)
	defer t.Stop()
	select {
	case err := <-roDone:
		if err != nil {
			return 0, fmt.Errorf("mysql: fence: %w", err)
		}
	case <-t.C:
		db.log.Warn("read_only waits for running statements; killing client connections first")
		n, kerr := db.KillClientConnections(ctx)
		killed += n
		if err := <-roDone; err != nil {
			return killed, fmt.Errorf("mysql: fence: %w", errors.Join(err, kerr))
		}
	}
	n, err := db.KillClientConnections(ctx)
	killed += n
	if err != nil {
		return killed, fmt.Errorf("mysql: fence: %w", err)
	}
	return killed, nil
}

// GTIDState is a server's replication progress in its flavor's notation (parse with
// ParseGTIDSet).
type GTIDState struct {
	// Executed: every transaction applied here, own and replicated. MySQL: gtid_executed.
	// MariaDB: gtid_binlog_state merged with gtid_slave_pos, the last transaction per domain
	// and originating server (compare these to find errant transactions; see MariaDBGTIDSet).
	Executed string
	// Received: what the replica IO thread has fetched, applied or not (MariaDB Gtid_IO_Pos,
	// MySQL Retrieved_Gtid_Set); "" when not a replica.
	Received string
}

// GTIDState reads the server's GTID progress.
func (db *DB) GTIDState(ctx context.Context) (GTIDState, error) {
	var s GTIDState
	raw, err := queryString(ctx, db.pool, db.flavor.gtidExecutedQuery())
	if err != nil {
		return GTIDState{}, fmt.Errorf("mysql: read executed GTIDs: %w", err)
	}
	set, err := ParseGTIDSet(db.flavor, normalizeGTIDText(raw))
	if err != nil {
		return GTIDState{}, fmt.Errorf("mysql: read executed GTIDs: %w", err)
	}
	s.Executed = set.String()
	rs, err := db.ReplicaStatus(ctx)
	if err != nil {
		return GTIDState{}, fmt.Errorf("mysql: read received GTIDs: %w", err)
	}
	if rs != nil {
		s.Received = rs.RetrievedGTID
	}
	return s, nil
}

// normalizeGTIDText drops the newlines MySQL puts after commas in GTID sets.
func normalizeGTIDText(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// isErrno reports a server error with the given number.
func isErrno(err error, n uint16) bool {
	var me *mysqldrv.MySQLError
	return errors.As(err, &me) && me.Number == n
}

// BinlogSentToAll reports how many replicas are connected (binlog dump threads) and whether
// every one of them has been sent the whole binary log. On a fenced primary this is the
// moment a handover can release the lock: nothing more will be written, and every connected
// replica already has (in its relay log) all there is. Both flavors' dump threads say "...has
// sent all binlog to..." in their state once they are idle at the end of the log.
func (db *DB) BinlogSentToAll(ctx context.Context) (replicas int, all bool, err error) {
	rows, err := db.pool.QueryContext(ctx, `SELECT COALESCE(STATE, '') FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`)
	if err != nil {
		return 0, false, fmt.Errorf("mysql: read binlog dump threads: %w", err)
	}
	defer rows.Close()
	all = true
	for rows.Next() {
		var state string
		if err := rows.Scan(&state); err != nil {
			return 0, false, fmt.Errorf("mysql: read binlog dump threads: %w", err)
		}
		replicas++
		if !strings.Contains(state, "has sent all binlog") {
			all = false
		}
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("mysql: read binlog dump threads: %w", err)
	}
	return replicas, all && replicas > 0, nil
}

// RequireReplTLS makes the replication account ('user'@'%') require TLS (on: REQUIRE SSL) or
// not (REQUIRE NONE), so that no replica falls back to a plain connection. The change stays
// out of the binary log: a promotion must add no transaction of its own (one written before
// semi-sync is on, by a node that dies at once, would be errant on its return and force a
// re-seed); every node applies it when it is promoted, and the requirement matters only on
// the primary, whom replicas log in to. It reports whether it changed the account; an
// account that does not exist (yet) is left alone.
func (db *DB) RequireReplTLS(ctx context.Context, user string, on bool) (changed bool, err error) {
	want, clause := db.flavor.replSSLType(on)
	err = db.withConn(ctx, adminOpts{noBinlog: true, superWritable: true}, func(c *sql.Conn, nb bool) error {
		var have string
		err := c.QueryRowContext(ctx, "SELECT ssl_type FROM mysql.user WHERE User = ? AND Host = '%'", user).Scan(&have)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the account's ssl_type: %w", err)
		}
		if strings.EqualFold(have, want) {
			return nil
		}
		if _, err := c.ExecContext(ctx, "ALTER USER "+account(user, "%", nb)+" "+clause); err != nil {
			return fmt.Errorf("ALTER USER ... %s: %w", clause, err)
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("mysql: replication account %s: %w", user, err)
	}
	return changed, nil
}
