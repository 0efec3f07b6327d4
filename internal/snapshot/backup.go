package snapshot

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// BackupOptions configure Backup. Fields without a default are required.
type BackupOptions struct {
	// Runner runs the backup tool (the Supervisor in production).
	Runner supervisor.Runner
	// Flavor selects the tool (mariabackup or xtrabackup) and the metadata files.
	Flavor mysql.Flavor
	// Socket (or Host and Port), User and Password reach the server. The password goes to the
	// tool in a 0600 option file in a private temporary directory, removed afterwards.
	Socket   string
	Host     string
	Port     int
	User     string
	Password string
	// DB, optional, is an open pool to the same server for the few queries Backup makes
	// (server_id, version, binlog directory); without it Backup opens its own.
	DB *mysql.DB
	// Store receives the snapshot; Backend names its kind ("local", "s3", "manta") in the record.
	Store   storage.Store
	Backend string
	// Prefix is prepended to object names; optional, "" or ending in "/".
	Prefix string
	// Compress is "zstd" (default), "lz4" or "none".
	Compress string
	// Key, when not nil, seals the stream after compression (snapshot.encrypt); the sha256
	// and size in the record are the sealed object's.
	Key *seal.Key
	// Node is the mysqlpilot node name recorded in the snapshot; optional.
	Node string
	// ID names the snapshot; optional, default NewID of the start time. It must pass CheckID.
	ID string
	// TempDir holds the private temporary directory (option file, the tool's scratch
	// target dir; no data); default the system's.
	TempDir string
	// Tool overrides the backup tool's path; default Flavor.BackupTool() in PATH.
	Tool string
	// ExtraArgs are appended to the tool's arguments (e.g. "--parallel=4"). No secrets here.
	ExtraArgs []string
	// VerifyReadback reads the stored object back and checks its sha256 before returning;
	// default off (the upload is hashed on the way out and its size is checked).
	VerifyReadback bool
	// Log receives progress and outcome; default discards.
	Log *slog.Logger
	// Progress is the interval between progress lines; default DefaultProgressInterval.
	Progress time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	// queryFacts replaces the server queries in tests.
	queryFacts func(context.Context) (serverFacts, error)
}

