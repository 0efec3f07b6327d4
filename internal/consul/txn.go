package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// PutIfHeld writes key only while session holds the lock on lockKey, checked by Consul in the
// same transaction: a writer that lost the lock (a deposed primary) cannot write. It reports
// whether the write happened; false with a nil error means the session does not hold the lock.
func (c *Client) PutIfHeld(ctx context.Context, key string, value []byte, lockKey, session string) (bool, error) {
	if session == "" {
		return false, nil
	}
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: lockKey, Session: session}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: value}},
	}
	ok, resp, _, err := c.api.Txn().Txn(ops, c.query(ctx))
	if err != nil {
		return false, fmt.Errorf("consul: put %s while holding %s: %w", key, lockKey, err)
	}
	if !ok && resp != nil && len(resp.Errors) > 0 {
		return false, nil // the check failed: the session does not hold the lock
	}
	return ok, nil
}
