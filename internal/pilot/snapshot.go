package pilot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/cluster"
	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/local"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/manta"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/s3"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// ---------------------------------------------------------------------------------------------
// Store

// NewSnapshotStore builds the object store named by snapshot.backend from the storage
// section. It returns nil, "none", nil for the backend "none".
func NewSnapshotStore(cfg *config.Config) (storage.Store, string, error) {
	backend := cfg.Snapshot.Backend
	switch backend {
	case "", "none":
		return nil, "none", nil
	case "local":
		st, err := local.New(cfg.Storage.Local.Dir)
		if err != nil {
			return nil, backend, fmt.Errorf("config: storage.local: %w", err)
		}
		return st, backend, nil
	case "s3":
		c := cfg.Storage.S3
		st, err := s3.New(s3.Options{Endpoint: c.Endpoint, Bucket: c.Bucket, Region: c.Region, AccessKey: c.AccessKey,
			SecretKey: c.SecretKey, Prefix: c.Prefix, UseTLS: !c.Insecure, PathStyle: true, PartSize: int64(c.PartSize) << 20})
		if err != nil {
			return nil, backend, fmt.Errorf("config: storage.s3: %w", err)
		}
		return st, backend, nil
	case "manta":
		c := cfg.Storage.Manta
		o := manta.Options{URL: c.URL, User: c.User, Subuser: c.Subuser, Role: c.Role, KeyID: c.KeyID,
			KeyPath: c.KeyPath, Dir: c.Dir, Durability: c.Durability}
		if c.Key != "" {
			o.KeyPEM = []byte(c.Key)
		}
		st, err := manta.New(o)
		if err != nil {
			return nil, backend, fmt.Errorf("config: storage.manta: %w", err)
		}
		return st, backend, nil
	}
	return nil, backend, fmt.Errorf("config: snapshot.backend: unknown backend %q (want local, s3, manta or none)", backend)
}

// ---------------------------------------------------------------------------------------------
// Snapshotter

// ErrBackupRunning is returned by BackupNow while this node runs a backup already.
var ErrBackupRunning = errors.New("a backup is already running on this node")

// Snapshotter is a node's snapshot service: its store, the Consul catalog and the settings.
// It takes backups (BackupNow, the Scheduler, the control socket's POST /backup) and seeds an
// empty datadir from the latest snapshot (BootstrapReplica).
type Snapshotter struct {
	cfg     *config.Config
	flavor  mysql.Flavor
	store   storage.Store
	backend string
	catalog snapshot.Catalog
	runner  supervisor.Runner
	log     *slog.Logger
	busy    sync.Mutex // held while this node takes a backup
}

// newSnapshotter builds the store from cfg.Storage (per cfg.Snapshot.Backend) and the Consul
// catalog under cfg.Consul.Prefix. It returns nil, nil when snapshot.backend is "none".
// runner runs the backup tools: the Supervisor in production.
func newSnapshotter(cfg *config.Config, c *consul.Client, runner supervisor.Runner, log *slog.Logger) (*Snapshotter, error) {
	return newSnapshotterWith(cfg, c, runner, log)
}

func newSnapshotterWith(cfg *config.Config, kv cluster.KV, runner supervisor.Runner, log *slog.Logger) (*Snapshotter, error) {
	flavor, err := mysql.ParseFlavor(cfg.MySQL.Flavor)
	if err != nil {
		return nil, fmt.Errorf("config: mysql.flavor: %w", err)
	}
	store, backend, err := NewSnapshotStore(cfg)
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, nil
	}
	log = log.With("component", "snapshot")
	return &Snapshotter{cfg: cfg, flavor: flavor, store: store, backend: backend,
		catalog: cluster.NewCatalog(kv, cfg.Consul.Prefix, cfg.Node, log), runner: runner, log: log}, nil
}

// Store is the snapshot store.
func (s *Snapshotter) Store() storage.Store { return s.store }

// Catalog is the Consul catalog.
func (s *Snapshotter) Catalog() snapshot.Catalog { return s.catalog }

