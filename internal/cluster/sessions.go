package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

func (k *Cluster) sessionName() string { return "mysqlpilot " + k.o.Node }

// DestroyStaleSessions ends the sessions a previous process of this node left behind: a
// restarted node passes the same alive check, which would keep them (and a lock they hold)
// alive until their TTL.
func (k *Cluster) DestroyStaleSessions(ctx context.Context) error {
	ids, err := k.c.SessionsNamed(ctx, k.sessionName())
	if err != nil {
		return err
	}
	for _, id := range ids {
		k.log.Info("destroying a session left by this node's previous process", "session", id)
		if err := k.c.DestroySession(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// CreateSession creates the lease the leader lock and the member key are held with.
func (k *Cluster) CreateSession(ctx context.Context) (string, error) {
	if err := k.ensureAlive(ctx); err != nil {
		return "", err
	}
	// The loop renews this lease itself (RenewSession): it fences on its own deadline.
	lease, err := consul.NewLease(ctx, k.c, consul.SessionOptions{
		Name: k.sessionName(), TTL: k.o.Timing.SessionTTL, LockDelay: k.o.Timing.LockDelay,
		Behavior: "release", ServiceChecks: []string{k.aliveID()},
		// Not Consul's default serfHealth: it can end the session before the deadline the
		// loop computes from its own alive passes and renewals (an agent cut off from the
		// servers). Bound to our check only, the session cannot end earlier than that
		// deadline, so the fence always comes first.
		NodeChecks: []string{},
	})
	if err != nil {
		return "", err
	}
	return lease.ID, nil
}

func (k *Cluster) RenewSession(ctx context.Context, id string) error {
	err := k.c.RenewSession(ctx, id)
	if errors.Is(err, consul.ErrSessionGone) {
		return fmt.Errorf("%w: %w", ha.ErrSessionGone, err)
	}
	return err
}

func (k *Cluster) DestroySession(ctx context.Context, id string) error {
	return k.c.DestroySession(ctx, id)
}
