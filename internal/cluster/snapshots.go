package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

// Snapshot keys under the cluster prefix (DESIGN.md section 2). Values are JSON without
// secrets.
const (
	keySnapshots   = "snapshots/"
	keyLatest      = "snapshots/latest"
	keyBinlogsLast = "binlogs/last"
	keyBackupLock  = "backup-lock"
	keyRequest     = "snapshot-request"
)

// backupLockTTL is the TTL of the lease holding the backup lock, renewed every third of it
// while the backup runs; a node that dies mid-backup frees the lock within twice this.
const backupLockTTL = 15 * time.Second

// KV is what Catalog needs of Consul; *consul.Client implements it.
type KV interface {
	consul.Sessions
	Get(ctx context.Context, key string) (*consul.KV, uint64, error)
	List(ctx context.Context, prefix string) ([]consul.KV, uint64, error)
	Put(ctx context.Context, key string, value []byte) error
	CAS(ctx context.Context, key string, value []byte, modifyIndex uint64) (bool, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, modifyIndex uint64) (bool, error)
}

var _ KV = (*consul.Client)(nil)

// Catalog implements snapshot.Catalog in Consul's KV store:
//
//	<prefix>snapshots/<id>     one record per complete snapshot
//	<prefix>snapshots/latest   the newest record (written with check-and-set: never older)
//	<prefix>binlogs/last       the binlog archive's progress
//	<prefix>backup-lock        held by the session of the node taking a backup
type Catalog struct {
	kv     KV
	prefix string
	node   string
	log    *slog.Logger
	now    func() time.Time
}

var _ snapshot.Catalog = (*Catalog)(nil)

// NewCatalog returns the snapshot catalog under prefix; node names this node in the backup lock.
func NewCatalog(kv KV, prefix, node string, log *slog.Logger) *Catalog {
	return &Catalog{kv: kv, prefix: prefix, node: node, log: log, now: time.Now}
}

// casRetries bounds the check-and-set loops on snapshots/latest.
const casRetries = 10

