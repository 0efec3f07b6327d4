package snapshot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
)

// Scheduler takes snapshots and archives binlogs while the node is the primary.
type Scheduler struct {
	s    *Snapshotter
	db   *mysql.DB
	tick time.Duration
	now  func() time.Time

	// Owned by Run's goroutine.
	primarySince time.Time // when this node last became primary
	serverID     uint32    // this server's server_id (0 until read)
	active       string    // binlog the server wrote at the last look (after our own flushes)
	lastArchive  time.Time // last archive run
	retryAt      time.Time // no scheduled backup before this, after a failure
	retryDelay   time.Duration
}

// NewScheduler returns the scheduler for the local server reached through db.
func (s *Snapshotter) NewScheduler(db *mysql.DB) *Scheduler {
	c := s.cfg.Snapshot
	tick := time.Minute
	for _, d := range []time.Duration{c.Interval.D(), c.BinlogFlushInterval.D()} {
		if d > 0 && d < tick {
			tick = d
		}
	}
	return &Scheduler{s: s, db: db, tick: max(tick, time.Second), now: time.Now}
}

// primaryChangeDelay is how long a new primary waits before its snapshot.onPrimaryChange
// snapshot: a hot backup blocks commits briefly at its end (mariabackup's BACKUP STAGE
// BLOCK_COMMIT: ~20 ms with mysql.Flavor.BackupArgs' log-copy interval, a second with the
// tool's default), which should not add to a failover's write gap.
const primaryChangeDelay = time.Minute

// lockedRetry is how soon a snapshot refused for the backup lock is tried again.
const lockedRetry = 10 * time.Second

// schedulerPoll is how often Scheduler.Run looks at the node's role and for a snapshot
// request between its ticks.
const schedulerPoll = 5 * time.Second

// Run works until ctx ends. While isPrimary() holds, at once when the node becomes primary,
// then at every tick (a minute, or the shortest configured interval), and whenever a node has
// asked for a snapshot (seen within schedulerPoll): takes a snapshot when there is none, when
// the latest one in the catalog is older than snapshot.interval, when the server rotated its
// binlog by itself (snapshot.onBinlogRotate; the archive's own flushes do not count), or when
// a node asked for one newer than the latest (a re-seed); archives binlogs every
// snapshot.binlogFlushInterval. Failures are logged, and a failed snapshot is retried with a
// growing delay (1m to 30m).
func (sc *Scheduler) Run(ctx context.Context, isPrimary func() bool) {
	t := time.NewTicker(min(sc.tick, schedulerPoll))
	defer t.Stop()
	var last time.Time // the last cycle
	primary := false
	for {
		if isPrimary() {
			if !primary {
				sc.primarySince = sc.now()
			}
			req, reqErr := sc.s.catalog.SnapshotRequested(ctx)
			if !primary || sc.now().Sub(last) >= sc.tick || req != nil {
				sc.cycle(ctx, req, reqErr)
				last = sc.now()
			}
			primary = true
		} else {
			sc.active, primary = "", false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cycle is one tick's work on the primary; req is the pending snapshot request (nil for none)
// as Run read it, or reqErr.
func (sc *Scheduler) cycle(ctx context.Context, req *SnapshotRequest, reqErr error) {
	c := sc.s.cfg.Snapshot
	log := sc.s.log
	now := sc.now()
	reason := ""
	latest, err := sc.s.catalog.Latest(ctx)
	if err != nil {
		log.Warn("cannot read the latest snapshot", "err", err)
	} else if c.Interval.D() > 0 {
		switch {
		case latest == nil:
			reason = "no snapshot yet"
		case now.Sub(latest.Created) >= c.Interval.D():
			reason = fmt.Sprintf("latest snapshot %s is older than %s", latest.ID, c.Interval.D())
		}
	}
	if reason == "" && c.OnPrimaryChange && latest != nil && now.Sub(sc.primarySince) >= primaryChangeDelay {
		if sc.serverID == 0 {
			if id, err := sc.db.ServerID(ctx); err == nil {
				sc.serverID = id
			}
		}
		if sc.serverID != 0 && latest.ServerID != sc.serverID {
			reason = fmt.Sprintf("the primary changed: latest snapshot %s is of server %d, this is server %d", latest.ID, latest.ServerID, sc.serverID)
		}
	}
	// A node that must re-seed asked for a snapshot newer than the latest.
	requested := false
	if reqErr != nil {
		log.Warn("cannot read the snapshot request", "err", reqErr)
	} else if req != nil && err == nil {
		if req.FulfilledBy(latest) {
			if cerr := sc.s.catalog.ClearSnapshotRequest(ctx); cerr != nil {
				log.Warn("cannot clear the snapshot request", "err", cerr)
			}
		} else {
			requested = true
			if reason == "" {
				reason = fmt.Sprintf("requested by %s: %s", req.Node, req.Reason)
			}
		}
	}
	if c.OnBinlogRotate {
		cur, err := currentBinlog(ctx, sc.db)
		if err != nil {
			log.Warn("cannot read the current binlog", "err", err)
		} else {
			if sc.active != "" && cur != sc.active && reason == "" {
				reason = fmt.Sprintf("binlog rotated from %s to %s", sc.active, cur)
			}
			sc.active = cur
		}
	}
	if reason != "" && !now.Before(sc.retryAt) {
		log.Info("taking a scheduled snapshot", "reason", reason)
		if _, err := sc.s.BackupNow(ctx, sc.db, ""); errors.Is(err, ErrLocked) || errors.Is(err, ErrBackupRunning) {
			// Another node's backup (a deposed primary's, say) holds the lock until it ends
			// or its session lapses: look again soon, not after the failure backoff.
			sc.retryAt = now.Add(lockedRetry)
			log.Info("snapshot postponed: another backup is running", "err", err, "retry_in", lockedRetry.String())
		} else if err != nil {
			sc.retryDelay = min(max(2*sc.retryDelay, time.Minute), 30*time.Minute)
			sc.retryAt = now.Add(sc.retryDelay)
			log.Error("scheduled snapshot failed", "err", err, "retry_in", sc.retryDelay.String())
		} else {
			sc.retryDelay, sc.retryAt = 0, time.Time{}
			if requested {
				if err := sc.s.catalog.ClearSnapshotRequest(ctx); err != nil {
					log.Warn("cannot clear the snapshot request", "err", err)
				}
			}
		}
	}
	if d := c.BinlogFlushInterval.D(); d > 0 && now.Sub(sc.lastArchive) >= d {
		sc.lastArchive = now
		res, err := sc.s.ArchiveNow(ctx, sc.db)
		if err != nil {
			log.Error("binlog archive failed", "err", err)
		}
		if res.Active != "" {
			sc.active = res.Active // our own flush is no rotation
		}
	}
}

// currentBinlog is the binlog the server writes now.
func currentBinlog(ctx context.Context, db *mysql.DB) (string, error) {
	rows, err := db.SQL().QueryContext(ctx, db.Flavor().ListBinlogsSQL())
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var last string
	for rows.Next() {
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(vals); i++ {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			return "", err
		}
		last = name
	}
	return last, rows.Err()
}
