package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

// backupLockTTL is the TTL of the lease holding the backup lock, renewed every third of it
// while the backup runs; a node that dies mid-backup frees the lock within twice this.
const backupLockTTL = 15 * time.Second

// lockValue is the backup lock's value.
type lockValue struct {
	Node    string    `json:"node"`
	Started time.Time `json:"started"`
}

// Lock takes <prefix>backup-lock with a lease of its own (TTL backupLockTTL, renewed until
// unlock; no lock delay; bound to the node's serfHealth, so a dead node frees it).
func (c *Catalog) Lock(ctx context.Context) (func(), error) {
	return c.lock(ctx, keyBackupLock, "backup")
}

// VerifyLock takes <prefix>verify-lock, the restore drill's lock, the same way. It is not the
// backup lock: a drill lasts as long as a restore, and must never hold back the primary's
// backups (nor the fresh snapshot a re-seeding node asks for).
func (c *Catalog) VerifyLock(ctx context.Context) (func(), error) {
	return c.lock(ctx, keyVerifyLock, "restore drill")
}

// lock takes the lock key under the prefix for what ("backup", "restore drill").
func (c *Catalog) lock(ctx context.Context, lockKey, what string) (func(), error) {
	key := c.prefix + lockKey
	lease, err := consul.NewLease(ctx, c.kv, consul.SessionOptions{Name: "mysqlpilot " + what + " " + c.node, TTL: backupLockTTL,
		Behavior: consul.BehaviorRelease})
	if err != nil {
		return nil, fmt.Errorf("snapshot catalog: %s lock: %w", what, err)
	}
	destroy := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := lease.Destroy(dctx); err != nil {
			c.log.Warn("could not destroy the "+what+" lock's session; it expires by itself", "session", lease.ID, "err", err)
		}
	}
	val, _ := json.Marshal(lockValue{Node: c.node, Started: c.now().UTC()})
	ok, err := lease.Acquire(ctx, key, val)
	if err != nil || !ok {
		destroy()
		if err != nil {
			return nil, fmt.Errorf("snapshot catalog: %s lock: %w", what, err)
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
			c.log.Warn(what+" lock lost: another "+what+" may start", "err", err)
			return
		}
		c.log.Warn("could not renew the "+what+" lock's session", "err", err)
	})
	return sync.OnceFunc(func() {
		stopRenew()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := lease.Release(rctx, key, nil); err != nil {
			c.log.Warn("could not release the "+what+" lock; it goes with its session", "err", err)
		}
		destroy()
	}), nil
}
