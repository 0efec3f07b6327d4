package consul

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
)

// Session limits enforced by Consul (its defaults; session_ttl_min can be raised on servers).
const (
	// MinSessionTTL is the smallest session TTL Consul accepts.
	MinSessionTTL = 10 * time.Second
	// MaxSessionTTL is the largest session TTL Consul accepts.
	MaxSessionTTL = 24 * time.Hour
	// MaxLockDelay is the largest lock delay Consul accepts.
	MaxLockDelay = 60 * time.Second
)

// Session behaviors: what happens to the keys a session holds when it is invalidated.
const (
	// BehaviorRelease releases the locks and keeps the keys (for the leader lock).
	BehaviorRelease = "release"
	// BehaviorDelete deletes the keys (for ephemeral member keys).
	BehaviorDelete = "delete"
)

// SessionOptions describe a session to create.
//
// A session ends when it is destroyed, when it is not renewed within its TTL, or when any check
// bound to it turns critical; its locks are then released (or its keys deleted) and, with
// LockDelay, nobody can acquire them again for that long.
//
// Two timing facts matter for fencing:
//   - TTL alone is loose: Consul invalidates a session only after up to 2x TTL without
//     renewal (it doubles the TTL to absorb clock skew and leader changes), so a 10s session
//     may survive 20s after its holder died. Renew every TTL/3 and fence on your own clock.
//   - A bound check is tighter: a session bound (ServiceChecks) to a 5s TTL service check is
//     invalidated about 5s after the last passing update, when the check turns critical, with
//     no doubling. Binding the leader session to the node's health check lets a dead or
//     unhealthy primary lose the lock in check-TTL time.
type SessionOptions struct {
	// Name is shown in Consul's session list, for operators. Optional, defaults to "".
	Name string

	// TTL after which a session that is not renewed is invalidated (by Consul, within 2x TTL).
	// Required: at least 10s (Consul's minimum; it refuses shorter) and at most 24h.
	TTL time.Duration

	// LockDelay is how long, after the session is invalidated, the locks it held cannot be
	// acquired by anyone, so that a holder that has not yet noticed has time to stop. It does
	// not apply to an explicit Release. Optional, defaults to 0: no delay. This deliberately
	// differs from Consul's own default of 15s, which would be a 15s outage on every failover.
	// At most 60s.
	LockDelay time.Duration

	// Behavior is BehaviorRelease or BehaviorDelete. Optional, defaults to "release".
	Behavior string

	// NodeChecks are node-level check IDs bound to the session. Optional: nil binds Consul's
	// default, the node's "serfHealth" (the session dies with the agent's membership); a
	// non-nil empty slice binds no node check.
	NodeChecks []string

	// ServiceChecks are service check IDs on this agent bound to the session, e.g. the
	// Service.CheckID of the node's own service. Optional, defaults to none. Each must exist
	// and not be critical when the session is created, or Consul refuses it.
	ServiceChecks []string
}