func (c *Catalog) Publish(ctx context.Context, rec snapshot.Record) error {
	if err := rec.Validate(); err != nil {
		return fmt.Errorf("snapshot catalog: publish: %w", err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := c.kv.Put(ctx, c.prefix+keySnapshots+rec.ID, b); err != nil {
		return fmt.Errorf("snapshot catalog: publish %s: %w", rec.ID, err)
	}
	for range casRetries {
		kv, _, err := c.kv.Get(ctx, c.prefix+keyLatest)
		if err != nil {
			return fmt.Errorf("snapshot catalog: publish %s as latest: %w", rec.ID, err)
		}
		var idx uint64
		if kv != nil {
			var cur snapshot.Record
			if json.Unmarshal(kv.Value, &cur) == nil && cur.ID >= rec.ID {
				return nil // a newer snapshot is latest already
			}
			idx = kv.ModifyIndex
		}
		ok, err := c.kv.CAS(ctx, c.prefix+keyLatest, b, idx)
		if err != nil {
			return fmt.Errorf("snapshot catalog: publish %s as latest: %w", rec.ID, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("snapshot catalog: publish %s as latest: %s kept changing", rec.ID, c.prefix+keyLatest)
}

func (c *Catalog) Latest(ctx context.Context) (*snapshot.Record, error) {
	return getJSON[snapshot.Record](ctx, c, keyLatest, "latest")
}

func (c *Catalog) List(ctx context.Context) ([]snapshot.Record, error) {
	kvs, _, err := c.kv.List(ctx, c.prefix+keySnapshots)
	if err != nil {
		return nil, fmt.Errorf("snapshot catalog: list: %w", err)
	}
	var recs []snapshot.Record
	for _, kv := range kvs {
		if kv.Key == c.prefix+keyLatest {
			continue
		}
		var rec snapshot.Record
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			c.log.Warn("unreadable snapshot record in Consul", "key", kv.Key, "err", err)
			continue
		}
		recs = append(recs, rec)
	}
	snapshot.SortRecords(recs)
	return recs, nil
}

func (c *Catalog) Delete(ctx context.Context, id string) error {
	if err := snapshot.CheckID(id); err != nil {
		return fmt.Errorf("snapshot catalog: delete: %w", err)
	}
	if err := c.kv.Delete(ctx, c.prefix+keySnapshots+id); err != nil {
		return fmt.Errorf("snapshot catalog: delete %s: %w", id, err)
	}
	for range casRetries {
		kv, _, err := c.kv.Get(ctx, c.prefix+keyLatest)
		if err != nil {
			return fmt.Errorf("snapshot catalog: delete %s: %w", id, err)
		}
		if kv == nil {
			return nil
		}
		var cur snapshot.Record
		if json.Unmarshal(kv.Value, &cur) == nil && cur.ID != id {
			return nil
		}
		recs, err := c.List(ctx)
		if err != nil {
			return fmt.Errorf("snapshot catalog: delete %s: %w", id, err)
		}
		var ok bool
		if len(recs) == 0 {
			ok, err = c.kv.DeleteCAS(ctx, c.prefix+keyLatest, kv.ModifyIndex)
		} else {
			b, _ := json.Marshal(recs[len(recs)-1])
			ok, err = c.kv.CAS(ctx, c.prefix+keyLatest, b, kv.ModifyIndex)
		}
		if err != nil {
			return fmt.Errorf("snapshot catalog: delete %s: move latest: %w", id, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("snapshot catalog: delete %s: %s kept changing", id, c.prefix+keyLatest)
}

func (c *Catalog) SetBinlogProgress(ctx context.Context, p snapshot.BinlogProgress) error {
	return c.putJSON(ctx, keyBinlogsLast, p, "record binlog progress")
}

func (c *Catalog) BinlogProgress(ctx context.Context) (*snapshot.BinlogProgress, error) {
	return getJSON[snapshot.BinlogProgress](ctx, c, keyBinlogsLast, "binlog progress")
}

func (c *Catalog) RequestSnapshot(ctx context.Context, r snapshot.SnapshotRequest) error {
	return c.putJSON(ctx, keyRequest, r, "request a snapshot")
}

func (c *Catalog) SnapshotRequested(ctx context.Context) (*snapshot.SnapshotRequest, error) {
	return getJSON[snapshot.SnapshotRequest](ctx, c, keyRequest, "snapshot request")
}

// putJSON writes v as JSON under the prefix; what names the operation in errors.
func (c *Catalog) putJSON(ctx context.Context, key string, v any, what string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := c.kv.Put(ctx, c.prefix+key, b); err != nil {
		return fmt.Errorf("snapshot catalog: %s: %w", what, err)
	}
	return nil
}

// getJSON reads the JSON value under the prefix, or nil when the key is absent.
func getJSON[T any](ctx context.Context, c *Catalog, key, what string) (*T, error) {
	kv, _, err := c.kv.Get(ctx, c.prefix+key)
	if err != nil {
		return nil, fmt.Errorf("snapshot catalog: %s: %w", what, err)
	}
	if kv == nil {
		return nil, nil
	}
	var v T
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return nil, fmt.Errorf("snapshot catalog: %s: %w", kv.Key, err)
	}
	return &v, nil
}

func (c *Catalog) ClearSnapshotRequest(ctx context.Context) error {
	if err := c.kv.Delete(ctx, c.prefix+keyRequest); err != nil {
		return fmt.Errorf("snapshot catalog: clear the snapshot request: %w", err)
	}
	return nil
}

// lockValue is the backup lock's value.
type lockValue struct {
	Node    string    `json:"node"`
	Started time.Time `json:"started"`
}

// Lock takes <prefix>backup-lock with a lease of its own (TTL backupLockTTL, renewed until
// unlock; no lock delay; bound to the node's serfHealth, so a dead node frees it).
func (c *Catalog) Lock(ctx context.Context) (func(), error) {
	key := c.prefix + keyBackupLock
	lease, err := consul.NewLease(ctx, c.kv, consul.SessionOptions{Name: "mysqlpilot backup " + c.node, TTL: backupLockTTL,
		Behavior: consul.BehaviorRelease})
	if err != nil {
		return nil, fmt.Errorf("snapshot catalog: backup lock: %w", err)
	}
	destroy := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := lease.Destroy(dctx); err != nil {
			c.log.Warn("could not destroy the backup lock's session; it expires by itself", "session", lease.ID, "err", err)
		}
	}
	val, _ := json.Marshal(lockValue{Node: c.node, Started: c.now().UTC()})
	ok, err := lease.Acquire(ctx, key, val)
	if err != nil || !ok {
		destroy()
		if err != nil {
			return nil, fmt.Errorf("snapshot catalog: backup lock: %w", err)
		}
		holder := "another node"
		if kv, _, gerr := c.kv.Get(ctx, key); gerr == nil && kv != nil {
			var v lockValue
			if json.Unmarshal(kv.Value, &v) == nil && v.Node != "" {
				holder = fmt.Sprintf("%s since %s", v.Node, v.Started.Format(time.RFC3339))
			}
		}
		return nil, fmt.Errorf("snapshot catalog: %s is held by %s: %w", key, holder, snapshot.ErrLocked)
	}
	stopRenew := lease.KeepAlive(func(err error) {
		if errors.Is(err, consul.ErrSessionGone) {
			c.log.Warn("backup lock lost: another backup may start", "err", err)
			return
		}
		c.log.Warn("could not renew the backup lock's session", "err", err)
	})
	return sync.OnceFunc(func() {
		stopRenew()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := lease.Release(rctx, key, nil); err != nil {
			c.log.Warn("could not release the backup lock; it goes with its session", "err", err)
		}
		destroy()
	}), nil
}
