package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// Restore drills (snapshot.verify): a healthy replica proves the latest snapshot restores.
//
//  1. DecideDrill, a pure function of the catalog and the clock, says when: on a healthy
//     replica (never the primary), when snapshots/latest has no drill yet, at most once per
//     snapshot.verify.interval in the cluster (the newest verifiedAt of every record).
//  2. The node takes the drill lock (verify-lock: one drill at a time cluster-wide; not the
//     backup lock, which a drill as long as a restore would take from the primary's backups),
//     and decides again under it (another node may just have drilled).
//  3. Restore puts the snapshot into a scratch datadir under snapshot.tempDir (the datadir's
//     filesystem): the object's size and sha256 are verified as it streams, the backup is
//     prepared, and the GTID position in the backup's own binlog info is compared with the
//     record's.
//  4. A throw-away server starts on it: no network, a socket in a private 0700 directory, no
//     replication start, no binary log, no events, a small buffer pool, its own pid file, as
//     the OS user of mysql.exec. CHECK TABLE runs on every InnoDB table (or a sample of
//     snapshot.verify.sampleTables), then the server is shut down and the scratch directory
//     removed, whatever happened.
//  5. The outcome is written on snapshots/<id> and snapshots/latest (verifiedAt, and
//     verifyError when it failed), logged, and counted in Stats. A failed drill asks the
//     primary for a fresh snapshot (snapshot-request); BootstrapReplica and Reseed no longer
//     restore the failed one (ChooseRestore).
//
// A failure of the node's own (the drill was cancelled or timed out, no scratch space, the
// server binary missing, Consul or the store unreachable, the root password refused) says
// nothing about the snapshot: it is logged, not recorded, and retried after a backoff.

// DrillState is what DecideDrill looks at.
type DrillState struct {
	Now time.Time
	// Replica: this node is a healthy replica. Drills never run on the primary.
	Replica bool
	// Latest is snapshots/latest, nil when there is none.
	Latest *Record
	// LastDrill is when the newest drill in the cluster finished (LastDrill of the catalog's
	// records), zero when none has.
	LastDrill time.Time
	// Interval is snapshot.verify.interval: the least time between two drills.
	Interval time.Duration
	// RetryAt: after a failure of this node's own, no drill before then.
	RetryAt time.Time
}

// DrillDecision says whether to drill now, and why (or why not), in one sentence.
type DrillDecision struct {
	Drill bool
	Why   string
}

// DecideDrill says whether this node runs a restore drill on the latest snapshot now.
func DecideDrill(s DrillState) DrillDecision {
	no := func(format string, a ...any) DrillDecision { return DrillDecision{Why: fmt.Sprintf(format, a...)} }
	switch {
	case !s.Replica:
		return no("not a healthy replica: drills run on replicas only, never on the primary")
	case s.Latest == nil:
		return no("no snapshot yet")
	case !s.Latest.VerifiedAt.IsZero():
		return no("latest snapshot %s was drilled at %s", s.Latest.ID, s.Latest.VerifiedAt.UTC().Format(time.RFC3339))
	case s.Now.Before(s.RetryAt):
		return no("this node's last drill attempt failed on its side; next attempt at %s", s.RetryAt.UTC().Format(time.RFC3339))
	case !s.LastDrill.IsZero() && s.Now.Before(s.LastDrill.Add(s.Interval)):
		return no("the last drill in the cluster finished at %s: the next not before %s (snapshot.verify.interval %s)",
			s.LastDrill.UTC().Format(time.RFC3339), s.LastDrill.Add(s.Interval).UTC().Format(time.RFC3339), s.Interval)
	}
	return DrillDecision{Drill: true, Why: fmt.Sprintf("latest snapshot %s has not been drilled", s.Latest.ID)}
}

// LastDrill is when the newest drill among recs finished, zero when none has.
func LastDrill(recs []Record) time.Time {
	var last time.Time
	for _, r := range recs {
		if r.VerifiedAt.After(last) {
			last = r.VerifiedAt
		}
	}
	return last
}

