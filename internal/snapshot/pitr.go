package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// PITROptions configure RestoreToTime. Fields without a default are required.
type PITROptions struct {
	// Secrets are the configured secret values, kept out of the replay tools' environment.
	Secrets []string
	Runner  supervisor.Runner
	Flavor  mysql.Flavor
	Store   storage.Store
	Prefix  string
	Catalog Catalog   // where snapshots are found (StoreCatalog reads the store's manifests)
	Key     *seal.Key // opens sealed snapshots and binlogs
	// AllowUnsealed accepts unsealed snapshots and binlogs although Key is set (a cluster
	// moving to encryption).
	AllowUnsealed bool

	// Until: replay transactions stamped before this second (binary log timestamps have one
	// second resolution: transactions in Until's own second are not replayed). Or UntilGTID:
	// replay up to and including these GTIDs. Exactly one is required.
	Until     time.Time
	UntilGTID string

	// Datadir, TempDir and OSUser are as in RestoreOptions. TempDir also holds the
	// downloaded binlogs.
	Datadir string
	TempDir string
	OSUser  string
	// RootPassword is root's password in the snapshot (the cluster's), for the private
	// server that replays the binlogs.
	RootPassword string
	// ServerID is the replay server's server_id; default the snapshot's.
	ServerID uint32
	// Tools; defaults are the flavor's, in PATH.
	ServerBinary, BinlogTool, ClientTool, StreamTool, BackupTool string
	// StartTimeout bounds the replay server's start and stop; default 5m.
	StartTimeout time.Duration
	// AllowIncomplete replays what the archive has even when it ends before Until, instead
	// of refusing.
	AllowIncomplete bool
	Log             *slog.Logger
	Progress        time.Duration
	Now             func() time.Time
}

// PITRResult says what RestoreToTime produced.
type PITRResult struct {
	Snapshot Record        // the snapshot restored
	Restore  RestoreResult // its restore
	Binlogs  []string      // archived binlog objects replayed, in order
	// Covered is the time up to which the archive holds every transaction (the last
	// replayed file's close), zero when unknown.
	Covered time.Time
	// GTID is the datadir's position after the replay: a new primary continues from it.
	GTID string
}

