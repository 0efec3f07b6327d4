package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

// ErrLocked is wrapped by Catalog.Lock's error when another backup holds the lock.
var ErrLocked = errors.New("another backup is running")

// ErrNoSnapshot is wrapped by errors of operations that need a snapshot and find none.
var ErrNoSnapshot = errors.New("no snapshot")

// Catalog is where complete snapshots are recorded (Consul in production: DESIGN.md section 2;
// internal/cluster implements it). Records are published only after Backup returned them.
type Catalog interface {
	// Publish records rec as snapshots/<id> and, unless a newer one is there, as
	// snapshots/latest.
	Publish(ctx context.Context, rec Record) error
	// Latest returns the newest published snapshot, or nil when there is none.
	Latest(ctx context.Context) (*Record, error)
	// List returns every published snapshot, oldest first.
	List(ctx context.Context) ([]Record, error)
	// Delete forgets a snapshot (its object is the caller's business); latest moves to the
	// newest remaining one when it was this one. Deleting an unknown id is not an error.
	Delete(ctx context.Context, id string) error
	// SetBinlogProgress records how far the binlog archive has come (binlogs/last).
	SetBinlogProgress(ctx context.Context, p BinlogProgress) error
	// BinlogProgress returns the recorded progress, or nil when there is none.
	BinlogProgress(ctx context.Context) (*BinlogProgress, error)
	// Lock takes the cluster-wide backup lock (backup-lock), so one backup runs at a time. It
	// fails with ErrLocked when another node holds it. unlock releases it; it is safe to call
	// more than once.
	Lock(ctx context.Context) (unlock func(), err error)
	// RequestSnapshot asks the primary for a snapshot newer than the latest (snapshot-request):
	// a node that must re-seed and has nothing newer than what it restored from last time.
	RequestSnapshot(ctx context.Context, r SnapshotRequest) error
	// SnapshotRequested returns the pending request, or nil.
	SnapshotRequested(ctx context.Context) (*SnapshotRequest, error)
	// ClearSnapshotRequest removes the request (a snapshot newer than it is published).
	ClearSnapshotRequest(ctx context.Context) error
	// SetVerified records a restore drill's outcome on snapshots/<id>, and on
	// snapshots/latest while that is the same snapshot: VerifiedAt = at, VerifyError =
	// verifyErr ("" for a drill that passed). It never creates a record: a snapshot pruned
	// meanwhile is an error wrapping ErrNoSnapshot.
	SetVerified(ctx context.Context, id string, at time.Time, verifyErr string) error
	// VerifyLock takes the cluster-wide drill lock (verify-lock), so one node at a time runs
	// a restore drill. It fails with ErrLocked when another node holds it; unlock is safe to
	// call more than once.
	VerifyLock(ctx context.Context) (unlock func(), err error)
}

// SnapshotRequest is a node's request for a fresh snapshot.
type SnapshotRequest struct {
	Node      string    `json:"node"`
	Reason    string    `json:"reason"`
	After     string    `json:"after,omitempty"` // the latest snapshot's id when asked ("" for none)
	Requested time.Time `json:"requested"`
}

// FulfilledBy says whether latest (nil for none) is newer than what the request asked after.
func (r SnapshotRequest) FulfilledBy(latest *Record) bool {
	return latest != nil && latest.ID > r.After
}

// BinlogProgress is how far the binlog archive has come: the last binary log uploaded, by
// which server, and the GTID range it holds (empty when the flavor cannot tell).
type BinlogProgress struct {
	ServerID  uint32    `json:"server_id"`
	Node      string    `json:"node,omitempty"`
	File      string    `json:"file"`
	Object    string    `json:"object"`
	Created   time.Time `json:"created"`         // when the server opened File
	Closed    time.Time `json:"closed,omitzero"` // when it moved on to the next file
	StartGTID string    `json:"start_gtid,omitempty"`
	EndGTID   string    `json:"end_gtid,omitempty"`
	Updated   time.Time `json:"updated"`
}

