package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

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
	// Only the primary publishes, checked in the same transaction as each write: a deposed
	// primary's snapshot (which may hold transactions nobody acknowledged) or one taken on a
	// quarantined node must never become what new replicas and re-seeds restore.
	session, err := c.leaderSession(ctx)
	if err != nil {
		return fmt.Errorf("snapshot catalog: publish %s: %w", rec.ID, err)
	}
	lock := c.prefix + keyLeader
	if ok, err := c.kv.PutIfHeld(ctx, c.prefix+keySnapshots+rec.ID, b, lock, session); err != nil || !ok {
		return fmt.Errorf("snapshot catalog: publish %s: %w", rec.ID, errors.Join(err, notPrimary(c.node, ok)))
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
		ok, err := c.kv.CASIfHeld(ctx, c.prefix+keyLatest, b, idx, lock, session)
		if err != nil {
			return fmt.Errorf("snapshot catalog: publish %s as latest: %w", rec.ID, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("snapshot catalog: publish %s as latest: %s kept changing", rec.ID, c.prefix+keyLatest)
}

// ErrNotPrimary is returned by Publish on a node that does not hold the leader lock.
var ErrNotPrimary = errors.New("only the primary (the leader lock's holder) publishes snapshots")

func notPrimary(node string, held bool) error {
	if held {
		return nil
	}
	return fmt.Errorf("%w: %s does not hold the lock any more", ErrNotPrimary, node)
}

// leaderSession returns the session holding the leader lock, when its record names this node.
func (c *Catalog) leaderSession(ctx context.Context) (string, error) {
	kv, _, err := c.kv.Get(ctx, c.prefix+keyLeader)
	if err != nil {
		return "", err
	}
	if kv == nil || kv.Session == "" {
		return "", fmt.Errorf("%w: the lock is free", ErrNotPrimary)
	}
	var rec struct {
		Node string `json:"node"`
	}
	if json.Unmarshal(kv.Value, &rec) != nil || rec.Node != c.node {
		return "", fmt.Errorf("%w: %s holds it, not %s", ErrNotPrimary, rec.Node, c.node)
	}
	return kv.Session, nil
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

// SetVerified records a restore drill's outcome on snapshots/<id> and, while it is the same
// snapshot, on snapshots/latest, each by check-and-set on the key's own index. Only the two
// drill fields change: the rest of each record is kept byte for byte (fields this version
// does not know included), and a key that is gone is never written again (a pruned
// snapshot stays pruned; CAS on a deleted key fails). Any node may write them: the drill
// runs on a replica, and a record's content (what a restore restores) is untouched.
func (c *Catalog) SetVerified(ctx context.Context, id string, at time.Time, verifyErr string) error {
	if err := snapshot.CheckID(id); err != nil {
		return fmt.Errorf("snapshot catalog: record the drill: %w", err)
	}
	found, err := c.patchDrill(ctx, keySnapshots+id, id, at, verifyErr)
	if err != nil {
		return fmt.Errorf("snapshot catalog: record the drill of %s: %w", id, err)
	}
	if !found {
		return fmt.Errorf("snapshot catalog: record the drill of %s: %w in the catalog (pruned meanwhile)", id, snapshot.ErrNoSnapshot)
	}
	if _, err := c.patchDrill(ctx, keyLatest, id, at, verifyErr); err != nil {
		return fmt.Errorf("snapshot catalog: record the drill of %s on %s: %w", id, c.prefix+keyLatest, err)
	}
	return nil
}

// patchDrill sets the drill fields of the record under key when it is snapshot id; found
// says whether it was.
func (c *Catalog) patchDrill(ctx context.Context, key, id string, at time.Time, verifyErr string) (found bool, err error) {
	atJSON, err := json.Marshal(at.UTC())
	if err != nil {
		return false, err
	}
	for range casRetries {
		kv, _, err := c.kv.Get(ctx, c.prefix+key)
		if err != nil || kv == nil {
			return false, err
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(kv.Value, &fields); err != nil {
			return false, fmt.Errorf("%s: %w", kv.Key, err)
		}
		var got string
		if json.Unmarshal(fields["id"], &got) != nil || got != id {
			return false, nil // latest moved on to a newer snapshot
		}
		fields["verifiedAt"] = atJSON
		delete(fields, "verifyError")
		if verifyErr != "" {
			fields["verifyError"], _ = json.Marshal(verifyErr)
		}
		b, err := json.Marshal(fields)
		if err != nil {
			return false, err
		}
		ok, err := c.kv.CAS(ctx, c.prefix+key, b, kv.ModifyIndex)
		if err != nil {
			return true, err
		}
		if ok {
			return true, nil
		}
	}
	return true, fmt.Errorf("%s kept changing", c.prefix+key)
}
