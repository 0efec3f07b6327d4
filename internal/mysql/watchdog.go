package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The watchdog lives in its own schema, written with sql_log_bin=0 on every node: it never
// replicates and never adds GTIDs.
const (
	watchdogSchema = "mysqlpilot"
	watchdogTable  = "mysqlpilot.heartbeat"
	watchdogEvent  = "mysqlpilot.fence_on_stale_heartbeat"
	watchdogRowID  = 1
)

// watchdogSQL returns the statements InstallWatchdog runs, in order. The event runs every
// second as its definer (root) and fences only when writes are open (read_only = 0) and the
// heartbeat row exists with a deadline in the past: on a node without the row, or already
// read-only, it does nothing. Deadlines are in UTC on the server's clock (UTC_TIMESTAMP(3)),
// so time zones and the supervisor's clock do not matter; the server's wall clock does: a step
// backwards delays the fence by as much (run NTP with slewing). CREATE IF NOT EXISTS then ALTER:
// an install always leaves the current definition, enabled (a copy restored from a backup
// might not be), and there is no moment without the event.
func (f Flavor) watchdogSQL() []string {
	def := " ON SCHEDULE EVERY 1 SECOND ON COMPLETION PRESERVE ENABLE" +
		" COMMENT 'mysqlpilot: fence when the supervisor heartbeat is stale'" +
		" DO BEGIN" +
		" IF @@GLOBAL.read_only = 0 AND EXISTS (SELECT 1 FROM " + watchdogTable +
		" WHERE id = " + fmt.Sprint(watchdogRowID) + " AND deadline < UTC_TIMESTAMP(3)) THEN " +
		f.watchdogFenceSQL() + ";" +
		" END IF;" +
		" END"
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + watchdogSchema,
		"CREATE TABLE IF NOT EXISTS " + watchdogTable + " (id INT NOT NULL PRIMARY KEY, deadline DATETIME(3) NOT NULL) ENGINE=InnoDB",
		"CREATE EVENT IF NOT EXISTS " + watchdogEvent + def,
		"ALTER EVENT " + watchdogEvent + def,
	}
}

// armSQL writes the heartbeat: deadline = now + ? microseconds, on the server's clock.
const armSQL = "REPLACE INTO " + watchdogTable + " (id, deadline) VALUES (1, UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND)"

// disarmSQL removes the heartbeat row: the event does nothing without it.
const disarmSQL = "DELETE FROM " + watchdogTable + " WHERE id = 1"

// InstallWatchdog creates (idempotently, without binlogging) the schema mysqlpilot, the table
// heartbeat(id, deadline) and the event fence_on_stale_heartbeat that turns the server
// read-only within about a second of the heartbeat's deadline passing, with no client
// involved: the defense against a frozen supervisor (SIGSTOP, long pause) that cannot fence
// itself. It turns the event scheduler on when it is off, and fails when it is DISABLED
// (the server was started with event_scheduler=DISABLED). Installing leaves an existing
// heartbeat row alone.
func (db *DB) InstallWatchdog(ctx context.Context) error {
	err := db.withConn(ctx, adminOpts{noBinlog: true, superWritable: true}, func(c *sql.Conn, _ bool) error {
		sched, err := queryString(ctx, c, "SELECT @@GLOBAL.event_scheduler")
		if err != nil {
			return err
		}
		switch sched {
		case "DISABLED":
			return fmt.Errorf("event_scheduler is DISABLED; start the server with event_scheduler=ON")
		case "OFF":
			if _, err := c.ExecContext(ctx, "SET GLOBAL event_scheduler = ON"); err != nil {
				return fmt.Errorf("SET GLOBAL event_scheduler = ON: %w", err)
			}
		}
		for _, s := range db.flavor.watchdogSQL() {
			if _, err := c.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", verb(s), err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mysql: install watchdog: %w", err)
	}
	return nil
}

// ArmWatchdog sets the heartbeat's deadline to now + d on the server's clock (sql_log_bin=0).
// Call it on every successful lock renewal with d = the fence deadline; if mysqlpilot stops
// renewing, the server turns itself read-only about a second after the deadline. Arm before
// opening writes (OpenWrites does).
func (db *DB) ArmWatchdog(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("mysql: arm watchdog: duration %s must be positive", d)
	}
	err := db.withConn(ctx, adminOpts{noBinlog: true, superWritable: true}, func(c *sql.Conn, _ bool) error {
		_, err := c.ExecContext(ctx, armSQL, d.Microseconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("mysql: arm watchdog for %s: %w", d, err)
	}
	return nil
}

// DisarmWatchdog removes the heartbeat row (sql_log_bin=0), for a node that stops being
// primary in an orderly way: the event then does nothing.
func (db *DB) DisarmWatchdog(ctx context.Context) error {
	err := db.withConn(ctx, adminOpts{noBinlog: true, superWritable: true}, func(c *sql.Conn, _ bool) error {
		_, err := c.ExecContext(ctx, disarmSQL)
		return err
	})
	if err != nil {
		return fmt.Errorf("mysql: disarm watchdog: %w", err)
	}
	return nil
}

// watchdogEnabledQuery finds the watchdog event, enabled (argument: its schema).
const watchdogEnabledQuery = "SELECT 1 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = 'fence_on_stale_heartbeat' AND STATUS = 'ENABLED'"

// WatchdogRunning reports, in one query (it runs every cycle on a primary), whether the
// watchdog can fence: its event exists and is enabled, and the event scheduler runs.
func (db *DB) WatchdogRunning(ctx context.Context) (bool, error) {
	var ok bool
	err := db.pool.QueryRowContext(ctx, "SELECT @@GLOBAL.event_scheduler = 'ON' AND EXISTS ("+watchdogEnabledQuery+")", watchdogSchema).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("mysql: watchdog status: %w", err)
	}
	return ok, nil
}

// WatchdogState is what WatchdogStatus found.
type WatchdogState struct {
	// Installed: the event exists and is enabled. SchedulerOn: the event scheduler runs.
	Installed, SchedulerOn bool
	// Armed: the heartbeat row exists. Remaining: time to its deadline, negative once passed.
	Armed     bool
	Remaining time.Duration
}

// WatchdogStatus reports whether the watchdog is installed, running and armed.
func (db *DB) WatchdogStatus(ctx context.Context) (WatchdogState, error) {
	var s WatchdogState
	fail := func(err error) (WatchdogState, error) {
		return WatchdogState{}, fmt.Errorf("mysql: watchdog status: %w", err)
	}
	sched, err := queryString(ctx, db.pool, "SELECT @@GLOBAL.event_scheduler")
	if err != nil {
		return fail(err)
	}
	s.SchedulerOn = sched == "ON"
	if err := db.pool.QueryRowContext(ctx, "SELECT EXISTS ("+watchdogEnabledQuery+")", watchdogSchema).Scan(&s.Installed); err != nil {
		return fail(err)
	}
	if !s.Installed {
		return s, nil
	}
	var us sql.NullInt64
	err = db.pool.QueryRowContext(ctx,
		"SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(3), deadline) FROM "+watchdogTable+" WHERE id = 1").Scan(&us)
	switch {
	case err == sql.ErrNoRows:
		return s, nil
	case err != nil:
		return fail(err)
	}
	s.Armed, s.Remaining = true, time.Duration(us.Int64)*time.Microsecond
	return s, nil
}
