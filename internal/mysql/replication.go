package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Primary is the server to replicate from.
type Primary struct {
	Host     string
	Port     int
	User     string
	Password string
}

// ChangePrimaryOptions tune ChangePrimary.
type ChangePrimaryOptions struct {
	// ConnectRetry is the pause between reconnect attempts; default 5s (whole seconds).
	ConnectRetry time.Duration
	// RetryCount is how often MySQL reconnects before the IO thread gives up; default 86400.
	// MariaDB takes this from the server's master_retry_count (default 100000).
	RetryCount int
	// HeartbeatPeriod is how often an idle primary sends a heartbeat; 0 keeps the server's
	// default (half of slave_net_timeout).
	HeartbeatPeriod time.Duration
	// SSL asks for an encrypted replication connection; false states it off.
	SSL bool
	// SSLCA, with SSL, is the CA file (on the replica) the primary's certificate must be
	// signed by; the certificate must also name Primary.Host. "" encrypts without verifying.
	SSLCA string
}

// Defaults for ChangePrimaryOptions.
const (
	DefaultConnectRetry = 5 * time.Second
	DefaultRetryCount   = 86400
)

// ChangePrimary points replication at p; it stops replication first and does not start it
// (StartReplica does). GTID auto-positioning: MariaDB MASTER_USE_GTID=slave_pos after copying
// gtid_binlog_pos into gtid_slave_pos, MySQL SOURCE_AUTO_POSITION=1. A former primary whose
// transactions the new primary lacks is refused by the new primary at StartReplica (the
// replica's LastIOError says so); compare GTID sets before calling this.
func (db *DB) ChangePrimary(ctx context.Context, p Primary, o ChangePrimaryOptions) error {
	target := fmt.Sprintf("%s:%d", p.Host, p.Port)
	if p.Host == "" || p.Port < 1 || p.Port > 65535 || p.User == "" {
		return fmt.Errorf("mysql: change primary to %s: host, port and user are required", target)
	}
	for _, kv := range [][2]string{{"host", p.Host}, {"user", p.User}, {"password", p.Password}} {
		if err := checkNoNUL(kv[0], kv[1]); err != nil {
			return fmt.Errorf("mysql: change primary to %s: %w", target, err)
		}
	}
	if o.ConnectRetry <= 0 {
		o.ConnectRetry = DefaultConnectRetry
	}
	if o.RetryCount <= 0 {
		o.RetryCount = DefaultRetryCount
	}
	err := db.withConn(ctx, adminOpts{}, func(c *sql.Conn, nb bool) error {
		stmts := append([]string{db.flavor.stopReplicaSQL()}, db.flavor.preChangePrimarySQL()...)
		for _, s := range stmts {
			if _, err := c.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		if _, err := c.ExecContext(ctx, db.flavor.changePrimarySQL(p, o, nb)); err != nil {
			return fmt.Errorf("%s: %w", verb(db.flavor.changePrimarySQL(Primary{}, o, nb)), scrubQuoted(err))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mysql: change primary to %s: %w", target, redactError(err, p.Password))
	}
	return nil
}

// StartReplica starts both replication threads.
func (db *DB) StartReplica(ctx context.Context) error {
	if err := db.exec(ctx, db.flavor.startReplicaSQL()); err != nil {
		return fmt.Errorf("mysql: start replica: %w", err)
	}
	return nil
}

// StopReplica stops both replication threads; stopping a stopped replica is no error.
func (db *DB) StopReplica(ctx context.Context) error {
	if err := db.exec(ctx, db.flavor.stopReplicaSQL()); err != nil {
		return fmt.Errorf("mysql: stop replica: %w", err)
	}
	return nil
}

// ResetReplica stops replication and forgets the primary and the relay logs (for a promotion;
// WaitRelayApplied first). The GTID history stays.
func (db *DB) ResetReplica(ctx context.Context) error {
	if err := db.exec(ctx, db.flavor.stopReplicaSQL(), db.flavor.resetReplicaSQL()); err != nil {
		return fmt.Errorf("mysql: reset replica: %w", err)
	}
	return nil
}

// ReplicaStatus is the replication state of a replica.
type ReplicaStatus struct {
	// IORunning and SQLRunning are true when the thread runs ("Yes"); IOState is the raw
	// value ("Yes", "No", "Connecting", "Preparing").
	IORunning, SQLRunning bool
	IOState               string
	// LagSeconds is Seconds_Behind_Master/Source; nil when the server does not know (a thread
	// stopped, or not connected).
	LagSeconds *int
	// LastIOError and LastSQLError are the threads' last errors; "" when none. Errno 0 then.
	LastIOErrno, LastSQLErrno int
	LastIOError, LastSQLError string
	PrimaryHost               string
	PrimaryPort               int
	PrimaryServerID           uint32
	// UsingGTID is MariaDB's Using_Gtid ("Slave_Pos") or MySQL's Auto_Position ("1").
	UsingGTID string
	// RetrievedGTID is what the IO thread fetched (MariaDB Gtid_IO_Pos, MySQL
	// Retrieved_Gtid_Set); ExecutedGTID what the SQL thread applied (MariaDB gtid_slave_pos,
	// MySQL Executed_Gtid_Set).
	RetrievedGTID, ExecutedGTID string
	// SQLState is the SQL thread's state text.
	SQLState string
}

// ReplicaStatus returns the replication state, or nil when the server is not a replica.
func (db *DB) ReplicaStatus(ctx context.Context) (*ReplicaStatus, error) {
	st, err := db.replicaStatus(ctx, db.pool)
	if err != nil {
		return nil, fmt.Errorf("mysql: replica status: %w", err)
	}
	return st, nil
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func (db *DB) replicaStatus(ctx context.Context, q querier) (*ReplicaStatus, error) {
	rows, err := q.QueryContext(ctx, db.flavor.replicaStatusSQL())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	rows.Close()
	byName := make(map[string]sql.NullString, len(cols))
	for i, c := range cols {
		byName[c] = vals[i]
	}
	get := func(names []string) sql.NullString {
		for _, n := range names {
			if v, ok := byName[n]; ok {
				return v
			}
		}
		return sql.NullString{}
	}
	atoi := func(names []string) int {
		n, _ := strconv.Atoi(get(names).String)
		return n
	}
	c := db.flavor.replicaStatusColumns()
	st := &ReplicaStatus{
		IOState:       get(c.ioRunning).String,
		IORunning:     get(c.ioRunning).String == "Yes",
		SQLRunning:    get(c.sqlRunning).String == "Yes",
		LastIOErrno:   atoi(c.lastIOErrno),
		LastIOError:   get(c.lastIOError).String,
		LastSQLErrno:  atoi(c.lastSQLErrno),
		LastSQLError:  get(c.lastSQLError).String,
		PrimaryHost:   get(c.host).String,
		PrimaryPort:   atoi(c.port),
		UsingGTID:     get(c.usingGTID).String,
		RetrievedGTID: normalizeGTIDText(get(c.retrieved).String),
		SQLState:      get(c.sqlState).String,
	}
	if id, err := strconv.ParseUint(get(c.primaryServerID).String, 10, 32); err == nil {
		st.PrimaryServerID = uint32(id)
	}
	if lag := get(c.lag); lag.Valid {
		if n, err := strconv.Atoi(lag.String); err == nil {
			st.LagSeconds = &n
		}
	}
	if c.executed != nil {
		st.ExecutedGTID = normalizeGTIDText(get(c.executed).String)
	} else {
		v, err := queryString(ctx, q, db.flavor.gtidAppliedQuery())
		if err != nil {
			return nil, err
		}
		st.ExecutedGTID = normalizeGTIDText(v)
	}
	return st, nil
}

// WaitRelayApplied prepares a promotion: it stops the IO thread (nothing more arrives from the
// old primary) and waits until the SQL thread has applied everything received. It fails when
// the SQL thread stops with an error, and when ctx ends. Not a replica: nothing to wait for.
func (db *DB) WaitRelayApplied(ctx context.Context) error {
	fail := func(err error) error { return fmt.Errorf("mysql: wait for relay log to be applied: %w", err) }
	st, err := db.replicaStatus(ctx, db.pool)
	if err != nil {
		return fail(err)
	}
	if st == nil {
		return nil
	}
	if err := db.exec(ctx, db.flavor.stopIOThreadSQL()); err != nil {
		return fail(err)
	}
	if st, err = db.replicaStatus(ctx, db.pool); err != nil || st == nil {
		return fail(errors.Join(err, errors.New("replication configuration vanished")))
	}
	target := st.RetrievedGTID
	if target == "" {
		return nil
	}
	if !st.SQLRunning && st.LastSQLError == "" {
		if err := db.exec(ctx, db.flavor.startSQLThreadSQL()); err != nil {
			return fail(err)
		}
	}
	drained := 0 // rounds in a row the SQL thread sat at the end of the relay log
	for {
		var r sql.NullInt64
		// Wait at most a second per round so SQL thread errors and ctx are noticed.
		if err := db.pool.QueryRowContext(ctx, db.flavor.waitGTIDQuery(), target, 1).Scan(&r); err != nil {
			return fail(err)
		}
		if r.Valid && r.Int64 == 0 {
			return nil
		}
		st, err := db.replicaStatus(ctx, db.pool)
		if err != nil {
			return fail(err)
		}
		switch {
		case st == nil:
			return fail(errors.New("replication configuration vanished"))
		case st.LastSQLError != "":
			return fail(fmt.Errorf("SQL thread stopped: error %d: %s", st.LastSQLErrno, st.LastSQLError))
		case !st.SQLRunning:
			return fail(errors.New("SQL thread stopped"))
		case strings.EqualFold(st.SQLState, db.flavor.relayDrainedState()):
			// The received set can end in a transaction the IO thread got only in part when it
			// stopped; that one never applies. Two rounds at the end of the relay log (each
			// at least a second) mean the SQL thread has applied all there is.
			if drained++; drained >= 2 {
				db.log.Warn("relay log applied; the last received transaction was incomplete and is not applied",
					"retrieved", st.RetrievedGTID, "executed", st.ExecutedGTID)
				return nil
			}
		default:
			drained = 0
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
	}
}

// SetGTIDPosition makes a restored server continue after pos, the backup's own GTID position:
// MariaDB sets gtid_slave_pos; MySQL resets the binary logs and GTID history and sets
// gtid_purged (destructive: for a freshly restored datadir only). Replication must be stopped.
func (db *DB) SetGTIDPosition(ctx context.Context, pos string) error {
	set, err := ParseGTIDSet(db.flavor, pos)
	if err != nil {
		return fmt.Errorf("mysql: set GTID position: %w", err)
	}
	version, err := db.Version(ctx)
	if err != nil {
		return fmt.Errorf("mysql: set GTID position: %w", err)
	}
	if m, ok := set.(MariaDBGTIDSet); ok {
		set = m.Position() // a binlog state would be refused: one GTID per domain
	}
	err = db.withConn(ctx, adminOpts{superWritable: true}, func(c *sql.Conn, _ bool) error {
		for _, s := range db.flavor.setGTIDPositionSQL(version) {
			var args []any
			if strings.Contains(s, "?") {
				args = append(args, set.String())
			}
			if _, err := c.ExecContext(ctx, s, args...); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mysql: set GTID position %s: %w", set, err)
	}
	return nil
}

// EnableSemiSync configures semi-synchronous replication for the node's role: a primary waits
// up to timeout for a replica's acknowledgement of each commit (AFTER_SYNC) before falling back
// to asynchronous replication (a timeout of hours means no fallback: an isolated primary
// cannot acknowledge writes); a replica acknowledges from its IO thread's next start, so this
// method restarts a running (or connecting) IO thread. MySQL's plugins are installed when missing.
func (db *DB) EnableSemiSync(ctx context.Context, primary bool, timeout time.Duration) error {
	if primary && timeout <= 0 {
		return errors.New("mysql: enable semi-sync: timeout must be positive")
	}
	err := db.withConn(ctx, adminOpts{superWritable: true}, func(c *sql.Conn, _ bool) error {
		for _, pl := range db.flavor.semiSyncPluginsSQL() {
			var n int
			if err := c.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = ?", pl[0]).Scan(&n); err != nil {
				return fmt.Errorf("look up plugin %s: %w", pl[0], err)
			}
			if n == 0 {
				if _, err := c.ExecContext(ctx, pl[1]); err != nil {
					return fmt.Errorf("%s: %w", pl[1], err)
				}
			}
		}
		for _, s := range db.flavor.semiSyncSQL(primary, timeout) {
			if _, err := c.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		if primary {
			return nil
		}
		// The IO thread reads the setting when it starts, so restart it even while it is
		// still connecting.
		st, err := db.replicaStatus(ctx, c)
		if err != nil || st == nil || st.IOState == "No" || st.IOState == "" {
			return err
		}
		for _, s := range []string{db.flavor.stopIOThreadSQL(), db.flavor.startIOThreadSQL()} {
			if _, err := c.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mysql: enable semi-sync (primary=%t): %w", primary, err)
	}
	return nil
}

// SemiSyncPrimary reports whether this server, as a primary, waits for a replica's
// acknowledgement of each commit (false when the plugin is not loaded).
func (db *DB) SemiSyncPrimary(ctx context.Context) (bool, error) {
	var on bool
	err := db.pool.QueryRowContext(ctx, db.flavor.semiSyncPrimaryQuery()).Scan(&on)
	if isErrno(err, 1193) { // unknown system variable: plugin not loaded
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mysql: semi-sync state: %w", err)
	}
	return on, nil
}

// DisableSemiSync turns semi-synchronous replication off in both roles.
// On MySQL without the plugins there is nothing to turn off.
func (db *DB) DisableSemiSync(ctx context.Context) error {
	for _, s := range db.flavor.semiSyncOffSQL() {
		_, err := db.pool.ExecContext(ctx, s)
		if isErrno(err, 1193) { // unknown system variable: plugin not loaded
			continue
		}
		if err != nil {
			return fmt.Errorf("mysql: disable semi-sync: %s: %w", s, err)
		}
	}
	return nil
}
