// Package cluster holds every Consul key and record of the product (DESIGN.md section 2): the
// leader lock, the members, the switchover and maintenance flags, the server-id counter
// (Cluster, the port ha.Cluster) and the snapshot catalog, binlog progress, backup lock and
// snapshot request (Catalog, the port snapshot.Catalog). Nothing else in mysqlpilot names a key.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/ha"
)

// Key names under the cluster prefix (DESIGN.md section 2).
const (
	keyLeader      = "leader"
	keyMembers     = "members/"
	keyMaintenance = "maintenance"
	keySwitchover  = "switchover"
	keyInitialized = "initialized"
	keyServerIDs   = "server-ids/"
)

// Options configure a Cluster.
type Options struct {
	Prefix     string // key prefix, ending in "/"
	Service    string // read service name, e.g. "mysql"; the primary also registers "<service>-primary"
	Node       string
	Address    string
	Port       int
	Tags       []string
	SessionTTL time.Duration
	CheckTTL   time.Duration // the alive check the session is bound to
	LockDelay  time.Duration
}

// Cluster implements ha.Cluster over internal/consul.
type Cluster struct {
	c    *consul.Client
	o    Options
	log  *slog.Logger
	wake chan struct{}

	mu       sync.Mutex
	view     ha.ClusterView // the last good read
	role     ha.Role
	regRole  bool
	primary  bool
	aliveReg bool
	held     []byte // the leader record this node acquired the lock with
}

// New returns the Cluster of node o.Node under o.Prefix.
func New(c *consul.Client, o Options, log *slog.Logger) *Cluster {
	return &Cluster{c: c, o: o, log: log, wake: make(chan struct{}, 1)}
}

func (k *Cluster) aliveID() string   { return "mysqlpilot-" + k.o.Node }
func (k *Cluster) readID() string    { return k.o.Service + "-" + k.o.Node }
func (k *Cluster) primaryID() string { return k.o.Service + "-primary-" + k.o.Node }

// Wake fires when the cluster's keys change.
func (k *Cluster) Wake() <-chan struct{} { return k.wake }

// Watch wakes the loop (a blocking query on the prefix) whenever the cluster's keys change,
// until ctx ends.
func (k *Cluster) Watch(ctx context.Context) {
	k.c.WatchPrefix(ctx, k.o.Prefix, func([]consul.KV) { k.poke() })
}

func (k *Cluster) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// View reads the cluster's keys now: one consistent read a cycle, so a decision never rests on
// a watch result that went stale while Consul was away. On error it returns the last good
// view with the error; the fence deadline, not this view, guards the primary.
func (k *Cluster) View(ctx context.Context) (ha.ClusterView, error) {
	kvs, _, err := k.c.List(ctx, k.o.Prefix)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		return k.view, err
	}
	k.view = k.parse(kvs)
	return k.view, nil
}

func (k *Cluster) parse(kvs []consul.KV) ha.ClusterView {
	var v ha.ClusterView
	for _, kv := range kvs {
		name := strings.TrimPrefix(kv.Key, k.o.Prefix)
		switch {
		case name == keyLeader:
			var rec ha.LeaderRecord
			if kv.Session == "" {
				// The lock is free; the record of its last holder stays (Release keeps it too).
				if len(kv.Value) > 0 && json.Unmarshal(kv.Value, &rec) == nil {
					v.LastLeader = rec.Node
				}
				continue
			}
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				k.log.Warn("unreadable leader key", "err", err)
				rec.Node = "?"
			}
			v.Leader, v.LeaderSession = &rec, kv.Session
		case strings.HasPrefix(name, keyMembers):
			var m ha.MemberRecord
			if err := json.Unmarshal(kv.Value, &m); err != nil {
				continue
			}
			m.Live = kv.Session != ""
			v.Members = append(v.Members, m)
		case name == keyMaintenance:
			v.Maintenance = true
		case name == keySwitchover:
			var sw ha.Switchover
			if json.Unmarshal(kv.Value, &sw) == nil {
				v.Switchover = &sw
			}
		case name == keyInitialized:
			v.Initialized = true
		}
	}
	return v
}

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

