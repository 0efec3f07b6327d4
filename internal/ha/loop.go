package ha

// The loop observes, asks Decide, and acts. It decides nothing itself: every rule is in
// decide.go. Its contract, like etcd raft's Ready, is what each action does, in this order:
//
//   - Every cycle, first: read mysqld (bounded by checkTTL/2), pass the alive check and renew
//     the session (a third of sessionTTL after the last renewal); the sent-times of the
//     successes are what the fence deadline is computed from. Then one consistent read of the
//     cluster's keys. Every Consul call is bounded by the health interval.
//   - Wait: nothing.
//   - Fence: read_only on and client connections killed (on MariaDB with semi-sync, commits
//     still waiting for an acknowledgement after a second make the adapter kill mysqld
//     instead, see mysql.Database.OnUnacknowledged), then deregister <service>-primary.
//   - NewSession: create a session bound to the alive check.
//   - Acquire: take the lock; on success Promote in the same cycle.
//   - Promote: (a switchover target: wait until it received the old primary's final GTIDs),
//     apply the relay log while keeping the session alive, check the lock is still ours and
//     fresh, arm the watchdog, open writes (bootstrap accounts on first boot), clear the
//     switchover record, then StayPrimary. A failure is counted (State.PromoteFails).
//   - Release: release the lock and bench this node (BenchTime).
//   - StayPrimary: arm the watchdog (fence if it cannot be armed far enough), register
//     <service>-primary; with semi-sync, say Alone in the member key first when asked, then
//     write the sync set, then turn semi-sync on or off (adaptive), and clear Alone once a
//     sync-set member that acknowledges has everything committed alone.
//   - Follow: deregister <service>-primary, point replication at the holder (at most every
//     followRetry for the same one) with the replica side of semi-sync as asked, start it.
//   - SetAck: turn the replica side of semi-sync on or off (restarting the IO thread).
//   - StayReplica: nothing.
//   - Handover: fence, wait (bounded) until the target has everything or every replica was
//     sent the whole binlog, record the switchover with our final GTIDs, release the lock.
//   - Quarantine: fence once, stop acknowledging, and ask the node to re-seed (OnQuarantine).
//   - Every cycle, last: after an action that changed the server, read it again; then update
//     the health check, the member key (on change, or every 10 s) and the status.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// followRetry is the least time between two attempts to (re)start replication from the same
// primary.
const followRetry = 5 * time.Second

// Config is the loop's configuration.
type Config struct {
	Node     string
	Address  string // this node's address for replicas and clients
	Port     int
	ServerID uint32
	Timing   Timing
	MaxLag   time.Duration // replicas above this lag report unhealthy
	// OnQuarantine, when set, is called (from the loop's goroutine, once per quarantine
	// decision; it must not block) so the node can re-seed itself from a snapshot.
	OnQuarantine func(reason string)
	// SemiSync: semi-synchronous replication is configured (the sync-set rules apply).
	SemiSync bool
	// Boot identifies this start of the node's server (see SyncSet.Boots); new for each
	// process, which starts its server once.
	Boot string
	// SemiSyncAuto: adaptive semi-sync (see State.SemiSyncAuto).
	SemiSyncAuto bool
	// Truncated: see State.Truncated (the node's datadir was cut by a truncating crash
	// recovery or restored since it last recorded a sync set as primary).
	Truncated bool
	// OnOwnSyncSet, when set, is called once this node, promoted, has recorded its own sync
	// set (everything it received applied): Truncated no longer holds.
	OnOwnSyncSet func()
}

// Status is what `mysqlpilot status` shows: the last cycle's observation and decision.
type Status struct {
	Node     string `json:"node"`
	Role     Role   `json:"role"`
	Healthy  bool   `json:"healthy"`
	Action   string `json:"action"`
	Holder   string `json:"holder"`
	Session  bool   `json:"session"`
	Writable bool   `json:"writable"`
	// Alone: this node may hold writes it acknowledged alone (adaptive semi-sync; see
	// MemberRecord.Alone).
	Alone    bool           `json:"alone,omitempty"`
	Executed string         `json:"gtid_executed"`
	Replica  *ReplicaStatus `json:"replica,omitempty"`
	Error    string         `json:"error,omitempty"`
	Members  []MemberRecord `json:"members,omitempty"`
	Updated  time.Time      `json:"updated"`
	// WritableUntil: on a primary with writes open, the instant it must stop accepting them
	// unless a later cycle renews its lock (the fence deadline); zero otherwise. Role
	// endpoints answer "primary" only before it, so a frozen loop stops being advertised.
	// MySQLUp: this cycle's observation of mysqld succeeded.
	MySQLUp bool `json:"mysql_up"`
	// SemiSync: the primary side of semi-sync is on; Acking: the replica side.
	SemiSync bool `json:"semi_sync,omitempty"`
	Acking   bool `json:"acking,omitempty"`
	// Promotions and Fences count this process's promotions and fences (for metrics).
	Promotions uint64 `json:"promotions"`
	Fences     uint64 `json:"fences"`
	// BinlogArchived: when the binlog archive last recorded progress (zero: never).
	BinlogArchived time.Time     `json:"binlog_archived,omitzero"`
	WritableUntil  time.Time     `json:"writable_until,omitzero"`
	Leader         string        `json:"leader,omitempty"`
	Maintenance    bool          `json:"maintenance,omitempty"`
	Sync           *SyncSet      `json:"sync,omitempty"`
	History        []Failover    `json:"history,omitempty"`
	Snapshot       *SnapshotInfo `json:"snapshot,omitempty"`
}