func (o *PITROptions) fill() error {
	if o.Runner == nil || o.Store == nil || o.Catalog == nil {
		return errors.New("Runner, Store and Catalog are required")
	}
	if err := o.Flavor.Validate(); err != nil {
		return err
	}
	if o.Until.IsZero() == (o.UntilGTID == "") {
		return errors.New("give exactly one of a time (--to-time) and a GTID (--to-gtid)")
	}
	if o.UntilGTID != "" {
		set, err := mysql.ParseGTIDSet(o.Flavor, o.UntilGTID)
		if err != nil {
			return err
		}
		o.UntilGTID = set.String()
	}
	if o.ServerBinary == "" {
		o.ServerBinary = o.Flavor.ServerBinary()
	}
	if o.BinlogTool == "" {
		o.BinlogTool = o.Flavor.BinlogTool()
	}
	if o.ClientTool == "" {
		o.ClientTool = o.Flavor.ClientTool()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// RestoreToTime makes Datadir a new primary's datadir as of a point in time: the newest
// snapshot completed before it, rolled forward with the archived binlogs of the snapshot's
// server. The plan is checked before the datadir is touched: the archive must hold the file
// the snapshot stands in and every later one without a gap, and must reach the target (a
// file closed after Until, or the GTIDs asked for); otherwise it refuses (AllowIncomplete
// overrides the last check). The binlogs are downloaded and checked first, then the snapshot
// is restored, a private server (no network) replays the binlogs through the flavor's
// binlog tool and client, the GTID state is made consistent, and the server stops.
//
// Replay follows one server's timeline: a target beyond a failover (the snapshot's server
// stopped archiving) is refused.
func RestoreToTime(ctx context.Context, o PITROptions) (PITRResult, error) {
	if err := o.fill(); err != nil {
		return PITRResult{}, fmt.Errorf("snapshot: point-in-time restore: %w", err)
	}
	target := o.UntilGTID
	if target == "" {
		target = o.Until.UTC().Format(time.RFC3339)
	}
	fail := func(err error) (PITRResult, error) {
		return PITRResult{}, fmt.Errorf("snapshot: point-in-time restore to %s into %s: %w", target, o.Datadir, err)
	}
	rec, plan, err := choosePlan(ctx, o)
	if err != nil {
		return fail(err)
	}
	if err := checkKey(rec, o.Key, o.AllowUnsealed); err != nil {
		return fail(err)
	}
	log := o.Log.With("snapshot", rec.ID)
	log.Info("point-in-time restore planned", "target", target, "snapshot_completed", rec.Completed, "snapshot_gtid", rec.GTID, "binlogs", len(plan))

	if err := os.MkdirAll(o.TempDir, 0o700); err != nil {
		return fail(err)
	}
	work, err := os.MkdirTemp(o.TempDir, "pitr-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	files, covered, archived, err := downloadBinlogs(ctx, o.Store, o.Key, o.AllowUnsealed, plan, filepath.Join(work, "binlogs"))
	if err != nil {
		return fail(err)
	}
	if o.UntilGTID != "" && o.Flavor == mysql.MariaDB {
		// MariaDB's binlogs say which GTIDs they hold: check the target before anything changes.
		if err := reaches(o.Flavor, rec.GTID, archived, o.UntilGTID); err != nil {
			if !o.AllowIncomplete {
				return fail(err)
			}
			log.Warn("restoring less than asked: " + err.Error())
		}
	}
	if !o.Until.IsZero() {
		stop := o.Until.UTC().Truncate(time.Second)
		if len(plan) == 0 || covered.Before(stop) {
			msg := fmt.Sprintf("the archived binlogs of server %d hold transactions up to %s only, before the target %s (not archived yet, or the primary changed)",
				rec.ServerID, fmtTime(covered), stop.Format(time.RFC3339))
			if !o.AllowIncomplete {
				return fail(errors.New(msg + ": restore to an earlier time, archive more binlogs first, or allow an incomplete restore"))
			}
			log.Warn("restoring less than asked: " + msg)
		}
	}

	rr, err := Restore(ctx, RestoreOptions{Runner: o.Runner, Flavor: o.Flavor, Store: o.Store, Record: rec, Key: o.Key, AllowUnsealed: o.AllowUnsealed,
		Datadir: o.Datadir, TempDir: work, OSUser: o.OSUser, StreamTool: o.StreamTool, BackupTool: o.BackupTool,
		Log: o.Log, Progress: o.Progress, Now: o.Now})
	if err != nil {
		return fail(err)
	}
	res := PITRResult{Snapshot: rec, Restore: rr, Covered: covered}
	for _, b := range plan {
		if b.Object != "" {
			res.Binlogs = append(res.Binlogs, b.Object)
		}
	}
	gtid, err := replay(ctx, o, rec, rr.GTID, files, log)
	if err != nil {
		return fail(fmt.Errorf("%w (the restored snapshot is in the datadir; the binlogs are not replayed: do not use it as is)", err))
	}
	res.GTID = gtid
	if o.UntilGTID != "" {
		want, _ := mysql.ParseGTIDSet(o.Flavor, o.UntilGTID)
		got, err := mysql.ParseGTIDSet(o.Flavor, gtid)
		if err != nil || !got.Contains(want) {
			msg := fmt.Sprintf("the replay reached GTID %q, which does not contain the target %q: the archive ends before it", gtid, o.UntilGTID)
			if !o.AllowIncomplete {
				return fail(errors.New(msg))
			}
			log.Warn("restored less than asked: " + msg)
		}
	}
	if err := chownTree(o.Datadir, o.OSUser); err != nil {
		return fail(err)
	}
	log.Info("point-in-time restore complete", "datadir", o.Datadir, "gtid", gtid, "binlogs_replayed", len(files))
	return res, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "nothing after the snapshot"
	}
	return t.UTC().Format(time.RFC3339)
}

// choosePlan picks the newest snapshot before the target whose server's archive holds its
// binlog position, and the archived binlogs to replay after it.
func choosePlan(ctx context.Context, o PITROptions) (Record, []ArchivedBinlog, error) {
	recs, err := o.Catalog.List(ctx)
	if len(recs) == 0 {
		if err == nil {
			err = ErrNoSnapshot
		}
		return Record{}, nil, fmt.Errorf("find snapshots: %w", err)
	}
	var reasons []string
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		if rec.Flavor != "" && rec.Flavor != o.Flavor.String() {
			continue
		}
		if !o.Until.IsZero() && (rec.Completed.IsZero() || rec.Completed.After(o.Until)) {
			continue
		}
		if o.UntilGTID != "" {
			want, _ := mysql.ParseGTIDSet(o.Flavor, o.UntilGTID)
			have, err := mysql.ParseGTIDSet(o.Flavor, rec.GTID)
			if err != nil || !want.Contains(have) {
				continue
			}
		}
		plan, err := planBinlogs(ctx, o, rec)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("snapshot %s: %v", rec.ID, err))
			continue
		}
		return rec, plan, nil
	}
	if len(reasons) == 0 {
		return Record{}, nil, fmt.Errorf("%w taken before the target (oldest: %s, completed %s)", ErrNoSnapshot, recs[0].ID, fmtTime(recs[0].Completed))
	}
	return Record{}, nil, fmt.Errorf("no snapshot before the target can be rolled forward: %s", strings.Join(reasons, "; "))
}