// ChooseRestore picks the snapshot a bootstrap or re-seed restores among recs (oldest first):
// the newest one that has not failed a restore drill, verified or not yet drilled (a new
// snapshot is not held back for its drill). skipped lists the newer ones passed over because
// they failed theirs. pick is nil when there is no snapshot, or when every one failed: a
// snapshot known not to restore is never restored (the drill asked for a fresh one).
func ChooseRestore(recs []Record) (pick *Record, skipped []Record) {
	for i := len(recs) - 1; i >= 0; i-- {
		if !recs[i].FailedDrill() {
			r := recs[i]
			return &r, skipped
		}
		skipped = append(skipped, recs[i])
	}
	return nil, skipped
}

// DrillResult is the outcome of one restore drill.
type DrillResult struct {
	Snapshot string
	// Tables is how many InnoDB tables CHECK TABLE went through (of TablesTotal).
	Tables, TablesTotal int
	Took                time.Duration
	// Err is nil when the drill passed.
	Err error
	// Local: the drill failed for a reason of this node's own, which says nothing about the
	// snapshot; nothing was recorded.
	Local bool
}

// VerifyStats are this node's drill counters, for /metrics.
type VerifyStats struct {
	Runs        uint64        // drills run to an outcome on a snapshot (passed or failed)
	Failures    uint64        // drills that found a snapshot bad
	LocalErrors uint64        // drills that failed on this node's side (not recorded)
	LastSuccess time.Time     // when the last passing drill finished
	LastRun     time.Time     // when the last drill finished, whatever its outcome
	LastTook    time.Duration // how long it took
	LastOK      bool          // whether it passed
}

// maxVerifyError bounds the verifyError text stored in Consul.
const maxVerifyError = 1000

// drillScratch is the directory under snapshot.tempDir holding drills' scratch datadirs; it is
// emptied before each drill (a node killed mid-drill leaves one datadir's worth behind).
const drillScratch = "drill"

// errLocal marks a failure of this node's own.
var errLocal = errors.New("on this node's side")

func localErr(err error) error { return fmt.Errorf("%w (%w)", err, errLocal) }

// isLocalFailure says whether a drill's error says nothing about the snapshot.
func isLocalFailure(ctx context.Context, err error) bool {
	var se *supervisor.StartError
	var ne net.Error
	switch {
	case ctx.Err() != nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, errLocal), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT),
		errors.As(err, &se), errors.Is(err, mysql.ErrAccessDenied):
		return true
	case errors.Is(err, ErrCorrupt), errors.Is(err, storage.ErrNotFound):
		return false // the snapshot's fault, whatever else the error carries
	case errors.As(err, &ne):
		return true // the store or Consul unreachable
	}
	return false
}

