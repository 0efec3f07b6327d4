package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SetReplicaAck turns this server's replica side of semi-synchronous replication on (its IO
// thread acknowledges each transaction it writes to the relay log) or off, and its primary
// side off. A running IO thread is restarted, so the change holds from now on in both
// directions: a replica told to stop acknowledging must not send one more acknowledgement.
func (db *DB) SetReplicaAck(ctx context.Context, on bool) error {
	src, rep := "rpl_semi_sync_master", "rpl_semi_sync_slave"
	if db.flavor == MySQL {
		src, rep = "rpl_semi_sync_source", "rpl_semi_sync_replica"
	}
	val := "OFF"
	if on {
		val = "ON"
	}
	err := db.withConn(ctx, adminOpts{superWritable: true}, func(c *sql.Conn, _ bool) error {
		st, err := db.replicaStatus(ctx, c)
		if err != nil {
			return err
		}
		running := st != nil && st.IOState != "No" && st.IOState != ""
		stmts := []string{"SET GLOBAL " + src + "_enabled = OFF", "SET GLOBAL " + rep + "_enabled = " + val}
		if running {
			stmts = append([]string{db.flavor.stopIOThreadSQL()}, append(stmts, db.flavor.startIOThreadSQL())...)
		}
		for _, s := range stmts {
			if _, err := c.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mysql: replica semi-sync %s: %w", val, err)
	}
	return nil
}

// ReplicaAck reports whether the replica side of semi-sync is on (false when MySQL's plugin is
// not loaded).
func (db *DB) ReplicaAck(ctx context.Context) (bool, error) {
	q := "SELECT @@GLOBAL.rpl_semi_sync_slave_enabled"
	if db.flavor == MySQL {
		q = "SELECT @@GLOBAL.rpl_semi_sync_replica_enabled"
	}
	var on bool
	err := db.pool.QueryRowContext(ctx, q).Scan(&on)
	if isErrno(err, 1193) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mysql: replica semi-sync state: %w", err)
	}
	return on, nil
}

// SemiSyncWaiting returns how many commits on this primary wait for a replica's
// acknowledgement right now (0 when semi-sync is not loaded).
func (db *DB) SemiSyncWaiting(ctx context.Context) (int, error) {
	name := "Rpl_semi_sync_master_wait_sessions"
	if db.flavor == MySQL {
		name = "Rpl_semi_sync_source_wait_sessions"
	}
	var k string
	var n int
	err := db.pool.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&k, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mysql: semi-sync waiting sessions: %w", err)
	}
	return n, nil
}

// ConnectedReplicas returns the replicas streaming from this server now, as "host:port" of
// their report_host and report_port (SHOW SLAVE HOSTS: one per binlog dump connection).
func (db *DB) ConnectedReplicas(ctx context.Context) ([]string, error) {
	q := "SHOW SLAVE HOSTS"
	if db.flavor == MySQL {
		q = "SHOW REPLICAS"
	}
	rows, err := db.pool.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("mysql: connected replicas: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("mysql: connected replicas: %w", err)
	}
	host, port := -1, -1
	for i, c := range cols {
		switch c {
		case "Host":
			host = i
		case "Port":
			port = i
		}
	}
	if host < 0 || port < 0 {
		return nil, fmt.Errorf("mysql: connected replicas: no Host/Port columns in %v", cols)
	}
	var out []string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("mysql: connected replicas: %w", err)
		}
		out = append(out, vals[host].String+":"+vals[port].String)
	}
	return out, rows.Err()
}
