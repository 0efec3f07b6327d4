package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

// PruneOptions configure Prune.
type PruneOptions struct {
	// Prefix is prepended to object names; optional, "" or ending in "/".
	Prefix string
	// ClockSkew is the margin kept between a binlog object's upload time (the store's clock)
	// and the oldest kept snapshot's start (the node's clock); default 1h.
	ClockSkew time.Duration
	// Log; default discards.
	Log *slog.Logger
}

// PruneResult lists what Prune removed.
type PruneResult struct {
	Snapshots []string // ids removed from the catalog and the store
	Objects   []string // objects deleted (streams, manifests, orphans, binlogs)
}

// Prune keeps the newest keep snapshots (at least one) and the archived binlogs needed to roll
// forward from the oldest kept one; it deletes the rest from the catalog first (so nobody picks
// a snapshot whose object is going) and then from the store. It also deletes orphaned snapshot
// objects older than the oldest kept snapshot (uploads whose record was never published).
//
// A binlog is needed unless it is entirely older than the oldest kept snapshot: for the
// snapshot's own server, every file before the one holding the snapshot's position; for other
// servers (earlier primaries), every file the store received more than ClockSkew before the
// snapshot started.
func Prune(ctx context.Context, store storage.Store, cat Catalog, keep int, o PruneOptions) (PruneResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = time.Hour
	}
	keep = max(keep, 1)
	var res PruneResult
	recs, err := cat.List(ctx)
	if err != nil {
		return res, fmt.Errorf("snapshot: prune: %w", err)
	}
	if len(recs) == 0 {
		return res, nil
	}
	SortRecords(recs)
	old, kept := recs[:max(0, len(recs)-keep)], recs[max(0, len(recs)-keep):]
	oldest := kept[0]
	var errs []error
	del := func(name string) {
		if err := store.Delete(ctx, name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, err)
			return
		} else if err == nil {
			res.Objects = append(res.Objects, name)
		}
	}
	for _, r := range old {
		if err := cat.Delete(ctx, r.ID); err != nil {
			errs = append(errs, err)
			continue // keep the object of a record we could not forget
		}
		res.Snapshots = append(res.Snapshots, r.ID)
		del(r.Path)
		del(ManifestName(o.Prefix, r.ID))
		o.Log.Info("snapshot pruned", "snapshot", r.ID, "object", r.Path)
	}

	// Orphans: snapshot objects older than the oldest kept one that no kept record names.
	objs, err := store.List(ctx, o.Prefix+snapshotsDir)
	if err != nil {
		errs = append(errs, err)
	}
	keptPaths := map[string]bool{}
	for _, r := range kept {
		keptPaths[r.Path] = true
		keptPaths[ManifestName(o.Prefix, r.ID)] = true
	}
	for _, obj := range objs {
		id, ok := snapshotObjectID(o.Prefix, obj.Name)
		if !ok || keptPaths[obj.Name] || id >= oldest.ID {
			continue
		}
		del(obj.Name)
		o.Log.Info("orphaned snapshot object pruned", "object", obj.Name)
	}

	// Binlogs.
	bins, err := listArchive(ctx, store, o.Prefix, 0, false)
	if err != nil {
		errs = append(errs, err)
	}
	start, found := findStartBinlog(bins, oldest)
	for _, b := range bins {
		needed := true
		switch {
		case found && b.ServerID == oldest.ServerID:
			needed = !binlogBefore(b, start)
		default:
			needed = !b.ModTime.Before(oldest.Created.Add(-o.ClockSkew))
		}
		if !needed {
			del(b.Object)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("snapshot: prune: %w", err)
	}
	return res, nil
}

// listArchive lists archived binlogs (of one server when serverID > 0 and only is set),
// ordered by server, then the time each was opened, then name.
func listArchive(ctx context.Context, store storage.Store, prefix string, serverID uint32, only bool) ([]ArchivedBinlog, error) {
	p := prefix + binlogsDir
	if only {
		p = fmt.Sprintf("%s%d/", p, serverID)
	}
	objs, err := store.List(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", p, store, err)
	}
	var out []ArchivedBinlog
	for _, obj := range objs {
		b, ok := parseBinlogObject(prefix, obj.Name)
		if !ok {
			continue
		}
		b.Size, b.ModTime = obj.Size, obj.ModTime
		out = append(out, b)
	}
	slices.SortFunc(out, compareBinlogs)
	return out, nil
}

func compareBinlogs(a, b ArchivedBinlog) int {
	return cmp.Or(cmp.Compare(a.ServerID, b.ServerID), a.Created.Compare(b.Created), compareBinlogNames(a.File, b.File))
}

// compareBinlogNames orders "x.000009" before "x.000010" and "x.999999" before "x.1000000".
func compareBinlogNames(a, b string) int {
	ba, na, oka := binlogSeq(a)
	bb, nb, okb := binlogSeq(b)
	if oka && okb && ba == bb {
		return cmp.Compare(na, nb)
	}
	return strings.Compare(a, b)
}

// binlogBefore reports whether a was written before b (same server).
func binlogBefore(a, b ArchivedBinlog) bool { return compareBinlogs(a, b) < 0 }

// findStartBinlog finds the archived binlog holding rec's position: the file rec names,
// opened when rec says (or, when rec does not know, the newest of that name opened before
// the snapshot completed).
func findStartBinlog(bins []ArchivedBinlog, rec Record) (ArchivedBinlog, bool) {
	var best ArchivedBinlog
	found := false
	for _, b := range bins {
		if b.ServerID != rec.ServerID || b.File != rec.BinlogFile {
			continue
		}
		if !rec.BinlogCreated.IsZero() {
			if b.Created.Equal(rec.BinlogCreated) {
				return b, true
			}
			continue
		}
		if !rec.Completed.IsZero() && b.Created.After(rec.Completed) {
			continue
		}
		if !found || b.Created.After(best.Created) {
			best, found = b, true
		}
	}
	return best, found
}
