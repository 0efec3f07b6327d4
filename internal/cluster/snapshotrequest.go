package cluster

import (
	"context"
	"fmt"

	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

func (c *Catalog) RequestSnapshot(ctx context.Context, r snapshot.SnapshotRequest) error {
	return c.putJSON(ctx, keyRequest, r, "request a snapshot")
}

func (c *Catalog) SnapshotRequested(ctx context.Context) (*snapshot.SnapshotRequest, error) {
	return getJSON[snapshot.SnapshotRequest](ctx, c, keyRequest, "snapshot request")
}

func (c *Catalog) ClearSnapshotRequest(ctx context.Context) error {
	if err := c.kv.Delete(ctx, c.prefix+keyRequest); err != nil {
		return fmt.Errorf("snapshot catalog: clear the snapshot request: %w", err)
	}
	return nil
}
