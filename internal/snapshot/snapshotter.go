package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

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
	catalog Catalog
	key     *seal.Key // seals snapshots and binlogs (snapshot.encrypt); nil: not sealed
	runner  supervisor.Runner
	log     *slog.Logger
	busy    sync.Mutex // held while this node takes a backup

	// drillCheck checks a restored datadir in a drill (tests replace it); nil: checkRestored.
	drillCheck func(ctx context.Context, rec Record, datadir string, log *slog.Logger) (checked, total int, err error)
	vmu        sync.Mutex // guards vstats
	vstats     VerifyStats
}

// NewSnapshotter builds the store from cfg.Storage (per cfg.Snapshot.Backend) over catalog
// (the Consul catalog in production: internal/cluster). It returns nil, nil when
// snapshot.backend is "none". runner runs the backup tools: the Supervisor in production.
func NewSnapshotter(cfg *config.Config, flavor mysql.Flavor, catalog Catalog, runner supervisor.Runner, log *slog.Logger) (*Snapshotter, error) {
	store, backend, err := NewStore(cfg)
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, nil
	}
	key, err := cfg.Snapshot.Encrypt.LoadKey()
	if err != nil {
		return nil, err
	}
	log = log.With("component", "snapshot")
	if key == nil {
		log.Warn("snapshots and archived binlogs are stored unsealed: whoever can read the store reads the data (set snapshot.encrypt.keyFile or SNAPSHOT_KEY; make up does)", "store", store.String())
	}
	return &Snapshotter{cfg: cfg, flavor: flavor, store: store, backend: backend,
		catalog: catalog, key: key, runner: runner, log: log}, nil
}

// Store is the snapshot store.
func (s *Snapshotter) Store() storage.Store { return s.store }

// Catalog is the snapshot catalog.
func (s *Snapshotter) Catalog() Catalog { return s.catalog }

// BackupNow takes a snapshot of the local server now: it takes the cluster-wide backup lock,
// runs the backup, publishes the record (only now that the object is complete and verified)
// and prunes old snapshots and binlogs. id names the snapshot ("" for a new one). It fails
// with ErrBackupRunning when this node is busy and with ErrLocked when another
// node is.
func (s *Snapshotter) BackupNow(ctx context.Context, db *mysql.DB, id string) (Record, error) {
	if !s.busy.TryLock() {
		return Record{}, ErrBackupRunning
	}
	defer s.busy.Unlock()
	unlock, err := s.catalog.Lock(ctx)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	m := s.cfg.MySQL
	rec, err := Backup(ctx, BackupOptions{
		Runner: s.runner, Flavor: s.flavor, Socket: m.Socket, User: "root", Password: m.RootPassword, DB: db,
		Store: s.store, Backend: s.backend, Compress: s.cfg.Snapshot.Compress, Key: s.key, Node: s.cfg.Node, ID: id, Log: s.log,
	})
	if err != nil {
		return Record{}, err
	}
	if err := s.catalog.Publish(ctx, rec); err != nil {
		// The object is complete and has its manifest; an unpublished one is pruned later as
		// an orphan. Say so rather than pretend.
		return Record{}, fmt.Errorf("snapshot %s is stored but not recorded in Consul: %w", rec.ID, err)
	}
	s.log.Info("snapshot published", "snapshot", rec.ID, "gtid", rec.GTID)
	if _, err := Prune(ctx, s.store, s.catalog, s.cfg.Snapshot.Keep, PruneOptions{Log: s.log}); err != nil {
		s.log.Warn("pruning old snapshots failed; retried after the next backup", "err", err)
	}
	return rec, nil
}