// BackupNow takes a snapshot of the local server now: it takes the cluster-wide backup lock,
// runs the backup, publishes the record (only now that the object is complete and verified)
// and prunes old snapshots and binlogs. id names the snapshot ("" for a new one). It fails
// with ErrBackupRunning when this node is busy and with snapshot.ErrLocked when another
// node is.
func (s *Snapshotter) BackupNow(ctx context.Context, db *mysql.DB, id string) (snapshot.Record, error) {
	if !s.busy.TryLock() {
		return snapshot.Record{}, ErrBackupRunning
	}
	defer s.busy.Unlock()
	unlock, err := s.catalog.Lock(ctx)
	if err != nil {
		return snapshot.Record{}, err
	}
	defer unlock()
	m := s.cfg.MySQL
	rec, err := snapshot.Backup(ctx, snapshot.BackupOptions{
		Runner: s.runner, Flavor: s.flavor, Socket: m.Socket, User: "root", Password: m.RootPassword, DB: db,
		Store: s.store, Backend: s.backend, Compress: s.cfg.Snapshot.Compress, Node: s.cfg.Node, ID: id, Log: s.log,
	})
	if err != nil {
		return snapshot.Record{}, err
	}
	if err := s.catalog.Publish(ctx, rec); err != nil {
		// The object is complete and has its manifest; an unpublished one is pruned later as
		// an orphan. Say so rather than pretend.
		return snapshot.Record{}, fmt.Errorf("snapshot %s is stored but not recorded in Consul: %w", rec.ID, err)
	}
	s.log.Info("snapshot published", "snapshot", rec.ID, "gtid", rec.GTID)
	if _, err := snapshot.Prune(ctx, s.store, s.catalog, s.cfg.Snapshot.Keep, snapshot.PruneOptions{Log: s.log}); err != nil {
		s.log.Warn("pruning old snapshots failed; retried after the next backup", "err", err)
	}
	return rec, nil
}

// ArchiveNow archives the local server's closed binlogs and records the progress in Consul.
func (s *Snapshotter) ArchiveNow(ctx context.Context, db *mysql.DB) (snapshot.ArchiveResult, error) {
	last, err := s.catalog.BinlogProgress(ctx)
	if err != nil {
		s.log.Warn("cannot read the binlog archive's progress; archiving without the gap check", "err", err)
	}
	res, err := snapshot.ArchiveBinlogs(ctx, db, s.store, snapshot.ArchiveOptions{Compress: s.cfg.Snapshot.Compress,
		Node: s.cfg.Node, Last: last, Log: s.log})
	if err != nil {
		return res, err
	}
	if res.Progress != nil && (last == nil || last.Object != res.Progress.Object) {
		if err := s.catalog.SetBinlogProgress(ctx, *res.Progress); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Bootstrap is a datadir restored by BootstrapReplica, waiting for its server to start.
type Bootstrap struct {
	Record snapshot.Record
	Result snapshot.RestoreResult
}

// BootstrapReplica seeds an empty datadir from the latest snapshot, before mysqld starts. It
// returns nil, nil when there is nothing to do: the datadir is initialized already, or the
// cluster has no snapshot (the node then initializes an empty datadir as usual). A datadir
// restored here holds the cluster's root password, so the caller must not treat it as fresh.
//
// After mysqld runs on the datadir, call Finish before replicating.
func (s *Snapshotter) BootstrapReplica(ctx context.Context) (*Bootstrap, error) {
	m := s.cfg.MySQL
	initialized, err := mysql.Initialized(m.Datadir)
	if err != nil || initialized {
		return nil, err
	}
	rec, err := s.catalog.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("bootstrap from a snapshot: %w", err)
	}
	if rec == nil {
		return nil, nil
	}
	s.log.Info("empty datadir: restoring the latest snapshot", "snapshot", rec.ID, "gtid", rec.GTID, "datadir", m.Datadir)
	res, err := s.restore(ctx, *rec)
	if err != nil {
		return nil, fmt.Errorf("bootstrap from snapshot %s: %w", rec.ID, err)
	}
	return &Bootstrap{Record: *rec, Result: res}, nil
}

// Reseed replaces the datadir with the latest snapshot, for a node that cannot replicate
// from the primary (errant transactions, or the primary purged the binlogs it needs). mysqld
// must be stopped. The old datadir is moved aside to "<datadir>.old-<time>", never deleted.
// Start mysqld on the datadir afterwards, then call Finish.
func (s *Snapshotter) Reseed(ctx context.Context) (*Bootstrap, error) {
	m := s.cfg.MySQL
	rec, err := s.catalog.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("re-seed from a snapshot: %w", err)
	}
	if rec == nil {
		return nil, fmt.Errorf("re-seed from a snapshot: %w in the catalog: take one on the primary (mysqlpilot backup)", snapshot.ErrNoSnapshot)
	}
	s.log.Warn("re-seeding this node from the latest snapshot; its datadir is kept aside", "snapshot", rec.ID, "gtid", rec.GTID, "datadir", m.Datadir)
	res, err := s.restore(ctx, *rec)
	if err != nil {
		return nil, fmt.Errorf("re-seed from snapshot %s: %w", rec.ID, err)
	}
	s.log.Warn("node re-seeded", "snapshot", rec.ID, "old_datadir", res.MovedAside)
	return &Bootstrap{Record: *rec, Result: res}, nil
}

