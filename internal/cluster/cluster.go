// Package cluster holds every Consul key and record of the product (DESIGN.md section 2): the
// leader lock, the members, the switchover and maintenance flags, the server-id counter
// (Cluster, the port ha.Cluster) and the snapshot catalog, binlog progress, backup lock and
// snapshot request (Catalog, the port snapshot.Catalog). Nothing else in mysqlpilot names a key.
package cluster

import (
	"context"
	"encoding/json"
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
	Prefix  string // key prefix, ending in "/"
	Service string // read service name, e.g. "mysql"; the primary also registers "<service>-primary"
	Node    string
	Address string
	Port    int
	Tags    []string
	// Timing: the session's TTL and lock delay, the alive check's TTL (the one value the HA
	// loop runs on, so the two never disagree).
	Timing ha.Timing
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
		case name == keySync:
			v.Sync = parseSyncSet(kv.Value)
		case name == keyHistory:
			v.History = parseHistory(kv.Value)
		case name == keyLatest:
			v.Snapshot = parseLatest(kv.Value)
		case name == keyBinlogsLast:
			var p struct {
				Updated time.Time `json:"updated"`
			}
			if json.Unmarshal(kv.Value, &p) == nil {
				v.BinlogArchived = p.Updated
			}
		}
	}
	return v
}