// planBinlogs lists the archived binlogs to replay after rec: the file holding rec's position
// and every later one of the same server opened before Until, checking that none is missing.
func planBinlogs(ctx context.Context, o PITROptions, rec Record) ([]ArchivedBinlog, error) {
	bins, err := listArchive(ctx, o.Store, o.Prefix, rec.ServerID, true)
	if err != nil {
		return nil, err
	}
	start, ok := findStartBinlog(bins, rec)
	if !ok {
		return nil, fmt.Errorf("the archive of server %d has no %s (the binlog the snapshot stands in): not archived yet, or pruned", rec.ServerID, rec.BinlogFile)
	}
	var plan []ArchivedBinlog
	for _, b := range bins {
		if binlogBefore(b, start) {
			continue
		}
		if !o.Until.IsZero() && !b.Created.Before(o.Until.UTC().Truncate(time.Second).Add(time.Second)) {
			// Opened after the target's second: all it holds is too late, and the file
			// before it closed after the target, so the archive covers the target.
			plan = append(plan, ArchivedBinlog{Object: "", Created: b.Created})
			break
		}
		if n := len(plan); n > 0 {
			prev := plan[n-1]
			if prev.ServerID == b.ServerID && prev.Created.Equal(b.Created) && prev.File == b.File {
				// The same file archived twice (compression or snapshot.encrypt changed in
				// between): replay it once, from the sealed copy when a key is set (an
				// unsealed one beside it may have been planted), else from the unsealed one.
				if want := o.Key != nil; b.Sealed == want && prev.Sealed != want {
					plan[n-1] = b
				}
				continue
			}
			pb, pn, ok1 := binlogSeq(prev.File)
			cb, cn, ok2 := binlogSeq(b.File)
			if !ok1 || !ok2 || pb != cb || cn != pn+1 {
				return nil, fmt.Errorf("the archive of server %d has a gap: %s is followed by %s", rec.ServerID, prev.Object, b.Object)
			}
		}
		plan = append(plan, b)
	}
	return plan, nil
}

// reaches checks that the snapshot's position plus the archived binlogs' last GTIDs contain
// the target.
func reaches(f mysql.Flavor, snapshotGTID string, archived []string, target string) error {
	have, err := mysql.ParseGTIDSet(f, strings.Join(append([]string{snapshotGTID}, archived...), ","))
	if err != nil {
		return err
	}
	want, err := mysql.ParseGTIDSet(f, target)
	if err != nil {
		return err
	}
	if !have.Contains(want) {
		return fmt.Errorf("the snapshot and the archived binlogs end at GTID %q, which does not contain the target %q: the archive ends before it", have, want)
	}
	return nil
}

// downloadBinlogs fetches the planned binlogs into dir, decompressed, checking each is a whole
// closed binary log. covered is when the archive's last planned file closed: every
// transaction before it is in the files. A trailing marker (Object "") means a later file
// exists, opened at its Created: the archive covers up to then. archived lists, per file, the
// last MariaDB GTIDs it holds.
func downloadBinlogs(ctx context.Context, store storage.Store, key *seal.Key, allowUnsealed bool, plan []ArchivedBinlog, dir string) (files []string, covered time.Time, archived []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, time.Time{}, nil, err
	}
	for _, b := range plan {
		if b.Object == "" {
			covered = b.Created
			break
		}
		path := filepath.Join(dir, fmt.Sprintf("%06d-%s", len(files), b.File))
		scan, err := downloadBinlog(ctx, store, key, allowUnsealed, b, path)
		if err != nil {
			return nil, time.Time{}, nil, fmt.Errorf("download binlog %s: %w", b.Object, err)
		}
		closedAt, err := scan.closed()
		if err != nil {
			return nil, time.Time{}, nil, fmt.Errorf("download binlog %s: %w", b.Object, err)
		}
		files = append(files, path)
		covered = closedAt
		if g := scan.lastGTIDs(); g != "" {
			archived = append(archived, g)
		}
	}
	return files, covered, archived, nil
}

func downloadBinlog(ctx context.Context, store storage.Store, key *seal.Key, allowUnsealed bool, b ArchivedBinlog, path string) (*binlogScanner, error) {
	rc, err := store.Get(ctx, b.Object)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	src, release, err := newDecoder(rc, "archived binlog "+b.Object, b.Compress, b.Sealed, key, binlogContext(b.ServerID, b.Created, b.File), allowUnsealed)
	if err != nil {
		return nil, err
	}
	defer release()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	scan := &binlogScanner{}
	if _, err := io.Copy(io.MultiWriter(f, scan), src); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return scan, nil
}

