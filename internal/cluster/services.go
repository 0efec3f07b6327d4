package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// aliveService is the name of the service whose TTL check the node's session is bound to.
const aliveService = "mysqlpilot"

// ensureAlive registers the alive service (the check sessions are bound to) once.
func (k *Cluster) ensureAlive(ctx context.Context) error {
	k.mu.Lock()
	done := k.aliveReg
	k.mu.Unlock()
	if done {
		return nil
	}
	err := k.c.Register(ctx, consul.Service{
		ID: k.aliveID(), Name: aliveService, Address: k.o.Address, Port: k.o.Port,
		Meta: map[string]string{"node": k.o.Node}, CheckID: k.aliveID(), CheckTTL: k.o.Timing.CheckTTL,
	})
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.aliveReg = true
	k.mu.Unlock()
	return nil
}

func ttlStatus(ok bool) string {
	if ok {
		return "passing"
	}
	return "critical"
}

// SetAlive reports the alive check, the one the leader lease is bound to.
func (k *Cluster) SetAlive(ctx context.Context, ok bool, note string) error {
	if err := k.ensureAlive(ctx); err != nil {
		return err
	}
	return k.c.UpdateTTL(ctx, k.aliveID(), ttlStatus(ok), note)
}

func (k *Cluster) SetHealth(ctx context.Context, role ha.Role, ok bool, note string) error {
	k.mu.Lock()
	needReg := !k.regRole || k.role != role
	primary := k.primary
	k.mu.Unlock()
	if needReg {
		tags := append([]string{}, k.o.Tags...)
		if role != ha.RoleNone {
			tags = append(tags, string(role))
		}
		err := k.c.Register(ctx, consul.Service{
			ID: k.readID(), Name: k.o.Service, Address: k.o.Address, Port: k.o.Port, Tags: tags,
			Meta: map[string]string{"node": k.o.Node}, CheckID: k.readID(), CheckTTL: k.o.Timing.ReadCheckTTL(),
		})
		if err != nil {
			return err
		}
		k.mu.Lock()
		k.role, k.regRole = role, true
		k.mu.Unlock()
	}
	err := k.c.UpdateTTL(ctx, k.readID(), ttlStatus(ok), note)
	if primary && role == ha.RolePrimary {
		err = errors.Join(err, k.c.UpdateTTL(ctx, k.primaryID(), ttlStatus(ok), note))
	}
	return err
}

func (k *Cluster) SetPrimary(ctx context.Context, on bool) error {
	k.mu.Lock()
	was := k.primary
	k.mu.Unlock()
	if on {
		err := k.c.Register(ctx, consul.Service{
			ID: k.primaryID(), Name: k.o.Service + "-primary", Address: k.o.Address, Port: k.o.Port,
			Tags: k.o.Tags, Meta: map[string]string{"node": k.o.Node}, CheckID: k.primaryID(), CheckTTL: k.o.Timing.CheckTTL,
		})
		if err == nil {
			err = k.c.UpdateTTL(ctx, k.primaryID(), "passing", "primary")
		}
		if err != nil {
			return fmt.Errorf("register %s-primary: %w", k.o.Service, err)
		}
	} else if was || !k.primaryKnown() {
		if err := k.c.Deregister(ctx, k.primaryID()); err != nil {
			return fmt.Errorf("deregister %s-primary: %w", k.o.Service, err)
		}
	}
	k.mu.Lock()
	k.primary = on
	k.mu.Unlock()
	return nil
}

// primaryKnown: false until SetPrimary ran once, so a restarted node clears a stale
// registration left by its previous life.
func (k *Cluster) primaryKnown() bool { return k.regRole }

// Deregister removes every service this node registered (graceful stop).
func (k *Cluster) Deregister(ctx context.Context) error {
	return errors.Join(
		k.c.Deregister(ctx, k.primaryID()),
		k.c.Deregister(ctx, k.readID()),
		k.c.Deregister(ctx, k.aliveID()),
	)
}
