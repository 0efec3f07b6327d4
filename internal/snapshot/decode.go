package snapshot

import (
	"context"
	"fmt"
	"io"

	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

// Decode writes the backup tool's stream of the snapshot rec to w, as the tool wrote it
// (opened when sealed, decompressed): the uncompressed xbstream an operator feeds to
// `mbstream -x` by hand. It returns the bytes written. The whole stored object is read
// through sha256 and compared with the record at the end (ErrCorrupt on a mismatch), so w
// may have received bytes of a snapshot that then fails the check: discard them then.
//
// Restore does not use it (it feeds the unpack tool through a pipe and checks the object
// before preparing); the bench uses it for its expert reference, on the very snapshot a
// new node restores.
func Decode(ctx context.Context, store storage.Store, rec Record, key *seal.Key, allowUnsealed bool, w io.Writer) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("snapshot: decode %s: %w", rec.ID, err) }
	if err := rec.Validate(); err != nil {
		return fail(err)
	}
	if err := checkKey(rec, key, allowUnsealed); err != nil {
		return fail(err)
	}
	body, err := store.Get(ctx, rec.Path)
	if err != nil {
		return fail(fmt.Errorf("download %s: %w", rec.Path, err))
	}
	defer body.Close()
	hr := newHashReader(storage.ContextReader(ctx, body))
	src, release, err := newDecoder(hr, "snapshot "+rec.ID, rec.Compress, rec.Encrypt != "", key, snapshotContext(rec.ID), allowUnsealed)
	if err != nil {
		return fail(err)
	}
	n, copyErr := io.Copy(w, src)
	release()
	// What the decoder left (or all of it after a failure): the checksum covers the object.
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return n, fmt.Errorf("snapshot: decode %s: download %s: %w", rec.ID, rec.Path, ctxErr(ctx, err))
	}
	if size, sum := hr.n.Load(), hr.sum(); size != rec.Size || sum != rec.SHA256 {
		return n, fmt.Errorf("snapshot %s is corrupt: the stored object %s has %d bytes with sha256 %s, its record says %d bytes with sha256 %s: %w",
			rec.ID, rec.Path, size, sum, rec.Size, rec.SHA256, ErrCorrupt)
	}
	if copyErr != nil {
		return n, fmt.Errorf("snapshot: decode %s: %w", rec.ID, ctxErr(ctx, copyErr))
	}
	return n, nil
}
