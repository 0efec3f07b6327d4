package snapshot

import (
	"golang.org/x/sys/unix"

	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// ErrCorrupt is wrapped by the error of a restore whose stored object does not match its
// record (size or sha256).
var ErrCorrupt = errors.New("snapshot is corrupt")

// RestoreOptions configure Restore. Fields without a default are required.
type RestoreOptions struct {
	// Runner runs the unpack and prepare tools.
	Runner supervisor.Runner
	// Flavor must be the snapshot's.
	Flavor mysql.Flavor
	// Store holds the snapshot; Record describes it.
	Store  storage.Store
	Record Record
	// Key opens a sealed snapshot (Record.Encrypt); it must be the key the record names. With
	// a key, an unsealed snapshot is refused unless AllowUnsealed.
	Key           *seal.Key
	AllowUnsealed bool
	// Datadir receives the restored files: absolute; missing or empty, else the existing
	// directory is renamed to "<Datadir>.old-<time>" (never deleted). The server must not run.
	Datadir string
	// TempDir is scratch space for the unpacked backup (as large as the datadir): absolute.
	// On the datadir's filesystem the files are renamed into place, elsewhere copied.
	TempDir string
	// OSUser owns the restored files (when running as root); "" or "root" leaves them to root.
	OSUser string
	// UseMemory is the prepare step's --use-memory in bytes; 0 sizes it from the container's
	// memory limit (PrepareMemory of MemoryLimit), negative leaves the tool's default.
	UseMemory int64
	// ServerStopped says no server shares the container's memory during the restore (a
	// replica's bootstrap or re-seed): the prepare takes half of it instead of an eighth (a
	// restore drill beside a running server, a standalone point-in-time restore).
	ServerStopped bool
	// StreamTool and BackupTool override the tools' paths (default the flavor's, in PATH).
	StreamTool string
	BackupTool string
	// Log receives progress and outcome; default discards.
	Log *slog.Logger
	// Progress is the interval between progress lines; default DefaultProgressInterval.
	Progress time.Duration
	// Now is the clock (for the moved-aside datadir's name); default time.Now.
	Now func() time.Time
	// State writes a RestoreState (not finished) into the datadir, moved in with the files:
	// a node that stops before it sets the GTID position sets it at its next start.
	State bool
}

// RestoreResult says what the restore produced.
type RestoreResult struct {
	// GTID is the position to set once the server runs (DB.SetGTIDPosition), from the
	// backup's own binlog info file; BinlogFile and BinlogPos are the source's coordinates.
	GTID       string
	BinlogFile string
	BinlogPos  uint64
	// MovedAside is where the previous, non-empty datadir went; "" when there was none.
	MovedAside string
	// State is the restore state written into the datadir (RestoreOptions.State), or nil.
	State *RestoreState
}

func (o *RestoreOptions) fill() error {
	if o.Runner == nil || o.Store == nil {
		return errors.New("Runner and Store are required")
	}
	if err := o.Flavor.Validate(); err != nil {
		return err
	}
	if err := o.Record.Validate(); err != nil {
		return err
	}
	if err := checkKey(o.Record, o.Key, o.AllowUnsealed); err != nil {
		return err
	}
	if o.Record.Flavor != "" && o.Record.Flavor != o.Flavor.String() {
		return fmt.Errorf("snapshot %s was taken from a %s server; this node runs %s", o.Record.ID, o.Record.Flavor, o.Flavor)
	}
	for name, p := range map[string]string{"datadir": o.Datadir, "temporary directory": o.TempDir} {
		if p == "" || !filepath.IsAbs(p) {
			return fmt.Errorf("%s %q must be an absolute path", name, p)
		}
	}
	o.Datadir, o.TempDir = filepath.Clean(o.Datadir), filepath.Clean(o.TempDir)
	if within(o.TempDir, o.Datadir) || within(o.Datadir, o.TempDir) {
		return fmt.Errorf("temporary directory %s and datadir %s must not contain each other", o.TempDir, o.Datadir)
	}
	if o.StreamTool == "" {
		o.StreamTool = o.Flavor.StreamTool()
	}
	if o.BackupTool == "" {
		o.BackupTool = o.Flavor.BackupTool()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// checkKey refuses, before anything is downloaded, a sealed snapshot without its key, and an
// unsealed one when a key is set (unless allowUnsealed).
func checkKey(rec Record, key *seal.Key, allowUnsealed bool) error {
	switch {
	case rec.Encrypt == "":
		return checkSealed("snapshot "+rec.ID, false, key, allowUnsealed)
	case key == nil:
		return fmt.Errorf("snapshot %s is encrypted with key id %s and no key is configured: set snapshot.encrypt.keyFile or snapshot.encrypt.key to that key", rec.ID, rec.KeyID)
	case key.ID() != rec.KeyID:
		return fmt.Errorf("snapshot %s is encrypted with key id %s; the key from %s has id %s: give the key it was taken with (%w)", rec.ID, rec.KeyID, key.Source(), key.ID(), seal.ErrWrongKey)
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// Restore makes o.Datadir a copy of the snapshot's server, ready to start:
//
//  1. stream the object from the store through sha256 and the decompressor into the unpack
//     tool (mbstream/xbstream -x) in a fresh directory under TempDir;
//  2. at the end of the object, compare its size and sha256 with the record; on mismatch
//     refuse with ErrCorrupt ("snapshot X is corrupt: sha256 mismatch ...") before anything
//     else happens (the datadir is untouched);
//  3. prepare the backup (apply the redo log);
//  4. read the GTID position from the backup's own binlog info file and check it against the
//     record;
//  5. move an existing non-empty datadir aside, move the prepared files in, chown them.
//
// The caller starts the server on the datadir and sets the returned GTID position
// (DB.SetGTIDPosition) before replicating. The temporary directory is removed either way.
func Restore(ctx context.Context, o RestoreOptions) (RestoreResult, error) {
	if err := o.fill(); err != nil {
		return RestoreResult{}, fmt.Errorf("snapshot: restore: %w", err)
	}
	rec := o.Record
	log := o.Log.With("snapshot", rec.ID, "store", o.Store.String())
	fail := func(err error) (RestoreResult, error) {
		return RestoreResult{}, fmt.Errorf("snapshot: restore %s into %s: %w", rec.ID, o.Datadir, err)
	}
	if err := checkNotInUse(o.Datadir); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(o.TempDir, 0o700); err != nil {
		return fail(fmt.Errorf("create temporary directory: %w", err))
	}
	work, err := os.MkdirTemp(o.TempDir, "restore-"+rec.ID+"-")
	if err != nil {
		return fail(fmt.Errorf("create temporary directory: %w", err))
	}
	defer os.RemoveAll(work)
	unpacked := filepath.Join(work, "data")
	if err := os.Mkdir(unpacked, 0o750); err != nil {
		return fail(err)
	}

	start := time.Now()
	log.Info("restore started", "object", rec.Path, "bytes", rec.Size, "datadir", o.Datadir)
	if err := streamDown(ctx, o, unpacked, log); err != nil {
		return fail(err)
	}
	log.Info("snapshot downloaded and verified", "sha256", rec.SHA256, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()),
		"mb_per_s", rate(rec.Size, time.Since(start)))

	useMemory := o.UseMemory
	if useMemory == 0 {
		limit, source, err := MemoryLimit()
		if err != nil {
			log.Warn("cannot size the prepare step's memory; the backup tool's default applies", "err", err)
		} else {
			useMemory = PrepareMemory(limit, o.ServerStopped)
			log.Info("prepare", "use_memory_mb", useMemory>>20, "memory_limit_mb", limit>>20, "limit_from", source, "server_stopped", o.ServerStopped)
		}
	}
	if err := o.Runner.Run(ctx, supervisor.Cmd{Name: o.Flavor.BackupTool() + " --prepare", Path: o.BackupTool, Args: o.Flavor.PrepareArgs(unpacked, useMemory)}); err != nil {
		return fail(fmt.Errorf("prepare: %w", ctxErr(ctx, err)))
	}
	info, err := binlogInfoFromDir(o.Flavor, unpacked)
	if err != nil {
		return fail(err)
	}
	if err := sameGTID(o.Flavor, info.GTID, rec.GTID); err != nil {
		return fail(err)
	}
	var state *RestoreState
	if o.State {
		st := RestoreState{Snapshot: rec.ID, GTID: info.GTID, Restored: o.Now().UTC()}
		if err := WriteRestoreState(unpacked, st); err != nil {
			return fail(err)
		}
		state = &st
	}
	// Owned by the server's user before it is in place: the swap is the last step.
	if err := chownTree(unpacked, o.OSUser); err != nil {
		return fail(err)
	}
	if st, err := os.Stat(o.Datadir); err == nil {
		if err := os.Chmod(unpacked, st.Mode().Perm()); err != nil {
			return fail(err)
		}
	}
	movedAside, err := installDatadir(unpacked, o.Datadir, o.Now())
	if movedAside != "" {
		log.Warn("the previous datadir was moved aside, not deleted", "datadir", o.Datadir, "moved_to", movedAside)
	}
	if err != nil {
		return fail(err)
	}
	log.Info("restore complete", "datadir", o.Datadir, "gtid", info.GTID, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	return RestoreResult{GTID: info.GTID, BinlogFile: info.File, BinlogPos: info.Pos, MovedAside: movedAside, State: state}, nil
}

// sameGTID checks the position in the backup against the record's.
func sameGTID(f mysql.Flavor, inBackup, inRecord string) error {
	a, err1 := mysql.ParseGTIDSet(f, inBackup)
	b, err2 := mysql.ParseGTIDSet(f, inRecord)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if !a.Equal(b) {
		return fmt.Errorf("the backup's binlog info says GTID %q but its record says %q: refusing a restore whose position is uncertain", inBackup, inRecord)
	}
	return nil
}

// errConsumerExited unblocks a pipe's writer when the tool reading it has exited.
var errConsumerExited = errors.New("the tool reading the pipe exited")

// streamDown feeds the object into the unpack tool and verifies it: the whole object is read
// through sha256 (also after a failure, to tell corruption from other errors) and compared
// with the record before Restore goes on.
func streamDown(ctx context.Context, o RestoreOptions, dir string, log *slog.Logger) error {
	rec := o.Record
	body, err := o.Store.Get(ctx, rec.Path)
	if err != nil {
		return fmt.Errorf("download %s: %w", rec.Path, err)
	}
	defer body.Close()
	hr := newHashReader(body)
	xb := newXBReader(o.Flavor.BinlogInfoFiles()...)
	pr, pw := io.Pipe()
	copyDone := make(chan error, 1)
	go func() {
		err := func() error {
			src, release, err := newDecoder(hr, "snapshot "+rec.ID, rec.Compress, rec.Encrypt != "", o.Key, snapshotContext(rec.ID), o.AllowUnsealed)
			if err != nil {
				return err
			}
			defer release()
			if _, err := io.Copy(io.MultiWriter(xb, pw), src); err != nil {
				return err
			}
			return xb.Close()
		}()
		pw.CloseWithError(err)
		copyDone <- err
	}()
	stop := progress(log, "restore", o.Progress, hr.n.Load, nil)
	runErr := o.Runner.Run(ctx, supervisor.Cmd{Name: o.Flavor.StreamTool(), Path: o.StreamTool, Args: o.Flavor.ExtractArgs(dir), Stdin: pr})
	pr.CloseWithError(errConsumerExited)
	copyErr := <-copyDone
	stop()

	// The copier is done with hr: read what is left, so the checksum covers the whole object.
	if _, err := io.Copy(io.Discard, storage.ContextReader(ctx, hr)); err != nil {
		return fmt.Errorf("download %s: %w", rec.Path, ctxErr(ctx, err))
	}
	if n, sum := hr.n.Load(), hr.sum(); n != rec.Size || sum != rec.SHA256 {
		what := "sha256 mismatch"
		if n != rec.Size {
			what = "size mismatch"
		}
		err := fmt.Errorf("snapshot %s is corrupt: %s: the stored object %s has %d bytes with sha256 %s, its record says %d bytes with sha256 %s: %w",
			rec.ID, what, rec.Path, n, sum, rec.Size, rec.SHA256, ErrCorrupt)
		if copyErr != nil && !errors.Is(copyErr, errConsumerExited) {
			err = fmt.Errorf("%w (reading it failed: %v)", err, copyErr)
		}
		return err
	}
	switch {
	case errors.Is(copyErr, seal.ErrAuth):
		// The bytes match the record but do not open (the record was edited to match them):
		// corrupt, whatever the unpack tool made of the stream cut short.
		return fmt.Errorf("snapshot %s is corrupt: %w: %w", rec.ID, copyErr, ErrCorrupt)
	case errors.Is(copyErr, seal.ErrWrongKey):
		return fmt.Errorf("snapshot %s: %w", rec.ID, copyErr)
	case runErr != nil:
		return fmt.Errorf("unpack: %w", ctxErr(ctx, runErr))
	case copyErr != nil:
		return fmt.Errorf("unpack: %w", ctxErr(ctx, copyErr))
	}
	return nil
}

// installDatadir puts the prepared tree src in place of datadir, so that a crash at any
// instant leaves either the old datadir or the whole new one, never a mix (a datadir that
// holds mysql/ looks initialized to the next start):
//
//  1. every file and directory of src is synced to disk;
//  2. src and datadir are swapped in one step (renameat2 RENAME_EXCHANGE; src must be in
//     the same filesystem, as the default temporary directory beside the datadir is);
//  3. the old datadir, now at src, is renamed to "<datadir>.old-<time>" (an empty one is
//     removed). A crash between 2 and 3 leaves it in the temporary directory, never deleted.
//
// A missing datadir is a plain rename. Where the swap is impossible (a datadir that is a
// mount point, a temporary directory on another filesystem), the restore fails without
// touching the datadir: point snapshot.tempDir beside the datadir, or make the datadir a
// directory inside the volume.
func installDatadir(src, datadir string, now time.Time) (movedAside string, err error) {
	if err := checkNotInUse(datadir); err != nil {
		return "", err
	}
	if err := syncTree(src); err != nil {
		return "", fmt.Errorf("sync the restored files: %w", err)
	}
	parent := filepath.Dir(datadir)
	if _, err := os.Stat(datadir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", fmt.Errorf("create the datadir's parent: %w", err)
		}
		if err := os.Rename(src, datadir); err != nil {
			return "", fmt.Errorf("move the restored datadir into place: %w", err)
		}
		return "", syncDir(parent)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, datadir, unix.RENAME_EXCHANGE); err != nil {
		return "", fmt.Errorf("swap the restored datadir into place (%w): the temporary directory %s must be in the datadir's filesystem, and the datadir must not be a mount point; nothing was changed",
			err, filepath.Dir(src))
	}
	if err := errors.Join(syncDir(parent), syncDir(filepath.Dir(src))); err != nil {
		return "", fmt.Errorf("sync after swapping the datadir: %w", err)
	}
	// src now holds the previous datadir.
	if entries, err := os.ReadDir(src); err == nil && len(entries) == 0 {
		return "", os.Remove(src)
	}
	aside := datadir + ".old-" + now.UTC().Format(secondsLayout)
	if err := os.Rename(src, aside); err != nil {
		return src, fmt.Errorf("the restore is in place, but the previous datadir could not be moved from %s to %s (%w): move it yourself", src, aside, err)
	}
	return aside, syncDir(parent)
}

// syncTree fsyncs every file and directory below root (directories after their entries).
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// checkNotInUse refuses a datadir a running server holds: InnoDB keeps a write lock (fcntl)
// on its system tablespace, ibdata1, while it runs.
func checkNotInUse(datadir string) error {
	f, err := os.OpenFile(filepath.Join(datadir, "ibdata1"), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect datadir: %w", err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return fmt.Errorf("inspect datadir: lock state of ibdata1: %w", err)
	}
	if lk.Type != syscall.F_UNLCK {
		return fmt.Errorf("a server (pid %d) is running on the datadir: stop it first; nothing was changed", lk.Pid)
	}
	return nil
}

// syncDir fsyncs a directory, so the renames in it survive a power loss.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// chownTree gives dir and everything below it to the OS user, when running as root and the
// user is another one.
func chownTree(dir, osUser string) error {
	if osUser == "" || osUser == "root" || os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := mysql.OSUserIDs(osUser)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("chown datadir to %s: %w", osUser, err)
	}
	return nil
}
