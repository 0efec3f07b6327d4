package cluster

import (
	"context"

	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

func (c *Catalog) SetBinlogProgress(ctx context.Context, p snapshot.BinlogProgress) error {
	return c.putJSON(ctx, keyBinlogsLast, p, "record binlog progress")
}

func (c *Catalog) BinlogProgress(ctx context.Context) (*snapshot.BinlogProgress, error) {
	return getJSON[snapshot.BinlogProgress](ctx, c, keyBinlogsLast, "binlog progress")
}