func (o *BackupOptions) fill() error {
	if o.Runner == nil || o.Store == nil {
		return errors.New("Runner and Store are required")
	}
	if err := o.Flavor.Validate(); err != nil {
		return err
	}
	if o.Socket == "" && o.Host == "" {
		return errors.New("neither Socket nor Host given")
	}
	if o.Prefix != "" {
		if err := storage.CheckPrefix(o.Prefix); err != nil || o.Prefix[len(o.Prefix)-1] != '/' {
			return fmt.Errorf("prefix %q must be a valid object name ending in /", o.Prefix)
		}
	}
	if o.Compress == "" {
		o.Compress = CompressZstd
	}
	if err := checkCompress(o.Compress); err != nil {
		return err
	}
	if o.User == "" {
		o.User = "root"
	}
	if o.Tool == "" {
		o.Tool = o.Flavor.BackupTool()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ID != "" {
		if err := CheckID(o.ID); err != nil {
			return err
		}
	}
	return nil
}

// serverFacts are what Backup asks the server before it starts.
type serverFacts struct {
	version    string
	serverID   uint32
	binlogBase string // path of the binary logs without extension; "" when unknown
}

func queryServerFacts(ctx context.Context, o *BackupOptions) (serverFacts, error) {
	db := o.DB
	if db == nil {
		var err error
		db, err = mysql.Open(ctx, mysql.Conn{Flavor: o.Flavor, Socket: o.Socket, Addr: addr(o.Host, o.Port),
			User: o.User, Password: o.Password, MaxOpen: 1})
		if err != nil {
			return serverFacts{}, err
		}
		defer db.Close()
	}
	var f serverFacts
	var err error
	if f.version, err = db.Version(ctx); err != nil {
		return f, err
	}
	if f.serverID, err = db.ServerID(ctx); err != nil {
		return f, err
	}
	var base sql.NullString
	if err := db.SQL().QueryRowContext(ctx, o.Flavor.BinlogBasenameQuery()).Scan(&base); err != nil {
		return f, fmt.Errorf("mysql: read binlog basename: %w", err)
	}
	if !base.Valid || base.String == "" {
		return f, errors.New("binary logging is off: a snapshot needs a binlog position (enable log-bin)")
	}
	f.binlogBase = base.String
	return f, nil
}

func addr(host string, port int) string {
	if host == "" {
		return ""
	}
	if port == 0 {
		port = 3306
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// toolFailure marks the error the pipe's writer closed it with, so the uploader's error can be
// told apart from the tool's.
type toolFailure struct{ err error }

func (t *toolFailure) Error() string { return t.err.Error() }
func (t *toolFailure) Unwrap() error { return t.err }

// Backup takes a hot backup with the flavor's tool and streams it, compressed and hashed, to
// o.Store under ObjectName, with bounded memory and no local copy. It returns the Record only
// when the object is complete and verified: the stream was whole (every xbstream chunk's
// CRC-32 checked, every file closed), the tool exited 0, the store holds exactly the bytes
// hashed, and the manifest beside it is written. On failure the object is removed (a failed
// Put leaves nothing under the name anyway) and nothing is returned to publish.
//
// The GTID in the record is the one the tool recorded in its binlog info file inside the
// stream (read from the stream as it passes, not asked of the server afterwards): the
// position of the backup's consistency point, which the restore sets.
func Backup(ctx context.Context, o BackupOptions) (Record, error) {
	if err := o.fill(); err != nil {
		return Record{}, fmt.Errorf("snapshot: backup: %w", err)
	}
	start := o.Now()
	id := o.ID
	if id == "" {
		id = NewID(start)
	}
	name := sealedName(ObjectName(o.Prefix, id, o.Compress), o.Key)
	log := o.Log.With("snapshot", id, "store", o.Store.String())
	fail := func(err error) (Record, error) {
		return Record{}, fmt.Errorf("snapshot: backup %s to %s: %w", id, o.Store.String(), err)
	}

	query := o.queryFacts
	if query == nil {
		query = func(ctx context.Context) (serverFacts, error) { return queryServerFacts(ctx, &o) }
	}
	facts, err := query(ctx)
	if err != nil {
		return fail(err)
	}
	log.Info("backup started", "tool", o.Tool, "object", name, "compress", o.Compress, "encrypted", o.Key != nil)

	var res streamResult
	err = withOptionFile(o.TempDir, mysql.ClientOptions{User: o.User, Password: o.Password, Socket: o.Socket, Host: o.Host, Port: o.Port},
		func(optionFile, tmp string) error {
			target := filepath.Join(tmp, "target")
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			args := append(o.Flavor.BackupArgs(optionFile, target), o.ExtraArgs...)
			res, err = streamUp(ctx, o, id, name, supervisor.Cmd{Name: o.Flavor.BackupTool(), Path: o.Tool, Args: args}, log)
			return err
		})
	if err != nil {
		return fail(err)
	}
	// From here on the object exists: remove it if it cannot be verified and recorded.
	cleanup := func(cause error) (Record, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := o.Store.Delete(dctx, name); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
			log.Warn("could not remove the unverified snapshot object", "object", name, "err", derr)
		}
		return fail(cause)
	}
	obj, err := o.Store.Stat(ctx, name)
	if err != nil {
		return cleanup(fmt.Errorf("verify upload: %w", err))
	}
	if obj.Size != res.size {
		return cleanup(fmt.Errorf("verify upload: the store holds %d bytes of %s, %d were sent (truncated upload)", obj.Size, name, res.size))
	}
	if o.VerifyReadback {
		if err := readBack(ctx, o.Store, name, res.size, res.sha256); err != nil {
			return cleanup(fmt.Errorf("verify upload: %w", err))
		}
	}
	info, err := binlogInfoFromStream(o.Flavor, res.xb)
	if err != nil {
		return cleanup(err)
	}
	rec := Record{
		ID: id, Backend: o.Backend, Store: o.Store.String(), Path: name,
		Size: res.size, SHA256: res.sha256, RawSize: res.raw, Compress: o.Compress,
		GTID: info.GTID, BinlogFile: info.File, BinlogPos: info.Pos,
		Flavor: o.Flavor.String(), ServerVersion: facts.version, ServerID: facts.serverID, Node: o.Node,
		Created: start.UTC(),
	}
	if o.Key != nil {
		rec.Encrypt, rec.KeyID = seal.Algorithm, o.Key.ID()
	}
	if v := backupInfoValue(o.Flavor, res.xb, "server_version"); v != "" {
		rec.ServerVersion = v
	}
	if facts.binlogBase != "" {
		// The binlog lives beside the server we just backed up (mysqlpilot runs next to it).
		p := filepath.Join(filepath.Dir(facts.binlogBase), info.File)
		if t, err := binlogCreated(p); err == nil {
			rec.BinlogCreated = t
		} else {
			log.Warn("cannot read when the backup's binlog was opened; point-in-time restore will look it up by name", "file", p, "err", err)
		}
	}
	rec.Completed = o.Now().UTC()
	if err := writeManifest(ctx, o.Store, o.Prefix, rec); err != nil {
		return cleanup(err)
	}
	d := rec.Completed.Sub(start)
	log.Info("backup complete", "object", name, "bytes", rec.Size, "raw_bytes", rec.RawSize,
		"ratio", fmt.Sprintf("%.2f", float64(rec.RawSize)/float64(max(rec.Size, 1))),
		"sha256", rec.SHA256, "gtid", rec.GTID, "binlog", fmt.Sprintf("%s:%d", rec.BinlogFile, rec.BinlogPos),
		"seconds", fmt.Sprintf("%.1f", d.Seconds()), "raw_mb_per_s", rate(rec.RawSize, d))
	return rec, nil
}

// streamResult is what the upload pipe measured.
type streamResult struct {
	size   int64 // stored (compressed) bytes
	raw    int64 // bytes of the tool's stream
	sha256 string
	xb     *xbReader
}

// streamUp runs the tool with its stdout piped through the xbstream checker, the compressor
// and the sealer (when a key is set) into a hasher and counter and on into o.Store.Put, all in lock step: the only
// buffers are the pipe's copy buffer, the compressor's window and the store's part buffer.
// When the tool fails the pipe is closed with its error, so Put fails and publishes nothing;
// when Put fails the tool is stopped.
func streamUp(ctx context.Context, o BackupOptions, id, name string, cmd supervisor.Cmd, log *slog.Logger) (streamResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	hc := newHashCounter(pw)
	enc, err := newEncoder(hc, o.Compress, o.Key, snapshotContext(id))
	if err != nil {
		return streamResult{}, err
	}
	raw := &counter{}
	xb := newXBReader(append(o.Flavor.BinlogInfoFiles(), o.Flavor.BackupInfoFiles()...)...)
	cmd.Stdout = io.MultiWriter(raw, xb, enc)

	toolDone := make(chan error, 1)
	go func() {
		err := o.Runner.Run(ctx, cmd)
		if err != nil {
			err = fmt.Errorf("%s: %w", cmd.Name, err)
		} else if err = xb.Close(); err != nil {
			err = fmt.Errorf("%s exited 0 but its stream is not whole: %w", cmd.Name, err)
		}
		if err != nil {
			pw.CloseWithError(&toolFailure{err})
			_ = enc.Close()
		} else {
			if err = enc.Close(); err != nil {
				err = fmt.Errorf("compress: %w", err)
			}
			pw.CloseWithError(err) // nil: the reader sees EOF
		}
		toolDone <- err
	}()
	stop := progress(log, "backup", o.Progress, raw.n.Load, hc.n.Load)
	_, putErr := o.Store.Put(ctx, name, pr)
	if putErr != nil {
		cancel(putErr)
		pr.CloseWithError(putErr)
	}
	toolErr := <-toolDone
	stop()

	var tf *toolFailure
	switch {
	case putErr == nil && toolErr == nil:
		return streamResult{size: hc.n.Load(), raw: raw.n.Load(), sha256: hc.sum(), xb: xb}, nil
	case ctx.Err() != nil && context.Cause(ctx) != putErr:
		return streamResult{}, context.Cause(ctx)
	case toolErr != nil && (putErr == nil || errors.As(putErr, &tf)):
		// The tool (or its stream) failed first; Put saw that error and stored nothing. A
		// store that completed Put anyway is cleaned up by the caller's size check failing
		// or here.
		if putErr == nil {
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_ = o.Store.Delete(dctx, name)
			dcancel()
		}
		return streamResult{}, toolErr
	default:
		return streamResult{}, fmt.Errorf("upload %s: %w (the backup tool was stopped)", name, putErr)
	}
}

// readBack reads name from store and checks its size and sha256.
func readBack(ctx context.Context, store storage.Store, name string, size int64, sum string) error {
	rc, err := store.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("read back %s: %w", name, err)
	}
	defer rc.Close()
	hr := newHashReader(rc)
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return fmt.Errorf("read back %s: %w", name, err)
	}
	if hr.n.Load() != size || hr.sum() != sum {
		return fmt.Errorf("read back %s: %d bytes with sha256 %s, sent %d bytes with sha256 %s", name, hr.n.Load(), hr.sum(), size, sum)
	}
	return nil
}

// writeManifest stores rec as JSON beside its object, so a store alone describes its
// snapshots (a restore can run without Consul).
func writeManifest(ctx context.Context, store storage.Store, prefix string, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if _, err := store.Put(ctx, ManifestName(prefix, rec.ID), bytes.NewReader(append(b, '\n'))); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}