// CreateSession creates a session on the local agent's node and returns its ID.
func (c *Client) CreateSession(ctx context.Context, o SessionOptions) (string, error) {
	if o.TTL < MinSessionTTL || o.TTL > MaxSessionTTL {
		return "", fmt.Errorf("consul: create session %q: TTL %s: Consul accepts 10s to 24h (it refuses shorter TTLs; "+
			"for faster failure detection bind a short TTL service check instead)", o.Name, o.TTL)
	}
	if o.LockDelay < 0 || o.LockDelay > MaxLockDelay {
		return "", fmt.Errorf("consul: create session %q: lock delay %s: Consul accepts 0 to 60s", o.Name, o.LockDelay)
	}
	behavior := o.Behavior
	switch behavior {
	case "":
		behavior = BehaviorRelease
	case BehaviorRelease, BehaviorDelete:
	default:
		return "", fmt.Errorf("consul: create session %q: behavior %q: want release or delete", o.Name, o.Behavior)
	}
	// The body is written by hand because consul/api omits a zero LockDelay (so Consul applies
	// its 15s default) and an empty NodeChecks (so Consul binds serfHealth).
	body := map[string]any{
		"Name":      o.Name,
		"TTL":       o.TTL.String(),
		"LockDelay": fmt.Sprintf("%dms", o.LockDelay.Milliseconds()),
		"Behavior":  behavior,
	}
	if o.NodeChecks != nil {
		body["NodeChecks"] = o.NodeChecks
	}
	if len(o.ServiceChecks) > 0 {
		sc := make([]map[string]string, len(o.ServiceChecks))
		for i, id := range o.ServiceChecks {
			sc[i] = map[string]string{"ID": id}
		}
		body["ServiceChecks"] = sc
	}
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	var out struct{ ID string }
	if _, err := c.api.Raw().Write("/v1/session/create", body, &out, c.write(ctx)); err != nil {
		return "", fmt.Errorf("consul: create session %q: %w", o.Name, err)
	}
	if out.ID == "" {
		return "", fmt.Errorf("consul: create session %q: agent returned no ID", o.Name)
	}
	return out.ID, nil
}

// RenewSession resets the session's TTL. It returns an error wrapping ErrSessionGone when
// Consul no longer knows the session; any other error says nothing about the session's fate
// (the agent may be unreachable while the session lives on), so the caller must fence on its
// own deadline.
//
// With fallbacks (Options.Fallback), a renewal the agent has not answered within HedgeAfter,
// or has failed, is also sent through every fallback, and the first answer that is not an
// error wins. A renewal is no agent-local operation: any agent or server forwards it to the
// Raft leader, which alone keeps session timers. This is what keeps a primary's lock fresh
// when the one Consul server its agent forwards to dies: the agent only moves to another
// after its dial to the dead one times out (10 s in Consul's RPC pool), longer than the
// fence deadline allows.
func (c *Client) RenewSession(ctx context.Context, id string) error {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	_, via, err := hedge(ctx, c, func(ctx context.Context, cl *api.Client, via, dc string) (struct{}, error) {
		return struct{}{}, renew(ctx, cl, via, dc, id)
	}, nil, func(err error) bool { return errors.Is(err, ErrSessionGone) })
	if err == nil {
		c.renewedThrough(via)
	}
	return err
}

func renew(ctx context.Context, c *api.Client, via, dc, id string) error {
	entry, _, err := c.Session().Renew(id, (&api.WriteOptions{Datacenter: dc}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("consul: renew session %s via %s: %w", id, via, err)
	}
	if entry == nil {
		return fmt.Errorf("consul: renew session %s via %s: %w", id, via, ErrSessionGone)
	}
	return nil
}

// renewedThrough logs when renewals start or stop needing a fallback.
func (c *Client) renewedThrough(via string) {
	if via == c.addr {
		via = ""
	}
	c.mu.Lock()
	was := c.renewedBy
	c.renewedBy = via
	c.mu.Unlock()
	switch {
	case was == via:
	case via == "":
		c.log.Info("session renewals go through the agent again")
	default:
		c.log.Warn("the agent did not renew the session in time: renewed through a fallback", "fallback", via)
	}
}

// DestroySession invalidates the session at once: its locks are released (or its keys deleted)
// and its LockDelay starts. Destroying an unknown session is not an error.
func (c *Client) DestroySession(ctx context.Context, id string) error {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	if _, err := c.api.Session().Destroy(id, c.write(ctx)); err != nil {
		return fmt.Errorf("consul: destroy session %s: %w", id, err)
	}
	return nil
}

// SessionsNamed returns the IDs of the sessions called name, e.g. those a node's previous
// process left behind.
func (c *Client) SessionsNamed(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := c.reqCtx(ctx, 0)
	defer cancel()
	list, _, err := c.api.Session().List(c.query(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul: list sessions: %w", err)
	}
	var ids []string
	for _, s := range list {
		if s.Name == name {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}