// Drill runs a restore drill on rec now (the caller decided it should: DecideDrill) and
// records its outcome in the catalog; a snapshot found bad makes it ask the primary for a
// fresh one. It holds no lock (Verifier takes the drill lock).
func (s *Snapshotter) Drill(ctx context.Context, rec Record) DrillResult {
	log := s.log.With("snapshot", rec.ID)
	start := time.Now()
	res := DrillResult{Snapshot: rec.ID}
	timeout := s.cfg.Snapshot.Verify.Timeout.D()
	if timeout <= 0 {
		timeout = 6 * time.Hour
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log.Info("restore drill started", "bytes", rec.Size, "raw_bytes", rec.RawSize, "gtid", rec.GTID)
	res.Tables, res.TablesTotal, res.Err = s.drill(dctx, rec, log)
	res.Took = time.Since(start)
	if res.Err != nil && isLocalFailure(dctx, res.Err) {
		res.Local = true
		s.verifyStats(func(st *VerifyStats) { st.LocalErrors++ })
		log.Error("restore drill could not run on this node; nothing recorded, retried later", "err", res.Err,
			"seconds", fmt.Sprintf("%.1f", res.Took.Seconds()))
		return res
	}
	now := time.Now()
	verifyErr := ""
	if res.Err != nil {
		verifyErr = s.storableError(res.Err)
	}
	// Recorded with a context of its own: the drill's may be near its deadline.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer rcancel()
	if err := s.catalog.SetVerified(rctx, rec.ID, now, verifyErr); err != nil {
		log.Warn("cannot record the restore drill's outcome in the catalog", "err", err)
	}
	s.verifyStats(func(st *VerifyStats) {
		st.Runs++
		st.LastRun, st.LastTook, st.LastOK = now, res.Took, res.Err == nil
		if res.Err == nil {
			st.LastSuccess = now
		} else {
			st.Failures++
		}
	})
	if res.Err == nil {
		log.Info("restore drill passed", "tables_checked", res.Tables, "tables", res.TablesTotal,
			"seconds", fmt.Sprintf("%.1f", res.Took.Seconds()))
		return res
	}
	log.Error("restore drill FAILED: this snapshot is not used for bootstraps or re-seeds while another is usable; asking the primary for a fresh one",
		"err", res.Err, "seconds", fmt.Sprintf("%.1f", res.Took.Seconds()))
	req := SnapshotRequest{Node: s.cfg.Node, Reason: "snapshot " + rec.ID + " failed its restore drill", After: rec.ID, Requested: now.UTC()}
	if err := s.catalog.RequestSnapshot(rctx, req); err != nil {
		log.Warn("cannot ask the primary for a fresh snapshot", "err", err)
	}
	return res
}

// storableError is a drill's error as stored in Consul: without any configured secret (none
// should be there; this is the last guard) and bounded.
func (s *Snapshotter) storableError(err error) string {
	msg := err.Error()
	for _, sec := range s.cfg.Secrets() {
		if sec != "" {
			msg = strings.ReplaceAll(msg, sec, "[redacted]")
		}
	}
	if len(msg) > maxVerifyError {
		msg = msg[:maxVerifyError] + "..."
	}
	return msg
}

// drill restores rec into a scratch datadir, checks it with a throw-away server and removes
// the scratch copy.
func (s *Snapshotter) drill(ctx context.Context, rec Record, log *slog.Logger) (tables, total int, err error) {
	tmp := s.cfg.Snapshot.TempDir
	if tmp == "" || !filepath.IsAbs(tmp) {
		return 0, 0, localErr(fmt.Errorf("snapshot.tempDir %q must be an absolute path beside the datadir", tmp))
	}
	root := filepath.Join(tmp, drillScratch)
	if err := os.RemoveAll(root); err != nil {
		return 0, 0, localErr(fmt.Errorf("remove an earlier drill's scratch space %s: %w", root, err))
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return 0, 0, localErr(fmt.Errorf("create the drill's scratch space: %w", err))
	}
	defer func() {
		if rerr := os.RemoveAll(root); rerr != nil {
			log.Warn("cannot remove the drill's scratch space; the next drill tries again", "dir", root, "err", rerr)
		}
	}()
	if err := checkScratchSpace(root, rec); err != nil {
		return 0, 0, localErr(err)
	}
	m := s.cfg.MySQL
	// The throw-away server runs as the OS user of mysql.exec: it must reach its datadir.
	if err := errors.Join(chownTree(root, m.OSUser()), allowTraverse(tmp, m.OSUser())); err != nil {
		return 0, 0, localErr(err)
	}
	datadir := filepath.Join(root, "data")
	if _, err := Restore(ctx, RestoreOptions{Runner: s.runner, Flavor: s.flavor, Store: s.store, Record: rec, Key: s.key,
		AllowUnsealed: s.cfg.Snapshot.Encrypt.AllowUnsealed, Datadir: datadir, TempDir: filepath.Join(root, "tmp"),
		OSUser: m.OSUser(), Log: s.log}); err != nil { // Restore adds the snapshot's id itself
		return 0, 0, err
	}
	check := s.drillCheck
	if check == nil {
		check = s.checkRestored
	}
	return check(ctx, rec, datadir, log)
}

// allowTraverse lets the OS user the server runs as pass through dir (search permission for
// group and others, not listing), when we run as root and that user is another one: dir is
// snapshot.tempDir, which restores create 0700.
func allowTraverse(dir, osUser string) error {
	if osUser == "" || osUser == "root" || os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if mode := st.Mode().Perm(); mode&0o011 != 0o011 {
		if err := os.Chmod(dir, mode|0o011); err != nil {
			return fmt.Errorf("let %s pass through %s: %w", osUser, dir, err)
		}
	}
	return nil
}

// checkScratchSpace refuses a drill the scratch filesystem cannot hold: the unpacked backup
// is about as large as the backup tool's stream.
func checkScratchSpace(dir string, rec Record) error {
	need := rec.RawSize
	if need <= 0 {
		need = rec.Size
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("free space in %s: %w", dir, err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free < need {
		return fmt.Errorf("the drill needs about %d MiB of scratch space in %s (one datadir), %d MiB are free: free some, or move snapshot.tempDir (on the datadir's filesystem)",
			need>>20, dir, free>>20)
	}
	return nil
}

// drillBufferPool is the throw-away server's innodb_buffer_pool_size: CHECK TABLE reads each
// table once, so a small pool costs little time and leaves the replica its memory.
const drillBufferPool = "64M"

// checkRestored starts a throw-away server on a restored datadir, runs CHECK TABLE on its
// InnoDB tables (all, or a sample of snapshot.verify.sampleTables) and shuts it down.
func (s *Snapshotter) checkRestored(ctx context.Context, rec Record, datadir string, log *slog.Logger) (checked, total int, err error) {
	m := s.cfg.MySQL
	server := s.flavor.ServerBinary()
	if len(m.Exec) > 0 && m.Exec[0] != "" {
		server = m.Exec[0]
	}
	db, _, stop, err := privateServer{Name: "drill", Flavor: s.flavor, Runner: s.runner, Binary: server,
		OSUser: m.OSUser(), Datadir: datadir, ServerID: rec.ServerID, BufferPool: drillBufferPool,
		Extra: s.flavor.DrillServerOptions(), RootPassword: m.RootPassword, IOTimeout: time.Hour,
		StartTimeout: m.StartTimeout.D(), StopTimeout: m.StopTimeout.D(), Log: log}.start(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	tables, err := innodbTables(ctx, db.SQL())
	if err != nil {
		return 0, 0, fmt.Errorf("list the InnoDB tables: %w", err)
	}
	sample := sampleTables(tables, s.cfg.Snapshot.Verify.SampleTables, rand.IntN)
	var problems []string
	for _, t := range sample {
		p, err := checkTable(ctx, db.SQL(), t)
		if err != nil {
			return checked, len(tables), fmt.Errorf("CHECK TABLE %s: %w", t, err)
		}
		checked++
		if p != "" {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return checked, len(tables), fmt.Errorf("CHECK TABLE found %d of %d tables bad: %s", len(problems), checked, strings.Join(problems, "; "))
	}
	return checked, len(tables), nil
}

// table is one table's schema and name.
type table struct{ schema, name string }

func (t table) String() string { return t.schema + "." + t.name }

func (t table) quoted() string {
	q := func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
	return q(t.schema) + "." + q(t.name)
}

// innodbTables lists the server's InnoDB tables (the mysql schema's included), sorted.
func innodbTables(ctx context.Context, db *sql.DB) ([]table, error) {
	rows, err := db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE ENGINE = 'InnoDB' AND TABLE_TYPE = 'BASE TABLE'
		AND TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema', 'sys')
		ORDER BY TABLE_SCHEMA, TABLE_NAME`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.schema, &t.name); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// sampleTables returns every table when n is 0 or covers them all, else n of them picked by
// intn (rand.IntN), in their order.
func sampleTables(tables []table, n int, intn func(int) int) []table {
	if n <= 0 || n >= len(tables) {
		return tables
	}
	idx := make([]int, len(tables))
	for i := range idx {
		idx[i] = i
	}
	for i := len(idx) - 1; i > 0; i-- { // Fisher-Yates
		j := intn(i + 1)
		idx[i], idx[j] = idx[j], idx[i]
	}
	idx = idx[:n]
	slices.Sort(idx)
	out := make([]table, n)
	for i, k := range idx {
		out[i] = tables[k]
	}
	return out
}

// checkTable runs CHECK TABLE on t and returns what is wrong with it ("" for nothing): any
// row of type error, or a final status other than OK.
func checkTable(ctx context.Context, db *sql.DB, t table) (string, error) {
	rows, err := db.QueryContext(ctx, "CHECK TABLE "+t.quoted())
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var errs []string
	status := ""
	for rows.Next() {
		var name, op, typ, text sql.NullString
		if err := rows.Scan(&name, &op, &typ, &text); err != nil {
			return "", err
		}
		switch strings.ToLower(typ.String) {
		case "error":
			errs = append(errs, text.String)
		case "status":
			status = text.String
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(errs) == 0 && strings.EqualFold(status, "OK") {
		return "", nil
	}
	if status != "" {
		errs = append(errs, status)
	}
	return fmt.Sprintf("%s: %s", t, strings.Join(errs, ", ")), nil
}

// verifyStats updates the drill counters.
func (s *Snapshotter) verifyStats(f func(*VerifyStats)) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	f(&s.vstats)
}

// VerifyStats returns this node's drill counters.
func (s *Snapshotter) VerifyStats() VerifyStats {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return s.vstats
}

// Verifier runs restore drills on this node while it is a healthy replica (Run).
type Verifier struct {
	s    *Snapshotter
	now  func() time.Time
	poll time.Duration

	// Owned by Run's goroutine.
	retryAt    time.Time
	retryDelay time.Duration
	drilledAt  time.Time // when this node's last drill with an outcome finished
}

// verifyPoll is how often a replica looks at the catalog for a snapshot to drill.
const verifyPoll = 30 * time.Second

// NewVerifier returns the drill loop of this node.
func (s *Snapshotter) NewVerifier() *Verifier {
	return &Verifier{s: s, now: time.Now, poll: verifyPoll}
}

// Run works until ctx ends: every poll, while isReplica() holds, it decides (DecideDrill)
// and runs a drill under the cluster-wide drill lock. A failure of the node's own is retried
// after a growing delay (1m to 1h).
func (v *Verifier) Run(ctx context.Context, isReplica func() bool) {
	t := time.NewTicker(v.poll)
	defer t.Stop()
	var last string // the last decision logged, to log each once
	for {
		if why := v.cycle(ctx, isReplica); why != "" && why != last {
			v.s.log.Debug("restore drill: " + why)
			last = why
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cycle is one look: it returns the decision's sentence, and runs the drill when it says so.
func (v *Verifier) cycle(ctx context.Context, isReplica func() bool) string {
	d, rec, err := v.decide(ctx, isReplica())
	if err != nil || !d.Drill {
		if err != nil {
			return "cannot read the catalog: " + err.Error()
		}
		return d.Why
	}
	unlock, err := v.s.catalog.VerifyLock(ctx)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return "another node runs a drill"
		}
		return "cannot take the drill lock: " + err.Error()
	}
	defer unlock()
	// Under the lock: another node may have drilled it a moment ago, or the role changed.
	if d, rec, err = v.decide(ctx, isReplica()); err != nil || !d.Drill {
		if err != nil {
			return "cannot read the catalog: " + err.Error()
		}
		return d.Why
	}
	v.s.log.Info("restore drill: " + d.Why)
	res := v.s.Drill(ctx, *rec)
	if res.Local {
		v.retryDelay = min(max(2*v.retryDelay, time.Minute), time.Hour)
		v.retryAt = v.now().Add(v.retryDelay)
	} else {
		// Counted even if recording it in Consul failed: no second drill within the interval.
		v.retryDelay, v.retryAt, v.drilledAt = 0, time.Time{}, v.now()
	}
	return ""
}

// decide reads the catalog and applies DecideDrill.
func (v *Verifier) decide(ctx context.Context, replica bool) (DrillDecision, *Record, error) {
	st := DrillState{Now: v.now(), Replica: replica, Interval: v.s.cfg.Snapshot.Verify.Interval.D(), RetryAt: v.retryAt}
	if !replica {
		return DecideDrill(st), nil, nil
	}
	latest, err := v.s.catalog.Latest(ctx)
	if err != nil {
		return DrillDecision{}, nil, err
	}
	st.Latest = latest
	if latest != nil && latest.VerifiedAt.IsZero() {
		recs, err := v.s.catalog.List(ctx)
		if err != nil {
			return DrillDecision{}, nil, err
		}
		st.LastDrill = LastDrill(recs)
		if v.drilledAt.After(st.LastDrill) {
			st.LastDrill = v.drilledAt
		}
	}
	return DecideDrill(st), latest, nil
}
