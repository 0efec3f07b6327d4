package consul

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"
)

// KV is one key and its value.
type KV struct {
	Key         string
	Value       []byte
	Session     string // ID of the session holding the key's lock, or ""
	ModifyIndex uint64 // for CAS and DeleteCAS
	Flags       uint64 // opaque to Consul
}

func fromPair(p *api.KVPair) *KV {
	if p == nil {
		return nil
	}
	return &KV{
		Key:         p.Key,
		Value:       slices.Clone(p.Value),
		Session:     p.Session,
		ModifyIndex: p.ModifyIndex,
		Flags:       p.Flags,
	}
}

func fromPairs(ps api.KVPairs) []KV {
	out := make([]KV, 0, len(ps))
	for _, p := range ps {
		if kv := fromPair(p); kv != nil {
			out = append(out, *kv)
		}
	}
	return out
}

// Get reads a key. It returns nil, without error, when the key is absent, and the query's
// index either way.
func (c *Client) Get(ctx context.Context, key string) (*KV, uint64, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	p, meta, err := c.api.KV().Get(key, c.query(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("consul: get %s: %w", key, err)
	}
	return fromPair(p), meta.LastIndex, nil
}

// List reads every key under prefix, sorted by key, and the query's index.
func (c *Client) List(ctx context.Context, prefix string) ([]KV, uint64, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	type listed struct {
		kvs   []KV
		index uint64
	}
	// Hedged (see hedge): the agent's answer and a server's are the same read. A fallback's
	// must name a Raft index and hold a key: a 404 (from something that is not Consul, or a
	// prefix another cluster does not have) reads as "no keys" in consul/api, and an empty
	// view would say the cluster holds no lock, no members, no sync set.
	l, _, err := hedge(ctx, c, func(ctx context.Context, cl *api.Client, via, dc string) (listed, error) {
		ps, meta, err := cl.KV().List(prefix, (&api.QueryOptions{Datacenter: dc}).WithContext(ctx))
		if err != nil {
			if via != c.addr {
				return listed{}, fmt.Errorf("consul: list %s via %s: %w", prefix, via, err)
			}
			return listed{}, fmt.Errorf("consul: list %s: %w", prefix, err)
		}
		return listed{fromPairs(ps), meta.LastIndex}, nil
	}, func(l listed) error {
		if l.index == 0 || len(l.kvs) == 0 {
			return fmt.Errorf("no key under %s (index %d)", prefix, l.index)
		}
		return nil
	}, nil)
	return l.kvs, l.index, err
}

// ListBlocking is List as a blocking query: with waitIndex > 0 it returns once the prefix's
// index passes waitIndex, or after maxWait (Consul's default of 5m when zero; at most 10m)
// with the same index. Cancelling ctx aborts it.
func (c *Client) ListBlocking(ctx context.Context, prefix string, waitIndex uint64, maxWait time.Duration) ([]KV, uint64, error) {
	ctx, cancel := c.reqCtx(ctx, blockingWait(waitIndex, maxWait))
	defer cancel()
	q := c.query(ctx)
	q.WaitIndex = waitIndex
	q.WaitTime = maxWait
	ps, meta, err := c.api.KV().List(prefix, q)
	if err != nil {
		return nil, 0, fmt.Errorf("consul: list %s: %w", prefix, err)
	}
	return fromPairs(ps), meta.LastIndex, nil
}

// Put writes a key unconditionally.
func (c *Client) Put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	if _, err := c.api.KV().Put(&api.KVPair{Key: key, Value: value}, c.write(ctx)); err != nil {
		return fmt.Errorf("consul: put %s: %w", key, err)
	}
	return nil
}

// CAS writes a key only if its ModifyIndex is still modifyIndex (0: only if it does not
// exist). It reports whether the write happened; false with a nil error means someone else
// wrote first.
func (c *Client) CAS(ctx context.Context, key string, value []byte, modifyIndex uint64) (bool, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	ok, _, err := c.api.KV().CAS(&api.KVPair{Key: key, Value: value, ModifyIndex: modifyIndex}, c.write(ctx))
	if err != nil {
		return false, fmt.Errorf("consul: cas %s at index %d: %w", key, modifyIndex, err)
	}
	return ok, nil
}

// Delete removes a key; removing an absent key is not an error.
func (c *Client) Delete(ctx context.Context, key string) error {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	if _, err := c.api.KV().Delete(key, c.write(ctx)); err != nil {
		return fmt.Errorf("consul: delete %s: %w", key, err)
	}
	return nil
}

// DeleteCAS removes a key only if its ModifyIndex is still modifyIndex, and reports whether
// it did.
func (c *Client) DeleteCAS(ctx context.Context, key string, modifyIndex uint64) (bool, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	ok, _, err := c.api.KV().DeleteCAS(&api.KVPair{Key: key, ModifyIndex: modifyIndex}, c.write(ctx))
	if err != nil {
		return false, fmt.Errorf("consul: delete-cas %s at index %d: %w", key, modifyIndex, err)
	}
	return ok, nil
}

// Acquire takes the lock on key for session and writes value, and reports whether it did.
// False with a nil error means another session holds the lock, or the lock delay of a session
// that held it is still running (Get tells them apart: Session is set only in the first case).
// Acquiring a lock the session already holds succeeds and updates the value.
func (c *Client) Acquire(ctx context.Context, key, session string, value []byte) (bool, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	ok, _, err := c.api.KV().Acquire(&api.KVPair{Key: key, Value: value, Session: session}, c.write(ctx))
	if err != nil {
		return false, fmt.Errorf("consul: acquire %s with session %s: %w", key, session, err)
	}
	return ok, nil
}

// Release gives up session's lock on key, writing value, and reports whether it did (false
// when the session did not hold it). No lock delay follows a release.
func (c *Client) Release(ctx context.Context, key, session string, value []byte) (bool, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	ok, _, err := c.api.KV().Release(&api.KVPair{Key: key, Value: value, Session: session}, c.write(ctx))
	if err != nil {
		return false, fmt.Errorf("consul: release %s with session %s: %w", key, session, err)
	}
	return ok, nil
}
