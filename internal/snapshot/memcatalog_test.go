package snapshot_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

// memCatalog is an in-memory snapshot.Catalog for tests.
type memCatalog struct {
	mu       sync.Mutex
	recs     map[string]snapshot.Record
	latest   string
	progress *snapshot.BinlogProgress
	locked   bool
	vlocked  bool
	request  *snapshot.SnapshotRequest
}

func (c *memCatalog) RequestSnapshot(_ context.Context, r snapshot.SnapshotRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.request = &r
	return nil
}

func (c *memCatalog) SnapshotRequested(context.Context) (*snapshot.SnapshotRequest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.request, nil
}

func (c *memCatalog) ClearSnapshotRequest(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.request = nil
	return nil
}

func (c *memCatalog) Publish(_ context.Context, r snapshot.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recs == nil {
		c.recs = map[string]snapshot.Record{}
	}
	c.recs[r.ID] = r
	if r.ID > c.latest {
		c.latest = r.ID
	}
	return nil
}

func (c *memCatalog) Latest(context.Context) (*snapshot.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.recs[c.latest]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

func (c *memCatalog) List(context.Context) ([]snapshot.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []snapshot.Record
	for _, r := range c.recs {
		out = append(out, r)
	}
	snapshot.SortRecords(out)
	return out, nil
}

func (c *memCatalog) Delete(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.recs, id)
	if c.latest == id {
		c.latest = ""
		for k := range c.recs {
			if k > c.latest {
				c.latest = k
			}
		}
	}
	return nil
}

func (c *memCatalog) SetBinlogProgress(_ context.Context, p snapshot.BinlogProgress) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress = &p
	return nil
}

func (c *memCatalog) BinlogProgress(context.Context) (*snapshot.BinlogProgress, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress, nil
}

func (c *memCatalog) Lock(context.Context) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locked {
		return nil, snapshot.ErrLocked
	}
	c.locked = true
	return func() { c.mu.Lock(); c.locked = false; c.mu.Unlock() }, nil
}

func (c *memCatalog) SetVerified(_ context.Context, id string, at time.Time, verifyErr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.recs[id]
	if !ok {
		return fmt.Errorf("memcatalog: snapshot %s: %w", id, snapshot.ErrNoSnapshot)
	}
	r.VerifiedAt, r.VerifyError = at.UTC(), verifyErr
	c.recs[id] = r
	return nil
}

func (c *memCatalog) VerifyLock(context.Context) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vlocked {
		return nil, snapshot.ErrLocked
	}
	c.vlocked = true
	return func() { c.mu.Lock(); c.vlocked = false; c.mu.Unlock() }, nil
}
