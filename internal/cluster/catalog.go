package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	keyVerifyLock  = "verify-lock"
	keyRequest     = "snapshot-request"
)

// KV is what Catalog needs of Consul; *consul.Client implements it.
type KV interface {
	consul.Sessions
	Get(ctx context.Context, key string) (*consul.KV, uint64, error)
	List(ctx context.Context, prefix string) ([]consul.KV, uint64, error)
	Put(ctx context.Context, key string, value []byte) error
	CAS(ctx context.Context, key string, value []byte, modifyIndex uint64) (bool, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, modifyIndex uint64) (bool, error)
	PutIfHeld(ctx context.Context, key string, value []byte, lockKey, session string) (bool, error)
	CASIfHeld(ctx context.Context, key string, value []byte, modifyIndex uint64, lockKey, session string) (bool, error)
}

var _ KV = (*consul.Client)(nil)

// Catalog implements snapshot.Catalog in Consul's KV store:
//
//	<prefix>snapshots/<id>     one record per complete snapshot
//	<prefix>snapshots/latest   the newest record (written with check-and-set: never older)
//	<prefix>binlogs/last       the binlog archive's progress
//	<prefix>backup-lock        held by the session of the node taking a backup
//	<prefix>verify-lock        held by the session of the replica running a restore drill
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
