package snapshot

import (
	"context"
	"database/sql"
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
)

// ArchiveOptions configure ArchiveBinlogs.
type ArchiveOptions struct {
	// Prefix is prepended to object names; optional, "" or ending in "/".
	Prefix string
	// Compress is "zstd" (default), "lz4" or "none".
	Compress string
	// Key, when not nil, seals each file after compression (snapshot.encrypt).
	Key *seal.Key
	// Node is recorded in the progress; optional.
	Node string
	// NoFlush skips FLUSH BINARY LOGS: only files the server already closed are archived.
	NoFlush bool
	// Last is the progress recorded by the previous run (Catalog.BinlogProgress), to detect
	// binlogs purged before they could be archived; optional.
	Last *BinlogProgress
	// Log; default discards.
	Log *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// ArchiveResult says what ArchiveBinlogs did.
type ArchiveResult struct {
	// Uploaded lists the objects written by this run, oldest first.
	Uploaded []string
	// Progress describes the newest closed binlog, now in the archive (uploaded by this run or
	// an earlier one); nil when the server has no closed binlog. Record it with
	// Catalog.SetBinlogProgress.
	Progress *BinlogProgress
	// Active is the binlog the server writes now (not archived).
	Active string
	// Gap, when not empty, says which binlogs were purged from the server before they were
	// archived: a point-in-time restore cannot cross it.
	Gap string
}

// ArchiveBinlogs uploads the server's closed binary logs to store, each once: it flushes the
// binary log (so the current one closes), lists the logs (all but the last are closed),
// and uploads every closed one whose archive name is not in the store yet (Stat first; Put is
// atomic, so an existing object is complete). A run that fails half way leaves complete
// objects only; the next run goes on where it stopped. The server must run next to mysqlpilot:
// the files are read from its binlog directory.
//
// Each upload is checked as it streams: the file must be a whole binary log that ends with a
// rotate event, or the Put fails and nothing is stored.
func ArchiveBinlogs(ctx context.Context, db *mysql.DB, store storage.Store, o ArchiveOptions) (ArchiveResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Compress == "" {
		o.Compress = CompressZstd
	}
	fail := func(err error) (ArchiveResult, error) {
		return ArchiveResult{}, fmt.Errorf("snapshot: archive binlogs to %s: %w", store, err)
	}
	if err := checkCompress(o.Compress); err != nil {
		return fail(err)
	}
	f := db.Flavor()
	var base sql.NullString
	if err := db.SQL().QueryRowContext(ctx, f.BinlogBasenameQuery()).Scan(&base); err != nil {
		return fail(fmt.Errorf("read binlog basename: %w", err))
	}
	if !base.Valid || base.String == "" {
		return fail(errors.New("binary logging is off"))
	}
	dir := filepath.Dir(base.String)
	serverID, err := db.ServerID(ctx)
	if err != nil {
		return fail(err)
	}
	if !o.NoFlush {
		if _, err := db.SQL().ExecContext(ctx, f.FlushBinlogsSQL()); err != nil {
			return fail(fmt.Errorf("%s: %w", f.FlushBinlogsSQL(), err))
		}
	}
	files, err := listBinlogs(ctx, db)
	if err != nil {
		return fail(err)
	}
	var res ArchiveResult
	if len(files) == 0 {
		return res, nil
	}
	res.Active = files[len(files)-1]
	closed := files[:len(files)-1]
	res.Gap = findGap(o.Last, serverID, dir, closed)
	if res.Gap != "" {
		o.Log.Error("binlog archive gap: binlogs were purged before they were archived; point-in-time restore cannot cross it; take a snapshot", "gap", res.Gap)
	}
	for i, file := range closed {
		path := filepath.Join(dir, file)
		created, err := binlogCreated(path)
		if errors.Is(err, os.ErrNotExist) {
			o.Log.Warn("binlog vanished before it was archived (purged)", "file", file)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("snapshot: archive binlog %s: %w", file, err)
		}
		name := sealedName(BinlogObjectName(o.Prefix, serverID, created, file, o.Compress), o.Key)
		var closedAt time.Time
		switch _, err := store.Stat(ctx, name); {
		case err == nil:
			// Archived by an earlier run.
		case errors.Is(err, storage.ErrNotFound):
			closedAt, err = uploadBinlog(ctx, store, name, path, o.Compress, o.Key, binlogContext(serverID, created, file))
			if err != nil {
				return res, fmt.Errorf("snapshot: archive binlog %s to %s: %w", file, name, err)
			}
			res.Uploaded = append(res.Uploaded, name)
			o.Log.Info("binlog archived", "file", file, "object", name)
		default:
			return res, fmt.Errorf("snapshot: archive binlog %s: %w", file, err)
		}
		if i == len(closed)-1 {
			p := &BinlogProgress{ServerID: serverID, Node: o.Node, File: file, Object: name, Created: created,
				Closed: closedAt, Updated: o.Now().UTC()}
			if next, err := binlogCreated(filepath.Join(dir, files[i+1])); err == nil {
				p.Closed = next
			}
			if q := f.BinlogStartPosQuery(); q != "" {
				p.StartGTID = queryOptional(ctx, db, q, file)
				p.EndGTID = queryOptional(ctx, db, q, files[i+1])
			}
			res.Progress = p
		}
	}
	return res, nil
}

// listBinlogs returns the server's binary log names, oldest first.
func listBinlogs(ctx context.Context, db *mysql.DB) ([]string, error) {
	q := db.Flavor().ListBinlogsSQL()
	rows, err := db.SQL().QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	var names []string
	for rows.Next() {
		vals := make([]any, len(cols))
		var name sql.NullString
		vals[0] = &name
		for i := 1; i < len(vals); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		names = append(names, name.String)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	return names, nil
}

// queryOptional runs a one-value query, returning "" on any error (for informational fields).
func queryOptional(ctx context.Context, db *mysql.DB, q string, args ...any) string {
	var v sql.NullString
	if err := db.SQL().QueryRowContext(ctx, q, args...).Scan(&v); err != nil {
		return ""
	}
	return v.String
}

// findGap compares the previous run's progress with the oldest closed binlog still on the
// server. When that one is not older than the last archived one and does not follow it
// directly, the files between were purged unarchived; when its number is lower although it
// was opened later, the numbering restarted (RESET MASTER, or a re-seeded datadir) and what
// followed the last archived file is gone.
func findGap(last *BinlogProgress, serverID uint32, dir string, closed []string) string {
	if last == nil || last.ServerID != serverID || len(closed) == 0 {
		return ""
	}
	first := closed[0]
	created, err := binlogCreated(filepath.Join(dir, first))
	if err != nil || created.Before(last.Created) {
		return ""
	}
	b1, n1, ok1 := binlogSeq(last.File)
	b2, n2, ok2 := binlogSeq(first)
	switch {
	case !ok1 || !ok2:
		return ""
	case b1 != b2:
		return fmt.Sprintf("the binlog basename changed from %s to %s", b1, b2)
	case n2 > n1+1:
		return fmt.Sprintf("after %s the oldest binlog on the server is %s", last.File, first)
	case n2 < n1 && created.After(last.Created):
		return fmt.Sprintf("the binlog numbering restarted after %s (RESET MASTER or a re-seeded datadir): the oldest binlog on the server is %s", last.File, first)
	}
	return ""
}

// uploadBinlog streams the file at path to name, compressed per compress and sealed under key
// (when not nil), checking that it is a whole binary log; it returns when the file was closed
// (its last event).
func uploadBinlog(ctx context.Context, store storage.Store, name, path, compress string, key *seal.Key, sealCtx string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	scan := &binlogScanner{}
	src := &checkedReader{r: io.TeeReader(f, scan), atEOF: func() error { _, err := scan.closed(); return err }}
	var body io.Reader = src
	if compress != CompressNone || key != nil {
		pr, pw := io.Pipe()
		go func() {
			enc, err := newEncoder(pw, compress, key, sealCtx)
			if err == nil {
				if _, err = io.Copy(enc, src); err != nil {
					// Fail the pipe before anything could end the stream cleanly (a closed
					// encoder writes a valid last chunk).
					pw.CloseWithError(err)
					return
				}
				err = enc.Close()
			}
			pw.CloseWithError(err)
		}()
		defer pr.Close()
		body = pr
	}
	if _, err := store.Put(ctx, name, body); err != nil {
		return time.Time{}, err
	}
	return scan.closed()
}

// checkedReader returns atEOF's error instead of io.EOF when it fails, so a consumer never
// sees a clean end of a stream that is not whole.
type checkedReader struct {
	r     io.Reader
	atEOF func() error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		if cerr := c.atEOF(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}