// Loop runs observe -> Decide -> act. One goroutine (Run) owns every field below mu's.
type Loop struct {
	cfg     Config
	cluster Cluster
	db      Database
	log     *slog.Logger
	now     func() time.Time

	session     string
	lastRenewOK time.Time // sent-time of the last successful renewal (or creation)
	lastAliveOK time.Time // sent-time of the last successful alive-check pass
	freeSince   time.Time
	heldSince   time.Time // when lastHolder was first seen holding the lock
	lastHolder  string
	wasLeader   bool
	lastWhy     string
	published   MemberRecord
	// Adaptive semi-sync (primary): alone says this node may have acknowledged writes no
	// replica has (published as MemberRecord.Alone); aloneUpTo is what it had committed when
	// it turned semi-sync back on: alone ends once a replica has received all of it.
	alone       bool
	aloneUpTo   string
	aloneLoaded bool   // alone was taken from this node's previous member key
	truncated   bool   // State.Truncated: until this node records its own sync set
	promotions  uint64 // promotions that opened writes (Status, metrics)
	fences      uint64 // fences run (Status, metrics)
	// pendingFailover: this cycle's promotion, recorded in the history after the report.
	pendingFailover *Failover
	promotedAt      time.Time // when this node last opened writes (zero while not primary)
	acting          bool      // whileAlive runs an action beside the heartbeats
	lastBeat        time.Time // when heartbeat last ran
	publishedAt     time.Time
	primaryReg      bool
	lastFollow      time.Time // when replication was last (re)pointed, and at whom
	followed        string
	lastDB          DBState   // the last successful observation of mysqld
	quarantined     bool      // the last decision was Quarantine (log and fence once)
	lastFailover    time.Time // when the lock last moved without a switchover
	promoteFails    int       // consecutive failed promotions
	ackWaitSince    time.Time // commits have waited for an acknowledgement since (zero: none waits)
	benchedUntil    time.Time // no candidacy before this (after repeated failed promotions)

	mu     sync.Mutex
	status Status
}

// New makes a loop. now is the clock (time.Now in production).
func New(cfg Config, cluster Cluster, db Database, log *slog.Logger, now func() time.Time) *Loop {
	cfg.Timing = cfg.Timing.withDefaults()
	return &Loop{cfg: cfg, cluster: cluster, db: db, log: log, now: now, status: Status{Node: cfg.Node}, truncated: cfg.Truncated}
}

// Status returns the last cycle's status; safe from any goroutine.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// Run cycles until ctx ends: a cycle starts Interval after the last one started (at once if
// that one took longer), and at once when wake fires (a Consul watch saw the cluster's keys
// change). Cycles start at a fixed rate, not Interval after one ends: a cycle that waits on a
// slow Consul must not push the next alive-check pass, and so the fence deadline, further.
func (l *Loop) Run(ctx context.Context, wake <-chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
		start := time.Now()
		l.Cycle(ctx)
		t.Reset(max(0, l.cfg.Timing.Interval-time.Since(start)))
	}
}

// observation is what one cycle read, kept for act and for status.
type observation struct {
	state State
	db    DBState
	view  ClusterView
	dbErr error
	// before: the replica state Decide saw, when the server was observed again after the
	// action (its error text may be in the action's reason: PublicReason redacts both).
	before *ReplicaStatus
}

// Cycle runs one observe -> decide -> act round and returns the action taken.
func (l *Loop) Cycle(ctx context.Context) Action {
	o := l.observe(ctx)
	a := Decide(o.state, l.cfg.Timing)
	if _, ok := a.(Quarantine); !ok {
		l.quarantined = false
	}
	if d := Describe(a); d != l.lastWhy {
		l.log.Info(d, "holder", o.state.Holder, "session", o.state.Session != "")
		l.lastWhy = d
	}
	err := l.act(ctx, a, o)
	if err != nil {
		l.log.Warn("action failed", "action", Describe(a), "err", err)
	}
	l.beatIfDue(ctx, o.dbErr == nil)
	switch a.(type) {
	case Acquire, Promote, Fence, Follow, SetAck, Handover, Quarantine:
		// The server changed: report what it is now, not what it was (a new primary must not
		// fail its checks for a cycle).
		octx, cancel := context.WithTimeout(ctx, l.cfg.Timing.ObserveTimeout())
		o.before = o.db.Replica
		o.db, o.dbErr = l.db.Observe(octx)
		cancel()
		if o.dbErr == nil {
			l.lastDB = o.db
		}
	}
	l.report(ctx, a, o, err)
	l.recordFailover(ctx)
	return a
}

// observe reads mysqld and Consul, keeps the session alive, and builds the State.
func (l *Loop) observe(ctx context.Context) observation {
	var o observation
	octx, cancel := context.WithTimeout(ctx, l.cfg.Timing.ObserveTimeout())
	o.db, o.dbErr = l.db.Observe(octx)
	cancel()
	up := o.dbErr == nil
	if up {
		l.lastDB = o.db
	} else {
		// Unknown is not read-only: keep the last known state, so a primary whose server
		// stopped answering still tries to fence, and a replica keeps its published lead.
		o.db = l.lastDB
	}
	l.heartbeat(ctx, up, o.dbErr)

	vctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	view, err := l.cluster.View(vctx)
	cancel()
	l.beatIfDue(ctx, up)
	if err != nil {
		l.log.Debug("consul read failed; deciding on the last good view", "err", err)
	}
	o.view = view
	now := l.now()
	s := State{
		Now: now, Node: l.cfg.Node, MySQLUp: up, Writable: o.db.Writable, Empty: o.db.Empty, WatchdogGone: o.db.WatchdogGone,
		Session: l.session, Deadline: l.deadline(), WasLeader: l.wasLeader,
		Maintenance: view.Maintenance, Switchover: view.Switchover, Initialized: view.Initialized,
		Benched: now.Before(l.benchedUntil), PromoteFails: l.promoteFails, SemiSyncAuto: l.cfg.SemiSyncAuto, PromotedAt: l.promotedAt,
		SemiSync: l.cfg.SemiSync, Acking: o.db.Acking, Sync: view.Sync, LastLeader: view.LastLeader,
		ConsulOK: err == nil, Boot: l.cfg.Boot, Truncated: l.truncated,
	}
	switch {
	case o.db.AckWaiting == 0 || !o.db.Writable:
		l.ackWaitSince = time.Time{}
	case l.ackWaitSince.IsZero():
		l.ackWaitSince = now
	default:
		s.AckStalled = now.Sub(l.ackWaitSince)
	}
	if view.Leader != nil {
		s.Holder = view.Leader.Node
		s.HeldByUs = l.session != "" && view.LeaderSession == l.session
		l.freeSince = time.Time{}
		if s.Holder != l.lastHolder || l.heldSince.IsZero() {
			l.heldSince = now
		}
		if s.Holder != l.lastHolder && l.lastHolder != "" {
			if s.Holder != l.cfg.Node {
				l.wasLeader = false
			}
			if view.Switchover == nil {
				l.lastFailover = now
			}
		}
		l.lastHolder = s.Holder
	} else {
		l.heldSince = time.Time{}
		if l.freeSince.IsZero() || view.Maintenance {
			// The candidate window starts when the lock is seen free outside maintenance, so
			// that when maintenance ends every node first hears the others' current state.
			l.freeSince = now
		}
	}
	s.LastFailover = l.lastFailover
	s.FreeSince = l.freeSince
	s.HeldSince = l.heldSince
	if r := o.db.Replica; r != nil {
		s.Replica = &ReplicaState{IORunning: r.IORunning, Connecting: r.Connecting, SQLRunning: r.SQLRunning, Lag: r.Lag, Error: r.Error,
			Purged: r.Purged}
		if view.Leader != nil && r.Host == view.Leader.Address && r.Port == view.Leader.Port {
			s.Replica.Source = view.Leader.Node
		}
		// Only the lock holder's refusal counts: a deposed primary that restarted and cut
		// its unacknowledged tail refuses positions the new primary serves.
		if s.Replica.Source == "" {
			s.Replica.Purged = false
		} else {
			s.Errant = r.Errant
		}
	}
	s.Members = l.members(view, Progress{Executed: o.db.Executed, Received: o.db.Received})
	for _, m := range view.Members {
		// The lock's last holder says it may hold writes only it has: it is the one to
		// take the lock again (alive or not).
		if view.Leader == nil && m.Node == view.LastLeader && m.Alone {
			s.AloneLeader = m.Node
		}
		// A restarted process picks up what its previous life published.
		if !l.aloneLoaded && m.Node == l.cfg.Node && m.Alone {
			l.alone = true
		}
	}
	l.aloneLoaded = true
	o.state = s
	return o
}

