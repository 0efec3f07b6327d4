package consul

import (
	"context"
	"errors"
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

// ErrNotHeld is returned by CASIfHeld when the session does not hold the lock.
var ErrNotHeld = errors.New("the session does not hold the lock")

// CASIfHeld is CAS (modifyIndex 0: only if key does not exist) guarded like PutIfHeld: one
// transaction checks that session holds lockKey and writes. It returns an error wrapping
// ErrNotHeld when the session does not hold the lock, and false with a nil error when only
// the check-and-set lost.
func (c *Client) CASIfHeld(ctx context.Context, key string, value []byte, modifyIndex uint64, lockKey, session string) (bool, error) {
	if session == "" {
		return false, fmt.Errorf("consul: cas %s: %w %s", key, ErrNotHeld, lockKey)
	}
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: lockKey, Session: session}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: value, Index: modifyIndex}},
	}
	ok, resp, _, err := c.api.Txn().Txn(ops, c.query(ctx))
	if err != nil {
		return false, fmt.Errorf("consul: cas %s while holding %s: %w", key, lockKey, err)
	}
	if !ok && resp != nil {
		for _, e := range resp.Errors {
			if e.OpIndex == 0 {
				return false, fmt.Errorf("consul: cas %s: %w %s", key, ErrNotHeld, lockKey)
			}
		}
	}
	return ok, nil
}