// restore makes the datadir a copy of rec's server, recording the restore in it (see
// snapshot.RestoreState) so that Finish runs even after a crash.
func (s *Snapshotter) restore(ctx context.Context, rec snapshot.Record) (snapshot.RestoreResult, error) {
	m := s.cfg.MySQL
	return snapshot.Restore(ctx, snapshot.RestoreOptions{Runner: s.runner, Flavor: s.flavor, Store: s.store, Record: rec,
		Datadir: m.Datadir, TempDir: s.cfg.Snapshot.TempDir, OSUser: m.OSUser(), Log: s.log, State: true})
}

// Finish sets the restored server's GTID position from the backup's own metadata
// (MariaDB: gtid_binlog_state and gtid_slave_pos; MySQL: gtid_purged), with replication
// stopped, and records in the datadir's restore state that it did. Replication then starts
// from there (the HA loop's Follow). Should the primary have purged binlogs after that
// position, its replica IO thread fails with error 1236 and the node re-seeds from a newer
// snapshot (asking the primary for one if needed).
func (b *Bootstrap) Finish(ctx context.Context, db *mysql.DB, datadir string) error {
	// Setting the position resets the binary log: only for a server that has done nothing
	// since the restore. One that moved past it (the restore state's "finished" lost to a
	// power cut, say) keeps its position.
	g, err := db.GTIDState(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap from snapshot %s: %w", b.Record.ID, err)
	}
	if advanced, err := pastSnapshot(db.Flavor(), g.Executed, b.Result.GTID); err != nil {
		return fmt.Errorf("bootstrap from snapshot %s: %w", b.Record.ID, err)
	} else if !advanced {
		if err := db.SetGTIDPosition(ctx, b.Result.GTID); err != nil {
			return fmt.Errorf("bootstrap from snapshot %s: %w", b.Record.ID, err)
		}
	}
	st := snapshot.RestoreState{Snapshot: b.Record.ID, GTID: b.Result.GTID, Restored: time.Now().UTC()}
	if prev, err := snapshot.ReadRestoreState(datadir); err == nil && prev != nil {
		st = *prev
	}
	st.Finished = true
	if err := snapshot.WriteRestoreState(datadir, st); err != nil {
		return fmt.Errorf("bootstrap from snapshot %s: the GTID position is set, but: %w", b.Record.ID, err)
	}
	return nil
}

// pastSnapshot says whether a server's executed GTIDs hold anything beyond the snapshot's
// position: then it ran (replicated or wrote) since the restore and must not be reset. A
// freshly restored server has none, or (MySQL) exactly the snapshot's.
func pastSnapshot(f mysql.Flavor, executed, snapshotGTID string) (bool, error) {
	if executed == "" {
		return false, nil
	}
	e, err := mysql.ParseGTIDSet(f, executed)
	if err != nil {
		return false, err
	}
	s, err := mysql.ParseGTIDSet(f, snapshotGTID)
	if err != nil {
		return false, err
	}
	return !s.Contains(e), nil
}

// unfinishedBootstrap returns the Bootstrap of a restore whose GTID position was never set
// (the node stopped between the restore and Finish), or nil.
func unfinishedBootstrap(datadir string) (*Bootstrap, error) {
	st, err := snapshot.ReadRestoreState(datadir)
	if err != nil || st == nil || st.Finished {
		return nil, err
	}
	return &Bootstrap{Record: snapshot.Record{ID: st.Snapshot, GTID: st.GTID}, Result: snapshot.RestoreResult{GTID: st.GTID}}, nil
}