// members turns the member keys (but ours) into Decide's view of them: each compared with our
// progress, and the live eligible ones ranked against each other (for the handover target).
// A member without a live session is never a candidate, but it stays in the list: as a
// sync-set member it may hold acknowledged writes (see syncRule).
func (l *Loop) members(view ClusterView, mine Progress) []Member {
	var ms []Member
	var recs []MemberRecord
	for _, m := range view.Members {
		if m.Node == l.cfg.Node {
			continue
		}
		ms = append(ms, Member{
			Node: m.Node, Role: m.Role, Eligible: m.Eligible && m.Live, WasLeader: m.WasLeader,
			Streaming: m.Streaming && m.Live, Live: m.Live, Acking: m.Acking,
			Cmp:       l.db.Compare(m.Progress(), mine),
			Connected: slices.Contains(l.lastDB.Replicas, net.JoinHostPort(m.Address, strconv.Itoa(m.Port))),
			Boot:      m.Boot, Left: m.Left,
		})
		recs = append(recs, m)
	}
	for i := range ms {
		for j := range ms {
			if i != j && ms[i].Left && !ms[i].Live && ms[j].Live && ms[j].Streaming && ms[j].Acking {
				if c := l.db.Compare(recs[j].Progress(), recs[i].Progress()); c == Equal || c == Ahead {
					ms[i].CoveredBy = append(ms[i].CoveredBy, ms[j].Node)
				}
			}
			if i == j || !ms[i].Eligible || !ms[j].Eligible {
				continue
			}
			switch l.db.Compare(recs[j].Progress(), recs[i].Progress()) {
			case Ahead:
				ms[i].Rank++
			case Diverged:
				ms[i].Split = true
			}
		}
	}
	return ms
}

// boots is the boot ids of the named members, as the sync set records them.
func boots(ms []Member, set []string) map[string]string {
	b := make(map[string]string, len(set))
	for _, n := range set {
		if m := member(ms, n); m != nil {
			b[n] = m.Boot
		}
	}
	return b
}

// heartbeat passes the alive check and renews the session; the sent-times of the successes
// are what the fence deadline is computed from.
//
// A node whose mysqld does not answer stops passing the alive check rather than failing it:
// failing it would end the session (and a primary's lock) on one slow query; not passing it
// ends the session within checkTTL if mysqld stays away.
func (l *Loop) heartbeat(ctx context.Context, up bool, dbErr error) {
	sent := l.now()
	l.lastBeat = sent
	if up {
		actx, cancel := context.WithTimeout(ctx, l.consulTimeout())
		err := l.cluster.SetAlive(actx, true, "mysqld answers")
		cancel()
		if err == nil {
			l.lastAliveOK = sent
			l.rearm(ctx)
		} else {
			l.log.Debug("alive check update failed", "err", err)
		}
	} else {
		l.log.Debug("not passing the alive check: mysqld does not answer", "err", dbErr)
	}
	if l.session == "" || l.now().Sub(l.lastRenewOK) < l.cfg.Timing.RenewEvery() {
		return
	}
	if l.now().Sub(l.lastAliveOK) >= l.cfg.Timing.CheckTTL {
		// Renew only what our agent vouches for. The session is bound to the alive check on
		// our agent; an agent that cannot be reached (dead, hung) cannot expire that check
		// either, and renewals through another agent (consul.fallback) would then keep the
		// session, and a fenced primary's lock, alive for ever. Unrenewed, it ends within
		// its TTL and another node can take over.
		l.log.Debug("not renewing the session: the alive check has not passed within its TTL")
		return
	}
	// Its own time bound: a slow alive pass must not leave the renewal (hedged through
	// consul.fallback after 300 ms) too little.
	rctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	defer cancel()
	sent = l.now()
	switch err := l.cluster.RenewSession(rctx, l.session); {
	case err == nil:
		l.lastRenewOK = sent
	case errors.Is(err, ErrSessionGone):
		l.log.Warn("consul session is gone", "session", l.session)
		l.session = ""
	default:
		l.log.Debug("session renewal failed", "err", err)
	}
}

// beatIfDue passes the alive check again (and renews, and re-arms, as heartbeat does) when
// an Interval has gone by since the last pass within this cycle: while Consul has no leader
// each read and write of a cycle waits out its bound, and three of them in a row would
// outlast the watchdog's window. up is the cycle's own observation of mysqld.
func (l *Loop) beatIfDue(ctx context.Context, up bool) {
	if up && l.now().Sub(l.lastBeat) >= l.cfg.Timing.Interval {
		l.heartbeat(ctx, true, nil)
	}
}

