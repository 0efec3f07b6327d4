package cluster

import (
	"context"
	"encoding/json"
	"fmt"

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
