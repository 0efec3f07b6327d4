package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
)

// DefaultProgressInterval is how often a running backup or restore logs its progress.
const DefaultProgressInterval = 5 * time.Second

// zstd settings, measured on a 1.2 GB mariabackup stream of InnoDB data on two cores:
// level "fastest" compresses at ~170 MB/s on one goroutine and ~225 MB/s with the
// encoder's asynchronous stage (concurrency 2), about as fast as mariabackup streams, with the
// same ratio as "default" (2.5 against 2.4; InnoDB pages hold little that longer matches
// find), which manages only 65-95 MB/s. A 1 MiB window keeps the encoder's memory small.
// The frames of newParallelZstd (zstdpar.go) are compressed zstdConcurrency at a time.
const (
	zstdLevel       = zstd.SpeedFastest
	zstdConcurrency = 2
	zstdWindow      = 1 << 20
)

func newZstdReader(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(64<<20))
}

// lz4 settings: level Fast, one block in flight per core (lz4Concurrency goroutines), 1 MiB
// blocks (the encoder holds about two blocks per goroutine), a content checksum (xxh32) like
// zstd's CRC so a damaged object fails the decompressor as well as the sha256.
const (
	lz4Concurrency = 2
	lz4Block       = lz4.Block1Mb
)

func newLZ4Writer(w io.Writer) (*lz4.Writer, error) {
	z := lz4.NewWriter(w)
	err := z.Apply(lz4.CompressionLevelOption(lz4.Fast), lz4.ConcurrencyOption(lz4Concurrency),
		lz4.BlockSizeOption(lz4Block), lz4.ChecksumOption(true))
	return z, err
}

// newLZ4Reader decompresses on the reading goroutine: decompression runs at GB/s, far ahead
// of mbstream and the disk.
func newLZ4Reader(r io.Reader) *lz4.Reader { return lz4.NewReader(r) }

// encoder compresses (per compress) and then seals (when key is not nil, bound to context:
// see snapshotContext and binlogContext) what is written to it onto w. Close flushes both
// stages, in that order; it does not close w.
type encoder struct {
	io.Writer
	stages []io.Closer // innermost (the compressor) first
}

func newEncoder(w io.Writer, compress string, key *seal.Key, context string) (*encoder, error) {
	e := &encoder{Writer: w}
	if key != nil {
		sw, err := seal.NewWriter(w, key, context)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		e.Writer, e.stages = sw, []io.Closer{sw}
	}
	var z io.WriteCloser
	var err error
	switch compress {
	case CompressZstd:
		z, err = newParallelZstd(e.Writer)
	case CompressLZ4:
		z, err = newLZ4Writer(e.Writer)
	case CompressNone:
		return e, nil
	default:
		return nil, checkCompress(compress)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", compress, err)
	}
	e.Writer, e.stages = z, append([]io.Closer{z}, e.stages...)
	return e, nil
}