// replay starts a private server on the restored datadir, seeds its GTID state with the
// snapshot's position, pipes the binlog tool's output for files into the client, makes the
// replication position match the binlog, stops the server and returns the final position.
func replay(ctx context.Context, o PITROptions, rec Record, gtid string, files []string, log *slog.Logger) (string, error) {
	serverID := o.ServerID
	if serverID == 0 {
		serverID = rec.ServerID
	}
	db, socket, stop, err := privateServer{Name: "replay", Flavor: o.Flavor, Runner: o.Runner, Binary: o.ServerBinary,
		OSUser: o.OSUser, Datadir: o.Datadir, ServerID: serverID, Extra: o.Flavor.ReplayServerOptions(),
		RootPassword: o.RootPassword, StartTimeout: o.StartTimeout, StopTimeout: o.StartTimeout, Log: log}.start(ctx)
	if err != nil {
		return "", fmt.Errorf("start the replay server: %w", err)
	}
	defer stop()
	version, err := db.Version(ctx)
	if err != nil {
		return "", err
	}
	if gtid != "" {
		if err := execWithGTID(ctx, db, o.Flavor.SeedGTIDStateSQL(version), gtid); err != nil {
			return "", fmt.Errorf("seed the GTID state %s: %w", gtid, err)
		}
	}
	if len(files) > 0 {
		start := time.Now()
		err := withOptionFile("", mysql.ClientOptions{User: "root", Password: o.RootPassword, Socket: socket}, func(optionFile, _ string) error {
			return pipeReplay(ctx, o, gtid, files, optionFile)
		})
		if err != nil {
			return "", fmt.Errorf("replay binlogs: %w", err)
		}
		log.Info("binlogs replayed", "files", len(files), "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	}
	var pos string
	if err := db.SQL().QueryRowContext(ctx, o.Flavor.BinlogPosQuery()).Scan(&pos); err != nil {
		return "", fmt.Errorf("read the replayed position: %w", err)
	}
	if pos == "" {
		pos = gtid
	}
	if q := o.Flavor.SyncReplicaPosSQL(); q != "" && pos != "" {
		if err := execWithGTID(ctx, db, []string{q}, pos); err != nil {
			return "", fmt.Errorf("set the replication position %s: %w", pos, err)
		}
	}
	return normalizeGTID(o.Flavor, pos), nil
}

func normalizeGTID(f mysql.Flavor, s string) string {
	set, err := mysql.ParseGTIDSet(f, s)
	if err != nil {
		return s
	}
	return set.String()
}

// execWithGTID runs statements on one connection, binding gtid to each "?".
func execWithGTID(ctx context.Context, db *mysql.DB, stmts []string, gtid string) error {
	c, err := db.SQL().Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, s := range stmts {
		var args []any
		if strings.Contains(s, "?") {
			args = append(args, gtid)
		}
		if _, err := c.ExecContext(ctx, s, args...); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// pipeReplay runs "binlog tool ... files | client" through the Runner.
func pipeReplay(ctx context.Context, o PITROptions, after string, files []string, optionFile string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	args := append(o.Flavor.BinlogReplayArgs(after, o.Until, o.UntilGTID), files...)
	readerDone := make(chan error, 1)
	go func() {
		err := o.Runner.Run(ctx, supervisor.Cmd{Name: o.Flavor.BinlogTool(), Path: o.BinlogTool, Args: args,
			Env: append(supervisor.ScrubEnv(os.Environ(), o.Secrets), "TZ=UTC"), Stdout: pw})
		if err != nil {
			err = fmt.Errorf("%s: %w", o.Flavor.BinlogTool(), err)
		}
		pw.CloseWithError(err)
		readerDone <- err
	}()
	clientErr := o.Runner.Run(ctx, supervisor.Cmd{Name: o.Flavor.ClientTool(), Path: o.ClientTool,
		Args: o.Flavor.ReplayClientArgs(optionFile), Stdin: pr})
	if clientErr != nil {
		clientErr = fmt.Errorf("%s: %w", o.Flavor.ClientTool(), clientErr)
		cancel(clientErr)
	}
	pr.CloseWithError(errConsumerExited)
	readerErr := <-readerDone
	switch {
	case readerErr != nil && (clientErr == nil || !errors.Is(context.Cause(ctx), clientErr)):
		return readerErr
	case clientErr != nil:
		return clientErr
	}
	return nil
}