// ---------------------------------------------------------------------------------------------
// Scheduler

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
// snapshot: a hot backup blocks commits for about a second at its end (mariabackup's BACKUP
// STAGE BLOCK_COMMIT), which should not add to a failover's write gap.
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
func (sc *Scheduler) cycle(ctx context.Context, req *snapshot.SnapshotRequest, reqErr error) {
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
		if _, err := sc.s.BackupNow(ctx, sc.db, ""); errors.Is(err, snapshot.ErrLocked) || errors.Is(err, ErrBackupRunning) {
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

// ---------------------------------------------------------------------------------------------
// Control socket

// BackupResponse is POST /backup's answer: the published record when the backup finished
// (or, with ?wait=false, only the id of the backup started).
type BackupResponse struct {
	ID     string           `json:"id"`
	Status string           `json:"status"` // "complete" or "started"
	Record *snapshot.Record `json:"record,omitempty"`
}

// BackupHandler serves POST /backup on the control socket: it takes a snapshot of the local
// server now (BackupNow). The backup runs under ctx (the node's lifetime), not the request's:
// a client that goes away does not abort it. By default the answer waits for the backup
// (200 with the record); ?wait=false answers at once (202 with the id). 409 when a backup runs
// already here or elsewhere; 500 with the error otherwise.
func (s *Snapshotter) BackupHandler(ctx context.Context, db *mysql.DB) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
			return
		}
		id := snapshot.NewID(time.Now())
		type result struct {
			rec snapshot.Record
			err error
		}
		done := make(chan result, 1)
		go func() {
			rec, err := s.BackupNow(ctx, db, id)
			if err != nil {
				s.log.Error("requested snapshot failed", "snapshot", id, "err", err)
			}
			done <- result{rec, err}
		}()
		if r.URL.Query().Get("wait") == "false" {
			// Wait briefly so an immediate refusal (busy, locked) is still reported.
			select {
			case res := <-done:
				writeBackupResult(w, id, res.rec, res.err)
			case <-time.After(500 * time.Millisecond):
				writeJSON(w, http.StatusAccepted, BackupResponse{ID: id, Status: "started"})
			}
			return
		}
		select {
		case res := <-done:
			writeBackupResult(w, id, res.rec, res.err)
		case <-r.Context().Done():
		}
	}
}

func writeBackupResult(w http.ResponseWriter, id string, rec snapshot.Record, err error) {
	switch {
	case errors.Is(err, ErrBackupRunning), errors.Is(err, snapshot.ErrLocked):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, BackupResponse{ID: id, Status: "complete", Record: &rec})
	}
}

// ---------------------------------------------------------------------------------------------
// Point-in-time restore (mysqlpilot restore)

// PITRRequest is what the operator asks of `mysqlpilot restore`.
type PITRRequest struct {
	Until           time.Time // restore to this time, or
	UntilGTID       string    // to these GTIDs
	Datadir         string    // the datadir to create (an existing one is moved aside)
	TempDir         string    // scratch space; default snapshot.tempDir
	AllowIncomplete bool      // replay what the archive has when it ends before the target
	FromConsul      bool      // find snapshots in Consul instead of the store's manifests
}

// PointInTimeRestore builds a new primary's datadir from the configured store: the newest
// snapshot before the target rolled forward with the archived binlogs (snapshot.RestoreToTime).
// It runs standalone, without the node's supervisor; the tools run through runner.
func PointInTimeRestore(ctx context.Context, cfg *config.Config, req PITRRequest, runner supervisor.Runner, log *slog.Logger) (snapshot.PITRResult, error) {
	flavor, err := mysql.ParseFlavor(cfg.MySQL.Flavor)
	if err != nil {
		return snapshot.PITRResult{}, fmt.Errorf("config: mysql.flavor: %w", err)
	}
	store, _, err := NewSnapshotStore(cfg)
	if err != nil {
		return snapshot.PITRResult{}, err
	}
	if store == nil {
		return snapshot.PITRResult{}, errors.New("config: snapshot.backend is none: there is no store to restore from")
	}
	var cat snapshot.Catalog = snapshot.StoreCatalog{Store: store}
	if req.FromConsul {
		c, err := consul.New(consul.Options{Address: cfg.Consul.Address, Token: cfg.Consul.Token, Scheme: cfg.Consul.Scheme,
			CAFile: cfg.Consul.CAFile, CertFile: cfg.Consul.CertFile, KeyFile: cfg.Consul.KeyFile,
			InsecureSkipVerify: cfg.Consul.InsecureSkipVerify, Datacenter: cfg.Consul.Datacenter}, log)
		if err != nil {
			return snapshot.PITRResult{}, fmt.Errorf("consul: %w", err)
		}
		cat = cluster.NewCatalog(c, cfg.Consul.Prefix, cfg.Node, log)
	}
	tmp := req.TempDir
	if tmp == "" {
		tmp = cfg.Snapshot.TempDir
	}
	if tmp == "" {
		tmp = strings.TrimRight(req.Datadir, "/") + "-restore"
	}
	var server, user string
	if len(cfg.MySQL.Exec) > 0 {
		server, user = cfg.MySQL.Exec[0], cfg.MySQL.OSUser()
	}
	if user == "" && os.Geteuid() == 0 {
		user = "root"
	}
	return snapshot.RestoreToTime(ctx, snapshot.PITROptions{
		Runner: runner, Flavor: flavor, Store: store, Catalog: cat,
		Until: req.Until, UntilGTID: req.UntilGTID, Datadir: req.Datadir, TempDir: tmp, OSUser: user,
		RootPassword: cfg.MySQL.RootPassword, ServerBinary: server, AllowIncomplete: req.AllowIncomplete, Log: log,
	})
}