// SortRecords sorts records oldest first (IDs sort by time).
func SortRecords(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int { return strings.Compare(a.ID, b.ID) })
}

// ListManifests reads the records stored beside the snapshots in a store (Backup writes one
// per complete snapshot), oldest first: the catalog of a store on its own, for restores that
// run without Consul. Manifests that cannot be read or parsed are returned as errors joined
// to the result, the readable ones still returned.
func ListManifests(ctx context.Context, store storage.Store, prefix string) ([]Record, error) {
	objs, err := store.List(ctx, prefix+snapshotsDir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: list %s%s in %s: %w", prefix, snapshotsDir, store, err)
	}
	var recs []Record
	var errs []error
	for _, o := range objs {
		if !strings.HasSuffix(o.Name, manifestExt) {
			continue
		}
		rec, err := readManifest(ctx, store, o.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, rec)
	}
	SortRecords(recs)
	return recs, errors.Join(errs...)
}

func readManifest(ctx context.Context, store storage.Store, name string) (Record, error) {
	rc, err := store.Get(ctx, name)
	if err != nil {
		return Record{}, fmt.Errorf("snapshot: read manifest %s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return Record{}, fmt.Errorf("snapshot: read manifest %s: %w", name, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("snapshot: parse manifest %s: %w", name, err)
	}
	if err := rec.Validate(); err != nil {
		return Record{}, fmt.Errorf("snapshot: manifest %s: %w", name, err)
	}
	return rec, nil
}

// StoreCatalog is a read-only Catalog view of the manifests in a store, for operator
// commands that run without Consul. Publish, Delete, SetBinlogProgress, Lock, SetVerified
// and VerifyLock are not supported.
type StoreCatalog struct {
	Store  storage.Store
	Prefix string
}

var errReadOnly = errors.New("snapshot: the store's manifests are a read-only catalog")

// Publish is not supported.
func (c StoreCatalog) Publish(context.Context, Record) error { return errReadOnly }

// Latest returns the newest manifest's record.
func (c StoreCatalog) Latest(ctx context.Context) (*Record, error) {
	recs, err := c.List(ctx)
	if len(recs) == 0 {
		return nil, err
	}
	r := recs[len(recs)-1]
	return &r, nil
}

// List returns the manifests' records, oldest first.
func (c StoreCatalog) List(ctx context.Context) ([]Record, error) {
	return ListManifests(ctx, c.Store, c.Prefix)
}

// Delete is not supported.
func (c StoreCatalog) Delete(context.Context, string) error { return errReadOnly }

// SetBinlogProgress is not supported.
func (c StoreCatalog) SetBinlogProgress(context.Context, BinlogProgress) error { return errReadOnly }

// BinlogProgress returns nil: the store does not record it.
func (c StoreCatalog) BinlogProgress(context.Context) (*BinlogProgress, error) { return nil, nil }

// Lock is not supported.
func (c StoreCatalog) Lock(context.Context) (func(), error) { return nil, errReadOnly }

// RequestSnapshot is refused: the catalog is read-only.
func (c StoreCatalog) RequestSnapshot(context.Context, SnapshotRequest) error { return errReadOnly }

// SnapshotRequested is always nil: a store holds no requests.
func (c StoreCatalog) SnapshotRequested(context.Context) (*SnapshotRequest, error) { return nil, nil }

// ClearSnapshotRequest is refused: the catalog is read-only.
func (c StoreCatalog) ClearSnapshotRequest(context.Context) error { return errReadOnly }

// SetVerified is refused: the catalog is read-only (manifests carry no drill results).
func (c StoreCatalog) SetVerified(context.Context, string, time.Time, string) error {
	return errReadOnly
}

// VerifyLock is not supported.
func (c StoreCatalog) VerifyLock(context.Context) (func(), error) { return nil, errReadOnly }