// rearm pushes the in-server watchdog as soon as an alive pass moved the deadline, while this
// node has writes open: not only when the cycle gets to StayPrimary, after its Consul reads.
// While Consul has no leader (an election, 3-4 s) every read and write of a cycle takes its
// full timeout, and a watchdog armed only after them would fire while the lock is still ours.
// Arming is as safe here as there: the window ends before the earliest instant our session
// could end, whatever the cycle is about to decide (a fence makes the server read-only
// anyway). Not while an action runs beside the heartbeats (whileAlive): it may be using the
// server, and arms for itself.
func (l *Loop) rearm(ctx context.Context) {
	// Writable as last observed: promotedAt outlives a watchdog that fired by itself, and
	// on MySQL arming lifts super_read_only for an instant.
	if l.promotedAt.IsZero() || !l.lastDB.Writable || l.acting {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	defer cancel()
	if err := l.armWatchdog(ctx); err != nil {
		l.log.Debug("watchdog not re-armed on the alive pass", "err", err)
	}
}

// consulTimeout bounds each Consul call of a cycle (Timing.ConsulTimeout).
func (l *Loop) consulTimeout() time.Duration { return l.cfg.Timing.ConsulTimeout() }

// deadline is the earliest instant another node could take a lock our session holds.
//
// It is computed less watchdogSlack: the in-server watchdog event runs once a second, so it may
// fire up to a second after its deadline. With the slack inside the deadline, Decide stops
// keeping writes open exactly when the watchdog can no longer be armed to fire in time.
func (l *Loop) deadline() time.Time {
	if l.session == "" {
		return time.Time{}
	}
	a := l.lastAliveOK.Add(l.cfg.Timing.CheckTTL)
	b := l.lastRenewOK.Add(l.cfg.Timing.SessionTTL)
	if b.Before(a) {
		a = b
	}
	return a.Add(-watchdogSlack)
}

// watchdogSlack is the in-server watchdog event's firing period.
const watchdogSlack = time.Second

// fresh reports whether our lock is still safely ours right now.
func (l *Loop) fresh() bool {
	return Fresh(l.deadline(), l.now(), l.cfg.Timing.FenceMargin)
}

func (l *Loop) act(ctx context.Context, a Action, o observation) error {
	switch a := a.(type) {
	case Wait:
		return nil
	case Fence:
		return l.fence(ctx)
	case NewSession:
		sent := l.now()
		id, err := l.cluster.CreateSession(ctx)
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		l.session, l.lastRenewOK = id, sent
		l.publishedAt = time.Time{}
		return nil
	case Acquire:
		rec := LeaderRecord{Node: l.cfg.Node, Address: l.cfg.Address, Port: l.cfg.Port, ServerID: l.cfg.ServerID, Since: l.now()}
		ok, err := l.cluster.Acquire(ctx, l.session, rec)
		if err != nil {
			return fmt.Errorf("acquire leader lock: %w", err)
		}
		if !ok {
			l.log.Info("leader lock taken by another node first")
			return nil
		}
		l.log.Info(l.cfg.Node + " acquired the leader lock")
		return l.promote(ctx, o)
	case Promote:
		return l.promote(ctx, o)
	case Release:
		l.log.Error("promotion failed repeatedly: releasing the lock and sitting out", "failures", l.promoteFails, "for", BenchTime)
		l.promoteFails, l.benchedUntil = 0, l.now().Add(BenchTime)
		return l.release(ctx)
	case StayPrimary:
		return l.stayPrimary(ctx, a, o)
	case Follow:
		if l.primaryReg {
			if err := l.cluster.SetPrimary(ctx, false); err != nil {
				return err
			}
			l.primaryReg = false
		}
		if o.view.Leader == nil {
			return nil
		}
		// Restarting replication that keeps failing (a wrong password, say) once a cycle
		// would only churn: retry the same primary at most every followRetry.
		if a.Primary == l.followed && l.now().Sub(l.lastFollow) < followRetry {
			return nil
		}
		l.followed, l.lastFollow = a.Primary, l.now()
		if l.alone {
			// Another node is primary: what only this node had is not the cluster's any more.
			l.log.Warn("following " + a.Primary + ": any write this node acknowledged alone that " + a.Primary + " lacks is errant now")
			l.alone, l.aloneUpTo = false, ""
		}
		l.log.Info(l.cfg.Node+" follows "+a.Primary, "address", o.view.Leader.Address, "port", o.view.Leader.Port)
		return l.db.Follow(ctx, o.view.Leader.Address, o.view.Leader.Port, a.Ack)
	case SetAck:
		return l.db.SetAck(ctx, a.On)
	case StayReplica:
		return nil
	case Handover:
		return l.handover(ctx, a.To, o)
	case Quarantine:
		var err error
		if !l.quarantined {
			l.log.Error("QUARANTINED: "+a.Why(), "node", l.cfg.Node)
			err = l.db.Fence(ctx)
			l.quarantined = true
		}
		if o.db.Acking {
			err = errors.Join(err, l.db.SetAck(ctx, false))
		}
		if l.cfg.OnQuarantine != nil {
			l.cfg.OnQuarantine(a.Why())
		}
		return err
	}
	return fmt.Errorf("unknown action %T", a)
}

// fence closes writes first, then stops advertising the primary.
func (l *Loop) fence(ctx context.Context) error {
	// Alone stays: fenced, this node still holds the only copy of what it committed alone.
	l.aloneUpTo, l.promotedAt = "", time.Time{}
	l.fences++
	// Stop advertising writes at once (GET /primary), before the fence's own steps: the
	// next report may never come (a handover on docker stop runs after the loop stopped).
	l.mu.Lock()
	if l.status.Role == RolePrimary {
		l.status.Role = RoleNone
	}
	l.status.WritableUntil = time.Time{}
	l.mu.Unlock()
	err := l.db.Fence(ctx)
	if err != nil {
		err = fmt.Errorf("fence: %w", err)
	} else {
		l.log.Warn(l.cfg.Node + " fenced itself: read-only, client sessions killed")
	}
	cctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	defer cancel()
	if e := l.cluster.SetPrimary(cctx, false); e == nil {
		l.primaryReg = false
	} else {
		err = errors.Join(err, e)
	}
	return err
}

// promote runs one promotion and counts the failures in a row (Decide gives up after
// MaxPromoteFails: Release).
func (l *Loop) promote(ctx context.Context, o observation) error {
	err := l.promoteOnce(ctx, o)
	if err == nil {
		l.promoteFails = 0
		return nil
	}
	l.promoteFails++
	return err
}

func (l *Loop) promoteOnce(ctx context.Context, o observation) error {
	if sw := o.view.Switchover; sw != nil && sw.To == l.cfg.Node && sw.GTID != "" {
		// A handover: take nothing less than everything the old primary executed.
		if err := l.whileAlive(ctx, func(ctx context.Context) error { return l.awaitReceived(ctx, sw.GTID) }); err != nil {
			_ = l.cluster.SetSwitchover(ctx, nil) // let a normal election pick the most advanced
			l.promoteFails = MaxPromoteFails - 1  // promote counts this one: Decide releases next
			return fmt.Errorf("promote: switchover target lacks the old primary's transactions: %w", err)
		}
	}
	if err := l.whileAlive(ctx, l.db.CatchUp); err != nil {
		return fmt.Errorf("promote: apply relay log: %w", err)
	}
	if !l.fresh() {
		return errors.New("promote: lock renewal went stale while catching up: not opening writes")
	}
	if l.cfg.SemiSync {
		// Only now, with everything we received applied (durable here), do we replace the
		// last primary's record: until then its writes may sit only in our relay log and its
		// members', and its record keeps the members that hold them in the rule should we be
		// lost. Say Alone first: until a member of our set has everything we hold
		// (clearAlone), only we may take the lock again. Then record the set (empty too: the
		// rule then names us), so the members repointing to us find themselves in it and
		// acknowledge from their first connection (the same set StayPrimary keeps).
		if !l.alone {
			if err := l.publishAlone(ctx, o); err != nil {
				return fmt.Errorf("promote: cannot say first that this node holds writes no member of its set has: %w", err)
			}
		}
		st := o.state
		st.Now, st.PromotedAt = l.now(), l.now()
		set, _ := syncSet(st)
		if err := l.writeSyncSet(ctx, set, st.Members); err != nil {
			return fmt.Errorf("promote: record the sync set before opening writes: %w", err)
		}
		if l.truncated {
			l.truncated = false // the record now names what we hold, all of it applied
			if l.cfg.OnOwnSyncSet != nil {
				l.cfg.OnOwnSyncSet()
			}
		}
	} else if cur := o.view.Sync; cur != nil && !(cur.Leader == l.cfg.Node && cur.Async) {
		// Without semi-sync, replace a semi-sync primary's record (a cluster switched to
		// asynchronous replication), so it never governs an election after us.
		if err := l.cluster.SetSyncSet(ctx, l.session, SyncSet{Leader: l.cfg.Node, Async: true, Updated: l.now()}); err != nil {
			return fmt.Errorf("promote: replace the last semi-sync primary's sync set: %w", err)
		}
	}
	if v, err := l.cluster.View(ctx); err != nil || v.Leader == nil || v.LeaderSession != l.session {
		return fmt.Errorf("promote: the lock is no longer ours after catching up (read error: %v): not opening writes", err)
	}
	if err := l.armWatchdog(ctx); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	bootstrap := !o.view.Initialized
	if err := l.db.Promote(ctx, bootstrap); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	l.wasLeader = true
	if bootstrap {
		if err := l.cluster.MarkInitialized(ctx); err != nil {
			l.log.Warn("could not mark the cluster initialized", "err", err)
		}
	}
	if sw := o.view.Switchover; sw != nil {
		if err := l.cluster.SetSwitchover(ctx, nil); err != nil {
			l.log.Warn("could not clear the switchover request", "err", err)
		}
	}
	l.log.Info(l.cfg.Node + " became primary")
	l.promotions++
	l.pendingFailover = l.failoverRecord(o) // recorded after this cycle's report: never delays advertising writes
	l.promotedAt = l.now()
	o.state.PromotedAt, o.state.Now = l.promotedAt, l.promotedAt
	// Promote turned semi-sync on (when configured); adaptive semi-sync turns it off again
	// at once when no other node could be promoted.
	after := o
	after.db.SemiSync = l.cfg.SemiSyncAuto
	return l.stayPrimary(ctx, stayPrimary(o.state, because("became primary")), after)
}

// failoverRecord is this promotion as the failover history keeps it.
func (l *Loop) failoverRecord(o observation) *Failover {
	f := Failover{At: l.now(), From: o.view.LastLeader, To: l.cfg.Node, Cause: "failover"}
	switch sw := o.view.Switchover; {
	case !o.view.Initialized:
		f.Cause = "bootstrap"
	case sw != nil && sw.To == l.cfg.Node:
		f.Cause, f.From = "switchover", sw.From
	}
	if !o.state.FreeSince.IsZero() {
		f.Took = l.now().Sub(o.state.FreeSince)
	}
	return &f
}

// recordFailover writes a pending failover record (best effort: it is for people).
func (l *Loop) recordFailover(ctx context.Context) {
	f := l.pendingFailover
	if f == nil {
		return
	}
	l.pendingFailover = nil
	cctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	defer cancel()
	if err := l.cluster.RecordFailover(cctx, *f); err != nil {
		l.log.Debug("could not record the failover in the history", "err", err)
	}
}

// awaitReceived waits (bounded) until this node has received every transaction in gtid.
func (l *Loop) awaitReceived(ctx context.Context, gtid string) error {
	ctx, cancel := context.WithTimeout(ctx, handoverReceiveWait)
	defer cancel()
	for {
		st, err := l.db.Observe(ctx)
		if err == nil {
			if hasAll(l.db, Progress{Executed: st.Executed, Received: st.Received}, gtid) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("did not receive %s within %s", gtid, handoverReceiveWait)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// handoverReceiveWait bounds how long a switchover target waits for the old primary's last
// transactions to arrive in its relay log.
const handoverReceiveWait = 5 * time.Second

// whileAlive runs fn (a long step: applying a relay log) while this goroutine keeps passing
// the alive check and renewing the session, so the lock does not lapse meanwhile.
func (l *Loop) whileAlive(ctx context.Context, fn func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t := time.NewTicker(l.cfg.Timing.Interval)
	defer t.Stop()
	l.acting = true // fn may use the server: the heartbeat leaves the watchdog alone
	defer func() { l.acting = false }()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			l.heartbeat(ctx, true, nil)
		}
	}
}

// watchdogWindow is how far ahead the in-server fence deadline is pushed: it must fire before
// any other node could take the lock, even if this process freezes right after arming it.
func (l *Loop) watchdogWindow() time.Duration {
	return l.deadline().Sub(l.now()) - l.cfg.Timing.FenceMargin
}

// armWatchdog pushes the in-server deadline, never past the point where it still protects us:
// with too little time left it does not arm, and the previous deadline stands.
func (l *Loop) armWatchdog(ctx context.Context) error {
	d := l.watchdogWindow()
	if d <= 0 {
		return fmt.Errorf("arm watchdog: only %s left before the fence deadline", d)
	}
	if err := l.db.ArmWatchdog(ctx, d); err != nil {
		return fmt.Errorf("arm watchdog: %w", err)
	}
	return nil
}

func (l *Loop) stayPrimary(ctx context.Context, a StayPrimary, o observation) error {
	if err := l.armWatchdog(ctx); err != nil {
		// Without a watchdog armed far enough ahead, a freeze from here on could outlast
		// the lock: fence now; the next cycle promotes again if the lock is still fresh.
		return errors.Join(err, l.fence(ctx))
	}
	var errs []error
	if !l.primaryReg {
		if err := l.cluster.SetPrimary(ctx, true); err != nil {
			errs = append(errs, err)
		} else {
			l.primaryReg = true
		}
	}
	if a.Sync != nil {
		if err := l.recordSyncSet(ctx, a, o); err != nil {
			errs = append(errs, err)
		}
	}
	// Semi-sync adapts even when a Consul write failed (going off says Alone first on its
	// own), so a flaky Consul cannot leave commits waiting without limit.
	if l.cfg.SemiSyncAuto {
		errs = append(errs, l.adaptSemiSync(ctx, a, o))
	} else if l.cfg.SemiSync && l.alone {
		l.clearAlone(a, o)
	}
	return errors.Join(errs...)
}

// recordSyncSet writes the sync set when it changed: after saying we are alone (when members
// that may hold acknowledged writes are dropped with none caught up), and before a new member
// may acknowledge (it waits for the record).
func (l *Loop) recordSyncSet(ctx context.Context, a StayPrimary, o observation) error {
	if a.Alone && !l.alone {
		if err := l.publishAlone(ctx, o); err != nil {
			return fmt.Errorf("sync set: cannot say first that this primary is alone, so the set stays: %w", err)
		}
	}
	if cur := o.view.Sync; cur != nil && cur.Leader == l.cfg.Node && slices.Equal(cur.Members, a.Sync) &&
		maps.Equal(cur.Boots, boots(o.state.Members, a.Sync)) {
		return nil
	}
	return l.writeSyncSet(ctx, a.Sync, o.state.Members)
}

// writeSyncSet records set, with its members' boot ids, as our sync set.
func (l *Loop) writeSyncSet(ctx context.Context, set []string, ms []Member) error {
	cctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	defer cancel()
	if err := l.cluster.SetSyncSet(cctx, l.session, SyncSet{Leader: l.cfg.Node, Members: set, Boots: boots(ms, set), Updated: l.now()}); err != nil {
		return fmt.Errorf("record sync set: %w", err)
	}
	l.log.Info("sync set recorded: these members acknowledge commits", "members", set)
	return nil
}

// adaptSemiSync turns the primary's semi-sync on or off as decided, and keeps the published
// Alone flag true whenever a write may have been acknowledged by this node alone: it is
// published before semi-sync goes off (and the lock's freshness checked again right before,
// since going off releases every commit waiting for an acknowledgement), and it is cleared
// only once a replica has received everything committed until semi-sync came back on.
func (l *Loop) adaptSemiSync(ctx context.Context, a StayPrimary, o observation) error {
	on := a.SemiSync
	switch {
	case on && !o.db.SemiSync:
		if err := l.db.SetSemiSync(ctx, true); err != nil {
			return fmt.Errorf("semi-sync on: %w", err)
		}
		l.log.Info("semi-sync on: commits wait for a replica's acknowledgement")
		l.aloneUpTo = "" // the next cycle's observation holds everything committed alone
	case on && l.alone:
		l.clearAlone(a, o)
	case !on && o.db.SemiSync:
		if !l.alone {
			if err := l.publishAlone(ctx, o); err != nil {
				return fmt.Errorf("semi-sync off: cannot say so in Consul first, so it stays on: %w", err)
			}
		}
		if !l.fresh() {
			return errors.New("semi-sync off: the lock's renewal went stale: it stays on")
		}
		if err := l.db.SetSemiSync(ctx, false); err != nil {
			return fmt.Errorf("semi-sync off: %w", err)
		}
		l.log.Warn("semi-sync off: no replica replicates from this primary, so it acknowledges commits alone until one does; " +
			"should it fail meanwhile, no other node takes over automatically")
	case !on && !l.alone:
		// Off already (a restart of this process): say so.
		if err := l.publishAlone(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// clearAlone ends Alone once a sync-set member that acknowledges has received everything
// this primary had executed when semi-sync came (back) on.
func (l *Loop) clearAlone(a StayPrimary, o observation) {
	if a.Alone {
		return
	}
	if l.aloneUpTo == "" {
		// On since before this cycle began (turned on by the last one, by Promote, or
		// before a restart of this process): everything committed alone is in what the
		// server had executed then.
		l.aloneUpTo = o.db.Executed
	}
	for _, m := range o.view.Members {
		if !m.Live || m.Node == l.cfg.Node || m.Role != RoleReplica || !m.Eligible || !m.Streaming || !m.Acking || !slices.Contains(a.Sync, m.Node) {
			continue
		}
		if hasAll(l.db, m.Progress(), l.aloneUpTo) {
			l.log.Info("no write is acknowledged by this primary alone any more: " + m.Node + " has them all")
			l.alone, l.aloneUpTo = false, ""
			return
		}
	}
}

// publishAlone sets Alone in this node's member key at once.
func (l *Loop) publishAlone(ctx context.Context, o observation) error {
	rec := l.published
	if rec.Node == "" {
		rec = MemberRecord{Node: l.cfg.Node, Address: l.cfg.Address, Port: l.cfg.Port, Executed: o.db.Executed, Received: o.db.Received, Boot: l.cfg.Boot}
	}
	rec.Role, rec.WasLeader, rec.Alone, rec.Updated = RolePrimary, true, true, l.now()
	cctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	defer cancel()
	if err := l.cluster.PublishMember(cctx, l.session, rec); err != nil {
		return err
	}
	l.alone, l.aloneUpTo = true, ""
	l.published, l.publishedAt = rec, l.now()
	return nil
}

func (l *Loop) release(ctx context.Context) error {
	if l.session == "" {
		return nil
	}
	if err := l.cluster.Release(ctx, l.session); err != nil {
		return fmt.Errorf("release leader lock: %w", err)
	}
	l.log.Info(l.cfg.Node + " released the leader lock")
	return nil
}

// handover: fence, let the target catch up (bounded), record the switchover so that we do
// not take the lock back, release the lock. The target acquires it at once.
func (l *Loop) handover(ctx context.Context, to string, o observation) error {
	if err := l.fence(ctx); err != nil {
		return err
	}
	st, err := l.db.Observe(ctx)
	if err != nil {
		return fmt.Errorf("handover: read our GTIDs: %w", err)
	}
	// Wait until the target has everything (its published position) or every connected
	// replica has been sent the whole binlog. "Sent" is not "received": the record below
	// carries our final GTIDs, and the target opens writes only once it has received them
	// all (else a normal election picks the most advanced node).
	deadline := l.now().Add(l.cfg.Timing.HandoverTimeout)
	target := to
	var lastBeat, lastView, lastWhy time.Time
	var ms []Member
	for ready := false; !ready; {
		if l.now().Sub(lastBeat) >= l.cfg.Timing.Interval {
			l.heartbeat(ctx, true, nil) // the loop may be stopped: keep the session alive
			lastBeat = l.now()
		}
		if l.now().Sub(lastView) >= 100*time.Millisecond {
			if view, err := l.cluster.View(ctx); err == nil {
				lastView = l.now()
				if to == "" {
					ms = l.members(view, Progress{Executed: st.Executed})
					target = HandoverTarget(State{Node: l.cfg.Node, Sync: view.Sync, Members: ms})
					if target == "" && !anyMayBecomeTarget(ms) {
						break // nobody to hand over to: release now
					}
					// Live members, none eligible yet (repointing, catching up, their keys
					// not yet updated): wait for one, within the timeout.
					if target == "" && l.now().Sub(lastWhy) >= time.Second {
						l.log.Info("handover: waiting for a live member to become eligible", "members", describe(ms))
						lastWhy = l.now()
					}
				}
				ready = target != "" && caught(view, target, st.Executed, l.db)
			}
		}
		if sent, err := l.db.SentAll(ctx); err == nil && sent && target != "" {
			ready = true
		}
		if !ready && !l.now().Before(deadline) {
			break
		}
		if !ready {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if target == "" || !l.now().Before(deadline) {
		// No target, or none caught up in time: no switchover record; releasing the lock
		// starts a normal election, which picks the most advanced node.
		l.log.Warn("handover: no replica caught up in time: releasing the lock to a normal election", "target", target,
			"timeout", l.cfg.Timing.HandoverTimeout, "members", describe(ms))
	} else if err := l.cluster.SetSwitchover(ctx, &Switchover{From: l.cfg.Node, To: target, GTID: st.Executed}); err != nil {
		return fmt.Errorf("handover: record switchover: %w", err)
	}
	if err := l.release(ctx); err != nil {
		return err
	}
	l.wasLeader = false
	l.log.Info(l.cfg.Node+" handed over", "to", target)
	return nil
}

// anyMayBecomeTarget reports whether a member other than us may soon be a handover target: a live
// replica whose history has not split from another's (one quarantined, benched or restoring
// is no replica and is not waited for).
func anyMayBecomeTarget(ms []Member) bool {
	for _, m := range ms {
		if m.Live && m.Role == RoleReplica && !m.Split {
			return true
		}
	}
	return false
}

// describe is the members as the log shows them when a handover cannot pick a target.
func describe(ms []Member) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s live=%v eligible=%v acking=%v cmp=%v rank=%d split=%v", m.Node, m.Live, m.Eligible, m.Acking, m.Cmp, m.Rank, m.Split)
	}
	return b.String()
}

// caught reports whether target has received every transaction in executed.
func caught(view ClusterView, target, executed string, db Database) bool {
	for _, m := range view.Members {
		if m.Node == target && m.Live {
			return hasAll(db, m.Progress(), executed)
		}
	}
	return false
}

// hasAll reports whether p has received every transaction of the executed set (a primary's
// GTID state): p is as advanced as that set, or more.
func hasAll(db Database, p Progress, executed string) bool {
	c := db.Compare(p, Progress{Executed: executed})
	return c == Equal || c == Ahead
}

// Stop is the graceful stop (docker stop), called once the loop has returned: a primary hands
// over to its best replica and releases the lock, a replica says it left (leaveForGood);
// every node then destroys its session and leaves the services.
func (l *Loop) Stop(ctx context.Context) error {
	var errs []error
	view, verr := l.cluster.View(ctx)
	if l.session != "" && view.Leader != nil && view.LeaderSession == l.session {
		if err := l.handover(ctx, "", observation{view: view}); err != nil {
			errs = append(errs, err)
			errs = append(errs, l.fence(ctx))
		}
	} else if l.session != "" && verr == nil && !l.lastDB.Writable {
		if err := l.leaveForGood(ctx); err != nil {
			l.log.Warn("leaving without a final position: should the primary be lost before this node is back, the others wait for it", "err", err)
		}
	}
	if l.session != "" {
		if err := l.cluster.DestroySession(ctx, l.session); err != nil {
			errs = append(errs, err)
		}
		l.session = ""
	}
	if err := l.cluster.SetPrimary(ctx, false); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// leaveTimeout bounds how long a leaving replica applies what it received before it
// publishes its final position.
const leaveTimeout = 2 * time.Second

// leaveForGood: a replica that stops stops fetching first (its IO thread is what acknowledges
// the primary's commits), then publishes its final position with Left, so that should the
// primary be lost too (a scale-down that removes it and its replicas at once) the others need
// not wait for this node: what it received is all it could have acknowledged (syncRule).
// When the IO thread cannot be seen stopped, it publishes nothing, and the others wait for it
// as for any lost member.
func (l *Loop) leaveForGood(ctx context.Context) error {
	if l.published.Node == "" {
		return errors.New("no member record published yet")
	}
	// First no longer eligible, so that a primary stopping at the same time (a scale-down)
	// does not hand over to this node; still acknowledging as published until the IO thread
	// has stopped.
	rec := l.published
	rec.Eligible, rec.Healthy, rec.Why, rec.Updated = false, false, "leaving: stopped", l.now()
	if err := l.cluster.PublishMember(ctx, l.session, rec); err == nil {
		l.published = rec
	}
	cctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	err := l.db.CatchUp(cctx) // stops the IO thread, then applies the relay log (best effort)
	cancel()
	st, oerr := l.db.Observe(ctx)
	switch {
	case oerr != nil:
		return errors.Join(err, oerr)
	case st.Replica != nil && (st.Replica.IORunning || st.Replica.Connecting):
		// Connecting (or preparing) is a live IO thread too: it acknowledges once connected.
		// Whatever CatchUp said, only a thread seen stopped counts (with the loop stopped,
		// nothing starts it again).
		return errors.Join(err, errors.New("the replica IO thread still runs"))
	}
	rec = l.published
	rec.Executed, rec.Received, rec.Left, rec.Acking = st.Executed, st.Received, true, st.Acking
	rec.Eligible, rec.Healthy, rec.Streaming = false, false, false
	rec.Why, rec.Updated = "left: stopped", l.now()
	if err := l.cluster.PublishMember(ctx, l.session, rec); err != nil {
		return err
	}
	l.published = rec
	return nil
}

// report updates the health check, the member key and the status.
func (l *Loop) report(ctx context.Context, a Action, o observation, actErr error) {
	role := RoleNone
	switch a.(type) {
	case StayPrimary, Promote, Acquire:
		if l.primaryReg {
			role = RolePrimary
		}
	case StayReplica, Follow:
		role = RoleReplica
	case SetAck:
		// Turning its side of semi-sync on or off leaves a replica of the holder a replica.
		if o.state.Holder != "" && !o.state.HeldByUs {
			role = RoleReplica
		}
	}
	ctx, cancel := context.WithTimeout(ctx, l.consulTimeout())
	defer cancel()
	healthy, note := l.health(role, o)
	note = PublicReason(PublicReason(note, o.db.Replica), o.before)
	s0 := o.state
	if o.dbErr != nil {
		s0.MySQLUp = true // a slow answer keeps our published lead; a dead server's session lapses
	}
	eligibleNow, _ := Candidacy(s0)
	if err := l.cluster.SetHealth(ctx, role, healthy, note); err != nil {
		l.log.Debug("health check update failed", "err", err)
	}
	s := o.state
	rec := MemberRecord{
		Node: l.cfg.Node, Address: l.cfg.Address, Port: l.cfg.Port, Role: role,
		Executed: o.db.Executed, Received: o.db.Received, Healthy: healthy,
		Eligible:  eligibleNow,
		WasLeader: l.wasLeader, Why: PublicReason(PublicReason(a.Why(), o.db.Replica), o.before), Updated: l.now(),
		Alone: l.alone, Acking: o.db.Acking, Boot: l.cfg.Boot,
	}
	if r := o.db.Replica; r != nil && r.Lag >= 0 {
		rec.Lag = r.Lag.Seconds()
	}
	if r := o.state.Replica; role == RoleReplica && r != nil {
		rec.Streaming = r.IORunning && !r.Connecting && r.Source != "" && r.Source == o.state.Holder
	}
	// Not when this cycle could not read Consul (no leader, say): the write would most likely
	// wait out its timeout too, and the next alive pass (so the watchdog) with it.
	if l.session != "" && o.state.ConsulOK && (changed(rec, l.published) || l.now().Sub(l.publishedAt) > 10*time.Second) {
		if err := l.cluster.PublishMember(ctx, l.session, rec); err == nil {
			l.published, l.publishedAt = rec, l.now()
		} else {
			l.log.Debug("publish member failed", "err", err)
		}
	}
	st := Status{
		Node: l.cfg.Node, Role: role, Healthy: healthy, Action: Describe(a), Holder: s.Holder,
		Session: l.session != "", Writable: o.db.Writable, Alone: l.alone, Executed: o.db.Executed, Replica: o.db.Replica,
		Members: o.view.Members, Updated: l.now(),
		Maintenance: o.view.Maintenance, Sync: o.view.Sync, History: o.view.History, Snapshot: o.view.Snapshot,
		MySQLUp: o.dbErr == nil, SemiSync: o.db.SemiSync, Acking: o.db.Acking,
		Promotions: l.promotions, Fences: l.fences, BinlogArchived: o.view.BinlogArchived,
	}
	if o.view.Leader != nil {
		st.Leader = o.view.Leader.Node
	}
	// promotedAt is set when this node opened writes and cleared by every fence: the cycle
	// that promoted observed the node before it did, and must advertise it already.
	// o.db is the server as it is after the action (observed again after a promotion); the
	// lock as observed before the cycle's Acquire is not: promotedAt stands in for it.
	if opened := !l.promotedAt.IsZero(); role == RolePrimary && o.db.Writable && (o.state.HeldByUs || opened) {
		if d := l.deadline(); !d.IsZero() {
			st.WritableUntil = d.Add(-l.cfg.Timing.FenceMargin)
		}
	}
	if actErr != nil {
		st.Error = actErr.Error()
	} else if o.dbErr != nil {
		st.Error = o.dbErr.Error()
	}
	l.mu.Lock()
	l.status = st
	l.mu.Unlock()
}

func (l *Loop) health(role Role, o observation) (bool, string) {
	switch {
	case o.dbErr != nil:
		return false, "mysqld: " + o.dbErr.Error()
	case role == RolePrimary:
		return o.db.Writable, "primary"
	case role == RoleReplica:
		r := o.db.Replica
		switch {
		case r == nil:
			return false, "replication not configured"
		case !r.IORunning || !r.SQLRunning:
			return false, "replication stopped: " + r.Error
		case r.Lag < 0 || r.Lag > l.cfg.MaxLag:
			return false, fmt.Sprintf("replication lag %s above %s", r.Lag, l.cfg.MaxLag)
		}
		return true, "replica"
	}
	return false, o.state.Node + " has no role yet"
}

func changed(a, b MemberRecord) bool {
	return a.Role != b.Role || a.Executed != b.Executed || a.Received != b.Received || a.Healthy != b.Healthy ||
		a.Streaming != b.Streaming || a.Alone != b.Alone || a.Acking != b.Acking ||
		a.Eligible != b.Eligible || a.WasLeader != b.WasLeader || a.Why != b.Why
}