func (e *encoder) Close() error {
	var first error
	for _, c := range e.stages {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// newDecoder opens (when sealed) and decompresses (per compress) r; release frees the
// decompressor. A sealed stream needs key: without it, or under another key, it fails here,
// before any data is read past the header. With a key, an unsealed stream is refused unless
// allowUnsealed (snapshot.encrypt.allowUnsealed): whoever can write to the store could
// otherwise plant one. what names the object in errors.
func newDecoder(r io.Reader, what, compress string, sealed bool, key *seal.Key, context string, allowUnsealed bool) (_ io.Reader, release func(), err error) {
	release = func() {}
	if err := checkSealed(what, sealed, key, allowUnsealed); err != nil {
		return nil, release, err
	}
	if sealed {
		sr, err := seal.NewReader(r, key, context)
		if err != nil {
			return nil, release, fmt.Errorf("%s: %w", what, err)
		}
		r = sr
	}
	switch compress {
	case CompressZstd:
		dec, err := newZstdReader(r)
		if err != nil {
			return nil, release, fmt.Errorf("zstd: %w", err)
		}
		r, release = dec, dec.Close
	case CompressLZ4:
		r = newLZ4Reader(r)
	case CompressNone:
	default:
		return nil, release, fmt.Errorf("%s: %w", what, checkCompress(compress))
	}
	return r, release, nil
}

// checkSealed refuses a sealed object without a key, and an unsealed one when a key is set
// (unless allowUnsealed).
func checkSealed(what string, sealed bool, key *seal.Key, allowUnsealed bool) error {
	switch {
	case sealed && key == nil:
		return fmt.Errorf("%s is encrypted: set snapshot.encrypt.keyFile or snapshot.encrypt.key to the key it was sealed with", what)
	case !sealed && key != nil && !allowUnsealed:
		return fmt.Errorf("%s is not sealed, and snapshot.encrypt is set: refusing an object anyone with write access to the store could have planted (set snapshot.encrypt.allowUnsealed while a cluster moves to encryption, until its snapshots are sealed)", what)
	}
	return nil
}

// snapshotContext binds a sealed snapshot stream to its id.
func snapshotContext(id string) string { return "snapshot:" + id }

// binlogContext binds a sealed binlog to the server, time and file its name says.
func binlogContext(serverID uint32, created time.Time, file string) string {
	return fmt.Sprintf("binlog:%d/%s/%s", serverID, created.UTC().Format(binlogCreatedLayout), file)
}

// hashCounter hashes (sha256) and counts what passes through it to w.
type hashCounter struct {
	w io.Writer
	h hash.Hash
	n atomic.Int64
}

func newHashCounter(w io.Writer) *hashCounter { return &hashCounter{w: w, h: sha256.New()} }

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n.Add(int64(n))
	return n, err
}

func (c *hashCounter) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// hashReader hashes (sha256) and counts what is read through it.
type hashReader struct {
	io.Reader
	*hashCounter
}

func newHashReader(r io.Reader) *hashReader {
	hc := newHashCounter(io.Discard)
	return &hashReader{Reader: io.TeeReader(r, hc), hashCounter: hc}
}

// counter counts bytes written to it.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// progress logs "what" every interval with the byte count read from n and the rate (and the
// count read from stored, when not nil: the compressed bytes), until the returned stop is
// called; stop logs nothing.
func progress(log *slog.Logger, what string, interval time.Duration, n, stored func() int64) (stop func()) {
	if interval <= 0 {
		interval = DefaultProgressInterval
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				cur := n()
				attrs := []any{
					"bytes", cur, "mb", mib(cur),
					"mb_per_s", rate(cur-last, now.Sub(lastAt)),
					"avg_mb_per_s", rate(cur, now.Sub(start)),
					"elapsed", now.Sub(start).Round(time.Second).String(),
				}
				if stored != nil {
					attrs = append(attrs, "stored_bytes", stored())
				}
				log.Info(what+" progress", attrs...)
				last, lastAt = cur, now
			}
		}
	}()
	return func() { close(done); <-finished }
}

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// rate formats n bytes over d in MiB/s.
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.1f", float64(n)/(1<<20)/d.Seconds())
}

// withOptionFile writes a [client] option file with the connection settings in a private
// temporary directory (0700) under dir ("" is the system's), calls fn with its path and the
// directory, and removes both. The password never reaches argv.
func withOptionFile(dir string, o mysql.ClientOptions, fn func(optionFile, tmp string) error) error {
	tmp, err := os.MkdirTemp(dir, "mysqlpilot-")
	if err != nil {
		return fmt.Errorf("create private temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o700); err != nil {
		return fmt.Errorf("create private temporary directory: %w", err)
	}
	path := filepath.Join(tmp, "client.cnf")
	if err := mysql.WriteClientOptionFile(path, o); err != nil {
		return err
	}
	return fn(path, tmp)
}

// ctxErr returns ctx's cause when it is done, else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}