func (k *Cluster) CreateSession(ctx context.Context) (string, error) {
	if err := k.ensureAlive(ctx); err != nil {
		return "", err
	}
	// The loop renews this lease itself (RenewSession): it fences on its own deadline.
	lease, err := consul.NewLease(ctx, k.c, consul.SessionOptions{
		Name: k.sessionName(), TTL: k.o.SessionTTL, LockDelay: k.o.LockDelay,
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

// ensureAlive registers the alive service (the check sessions are bound to) once.
func (k *Cluster) ensureAlive(ctx context.Context) error {
	k.mu.Lock()
	done := k.aliveReg
	k.mu.Unlock()
	if done {
		return nil
	}
	err := k.c.Register(ctx, consul.Service{
		ID: k.aliveID(), Name: "mysqlpilot", Address: k.o.Address, Port: k.o.Port,
		Meta: map[string]string{"node": k.o.Node}, CheckID: k.aliveID(), CheckTTL: k.o.CheckTTL,
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
			Meta: map[string]string{"node": k.o.Node}, CheckID: k.readID(), CheckTTL: 3 * k.o.CheckTTL,
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
			Tags: k.o.Tags, Meta: map[string]string{"node": k.o.Node}, CheckID: k.primaryID(), CheckTTL: k.o.CheckTTL,
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

func (k *Cluster) Acquire(ctx context.Context, session string, rec ha.LeaderRecord) (bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	ok, err := k.c.Acquire(ctx, k.o.Prefix+keyLeader, session, b)
	if ok {
		k.mu.Lock()
		k.held = b
		k.mu.Unlock()
	}
	if err != nil {
		return false, err
	}
	k.poke()
	return ok, nil
}

// Release frees the lock and leaves this node's record in the key, as a session that ends
// does: the next candidates see who held it last (ClusterView.LastLeader).
func (k *Cluster) Release(ctx context.Context, session string) error {
	k.mu.Lock()
	held := k.held
	k.mu.Unlock()
	_, err := k.c.Release(ctx, k.o.Prefix+keyLeader, session, held)
	if err != nil {
		return err
	}
	k.poke()
	return nil
}

func (k *Cluster) PublishMember(ctx context.Context, session string, m ha.MemberRecord) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ok, err := k.c.Acquire(ctx, k.o.Prefix+keyMembers+k.o.Node, session, b)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("member key %s%s%s is held by another session", k.o.Prefix, keyMembers, k.o.Node)
	}
	return nil
}

func (k *Cluster) SetSwitchover(ctx context.Context, sw *ha.Switchover) error {
	key := k.o.Prefix + keySwitchover
	var err error
	if sw == nil {
		err = k.c.Delete(ctx, key)
	} else {
		var b []byte
		if b, err = json.Marshal(sw); err == nil {
			err = k.c.Put(ctx, key, b)
		}
	}
	if err != nil {
		return err
	}
	k.poke()
	return nil
}

// RequestSwitchover records an operator's request, unless one is already pending.
func (k *Cluster) RequestSwitchover(ctx context.Context, sw *ha.Switchover) (bool, error) {
	b, err := json.Marshal(sw)
	if err != nil {
		return false, err
	}
	ok, err := k.c.CAS(ctx, k.o.Prefix+keySwitchover, b, 0)
	if err == nil && ok {
		k.poke()
	}
	return ok, err
}

func (k *Cluster) MarkInitialized(ctx context.Context) error {
	b, _ := json.Marshal(map[string]any{"node": k.o.Node, "at": time.Now().UTC()})
	return k.c.Put(ctx, k.o.Prefix+keyInitialized, b)
}

// SetMaintenance turns maintenance mode on or off (operator CLI).
func (k *Cluster) SetMaintenance(ctx context.Context, on bool) error {
	if on {
		return k.c.Put(ctx, k.o.Prefix+keyMaintenance, []byte(`{"by":"operator"}`))
	}
	return k.c.Delete(ctx, k.o.Prefix+keyMaintenance)
}

// Deregister removes every service this node registered (graceful stop).
func (k *Cluster) Deregister(ctx context.Context) error {
	return errors.Join(
		k.c.Deregister(ctx, k.primaryID()),
		k.c.Deregister(ctx, k.readID()),
		k.c.Deregister(ctx, k.aliveID()),
	)
}

// ServerID returns this node's server_id, allocating a new cluster-unique one with a CAS
// counter when it has none: stable per node, never a hash that could collide. fresh forces a
// new one: a datadir restored from a snapshot must not keep the server_id it wrote under
// before, because a server skips replicated events that carry its own server_id, and the
// transactions this node wrote after the snapshot would never come back to it.
func (k *Cluster) ServerID(ctx context.Context, fresh bool) (uint32, error) {
	key := k.o.Prefix + keyServerIDs + k.o.Node
	if kv, _, err := k.c.Get(ctx, key); err != nil {
		return 0, err
	} else if kv != nil && !fresh {
		var id uint32
		if _, err := fmt.Sscan(string(kv.Value), &id); err == nil && id > 0 {
			return id, nil
		}
	}
	next := k.o.Prefix + keyServerIDs + "next"
	for i := 0; i < 50; i++ {
		kv, _, err := k.c.Get(ctx, next)
		if err != nil {
			return 0, err
		}
		var cur uint32 = 1000
		var idx uint64
		if kv != nil {
			fmt.Sscan(string(kv.Value), &cur)
			idx = kv.ModifyIndex
		}
		ok, err := k.c.CAS(ctx, next, []byte(fmt.Sprint(cur+1)), idx)
		if err != nil {
			return 0, err
		}
		if ok {
			if err := k.c.Put(ctx, key, []byte(fmt.Sprint(cur))); err != nil {
				return 0, err
			}
			return cur, nil
		}
	}
	return 0, errors.New("allocate server_id: too much contention on " + next)
}