// ArchiveNow archives the local server's closed binlogs and records the progress in Consul.
func (s *Snapshotter) ArchiveNow(ctx context.Context, db *mysql.DB) (ArchiveResult, error) {
	last, err := s.catalog.BinlogProgress(ctx)
	if err != nil {
		s.log.Warn("cannot read the binlog archive's progress; archiving without the gap check", "err", err)
	}
	res, err := ArchiveBinlogs(ctx, db, s.store, ArchiveOptions{Compress: s.cfg.Snapshot.Compress, Key: s.key,
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
	Record Record
	Result RestoreResult
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
	rec, err := s.RestoreCandidate(ctx)
	if errors.Is(err, ErrNoSnapshot) && !errors.Is(err, errAllFailed) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap from a snapshot: %w", err)
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
	rec, err := s.RestoreCandidate(ctx)
	if errors.Is(err, ErrNoSnapshot) && !errors.Is(err, errAllFailed) {
		return nil, fmt.Errorf("re-seed from a snapshot: %w in the catalog: take one on the primary (mysqlpilot backup)", ErrNoSnapshot)
	}
	if err != nil {
		return nil, fmt.Errorf("re-seed from a snapshot: %w", err)
	}
	s.log.Warn("re-seeding this node from the latest snapshot; its datadir is kept aside", "snapshot", rec.ID, "gtid", rec.GTID, "datadir", m.Datadir)
	res, err := s.restore(ctx, *rec)
	if err != nil {
		return nil, fmt.Errorf("re-seed from snapshot %s: %w", rec.ID, err)
	}
	s.log.Warn("node re-seeded", "snapshot", rec.ID, "old_datadir", res.MovedAside)
	return &Bootstrap{Record: *rec, Result: res}, nil
}

// errAllFailed is wrapped (with ErrNoSnapshot) by RestoreCandidate's error when every
// snapshot failed its restore drill.
var errAllFailed = errors.New("every snapshot in the catalog failed its restore drill")

// RestoreCandidate returns the snapshot a bootstrap or re-seed restores: the newest that has
// not failed a restore drill (ChooseRestore), logging the newer ones it passes over. With no
// snapshot, or none that did not fail, the error wraps ErrNoSnapshot.
func (s *Snapshotter) RestoreCandidate(ctx context.Context) (*Record, error) {
	recs, err := s.catalog.List(ctx)
	if err != nil {
		return nil, err
	}
	pick, skipped := ChooseRestore(recs)
	for _, r := range skipped {
		s.log.Warn("passing over a snapshot that failed its restore drill", "snapshot", r.ID,
			"drilled_at", r.VerifiedAt.UTC().Format(time.RFC3339), "verify_error", r.VerifyError)
	}
	if pick == nil {
		if len(recs) == 0 {
			return nil, ErrNoSnapshot
		}
		last := recs[len(recs)-1]
		return nil, fmt.Errorf("%w (latest %s: %s): waiting for a fresh one, which the drill asked the primary for: %w",
			errAllFailed, last.ID, last.VerifyError, ErrNoSnapshot)
	}
	return pick, nil
}

// restore makes the datadir a copy of rec's server, recording the restore in it (see
// RestoreState) so that Finish runs even after a crash. It runs for a bootstrap or a re-seed,
// with the node's server stopped, so the prepare may take half the container's memory.
func (s *Snapshotter) restore(ctx context.Context, rec Record) (RestoreResult, error) {
	m := s.cfg.MySQL
	return Restore(ctx, RestoreOptions{Runner: s.runner, Flavor: s.flavor, Store: s.store, Record: rec, Key: s.key,
		AllowUnsealed: s.cfg.Snapshot.Encrypt.AllowUnsealed, ServerStopped: true,
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
	st := RestoreState{Snapshot: b.Record.ID, GTID: b.Result.GTID, Restored: time.Now().UTC()}
	if b.Result.State != nil {
		st = *b.Result.State // as the restore recorded it
	}
	st.Finished = true
	if err := WriteRestoreState(datadir, st); err != nil {
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

// PendingBootstrap returns the Bootstrap of a restore whose GTID position was never set (the
// node stopped between the restore and Finish), or nil; st is the datadir's restore state as
// ReadRestoreState returned it (nil for a datadir never restored).
func PendingBootstrap(st *RestoreState) *Bootstrap {
	if st == nil || st.Finished {
		return nil
	}
	return &Bootstrap{Record: Record{ID: st.Snapshot, GTID: st.GTID}, Result: RestoreResult{GTID: st.GTID, State: st}}
}

// PITRRequest is what the operator asks of `mysqlpilot restore`.
type PITRRequest struct {
	Until           time.Time // restore to this time, or
	UntilGTID       string    // to these GTIDs
	Datadir         string    // the datadir to create (an existing one is moved aside)
	TempDir         string    // scratch space; default snapshot.tempDir
	AllowIncomplete bool      // replay what the archive has when it ends before the target
}

// PointInTimeRestore builds a new primary's datadir from the configured store: the newest
// snapshot before the target rolled forward with the archived binlogs (RestoreToTime).
// It runs standalone, without the node's supervisor; the tools run through runner. cat finds
// the snapshots (the Consul catalog); nil reads the store's manifests instead.
func PointInTimeRestore(ctx context.Context, cfg *config.Config, flavor mysql.Flavor, req PITRRequest, cat Catalog, runner supervisor.Runner, log *slog.Logger) (PITRResult, error) {
	store, _, err := NewStore(cfg)
	if err != nil {
		return PITRResult{}, err
	}
	if store == nil {
		return PITRResult{}, errors.New("config: snapshot.backend is none: there is no store to restore from")
	}
	if cat == nil {
		cat = StoreCatalog{Store: store}
	}
	key, err := cfg.Snapshot.Encrypt.LoadKey()
	if err != nil {
		return PITRResult{}, err
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
	return RestoreToTime(ctx, PITROptions{
		Secrets: cfg.Secrets(),
		Runner:  runner, Flavor: flavor, Store: store, Catalog: cat, Key: key, AllowUnsealed: cfg.Snapshot.Encrypt.AllowUnsealed,
		Until: req.Until, UntilGTID: req.UntilGTID, Datadir: req.Datadir, TempDir: tmp, OSUser: user,
		RootPassword: cfg.MySQL.RootPassword, ServerBinary: server, AllowIncomplete: req.AllowIncomplete, Log: log,
	})
}
