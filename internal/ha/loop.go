package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// followRetry is the least time between two attempts to (re)start replication from the same
// primary.
const followRetry = 5 * time.Second

// Config is the loop's configuration.
type Config struct {
	Node       string
	Address    string // this node's address for replicas and clients
	Port       int
	ServerID   uint32
	Timing     Timing
	SessionTTL time.Duration
	CheckTTL   time.Duration
	Interval   time.Duration // one cycle at least this often (the health interval)
	MaxLag     time.Duration // replicas above this lag report unhealthy
	// HandoverTimeout bounds how long a graceful handover waits for a replica to catch up.
	HandoverTimeout time.Duration
}

// Status is what `mysqlpilot status` shows: the last cycle's observation and decision.
type Status struct {
	Node     string         `json:"node"`
	Role     Role           `json:"role"`
	Healthy  bool           `json:"healthy"`
	Action   string         `json:"action"`
	Holder   string         `json:"holder"`
	Session  bool           `json:"session"`
	Writable bool           `json:"writable"`
	Executed string         `json:"gtid_executed"`
	Replica  *ReplicaStatus `json:"replica,omitempty"`
	Error    string         `json:"error,omitempty"`
	Members  []MemberRecord `json:"members,omitempty"`
	Updated  time.Time      `json:"updated"`
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
	lastHolder  string
	wasLeader   bool
	lastWhy     string
	published   MemberRecord
	publishedAt time.Time
	primaryReg  bool
	lastFollow  time.Time // when replication was last (re)pointed, and at whom
	followed    string

	mu     sync.Mutex
	status Status
}

// New makes a loop. now is the clock (time.Now in production).
func New(cfg Config, cluster Cluster, db Database, log *slog.Logger, now func() time.Time) *Loop {
	if cfg.Timing.TakeoverAfter == 0 {
		cfg.Timing.TakeoverAfter = 5 * cfg.Timing.CandidateWindow
	}
	return &Loop{cfg: cfg, cluster: cluster, db: db, log: log, now: now, status: Status{Node: cfg.Node}}
}

// Status returns the last cycle's status; safe from any goroutine.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// Run cycles until ctx ends: every Interval, and at once when wake fires (a Consul watch saw
// the cluster's keys change).
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
		l.Cycle(ctx)
		t.Reset(l.cfg.Interval)
	}
}

// observation is what one cycle read, kept for act and for status.
type observation struct {
	state State
	db    DBState
	view  ClusterView
	dbErr error
}

// Cycle runs one observe -> decide -> act round and returns the action taken.
func (l *Loop) Cycle(ctx context.Context) Action {
	o := l.observe(ctx)
	a := Decide(o.state, l.cfg.Timing)
	if d := Describe(a); d != l.lastWhy {
		l.log.Info(d, "holder", o.state.Holder, "session", o.state.Session != "")
		l.lastWhy = d
	}
	err := l.act(ctx, a, o)
	if err != nil {
		l.log.Warn("action failed", "action", Describe(a), "err", err)
	}
	switch a.(type) {
	case Acquire, Promote, Fence, Follow, Handover, Quarantine:
		// The server changed: report what it is now, not what it was (a new primary must not
		// fail its checks for a cycle).
		octx, cancel := context.WithTimeout(ctx, l.cfg.CheckTTL/2)
		o.db, o.dbErr = l.db.Observe(octx)
		cancel()
	}
	l.report(ctx, a, o, err)
	return a
}

// observe reads mysqld and Consul, keeps the session alive, and builds the State.
func (l *Loop) observe(ctx context.Context) observation {
	var o observation
	octx, cancel := context.WithTimeout(ctx, l.cfg.CheckTTL/2)
	o.db, o.dbErr = l.db.Observe(octx)
	cancel()
	up := o.dbErr == nil
	l.heartbeat(ctx, up, o.dbErr)

	view, err := l.cluster.View(ctx)
	if err != nil {
		l.log.Debug("consul read failed; deciding on the last good view", "err", err)
	}
	o.view = view
	now := l.now()
	s := State{
		Now: now, Node: l.cfg.Node, MySQLUp: up, Writable: o.db.Writable, Empty: o.db.Empty,
		Session: l.session, Deadline: l.deadline(), WasLeader: l.wasLeader,
		Maintenance: view.Maintenance, Switchover: view.Switchover, Initialized: view.Initialized,
	}
	if view.Leader != nil {
		s.Holder = view.Leader.Node
		s.HeldByUs = l.session != "" && view.LeaderSession == l.session
		l.freeSince = time.Time{}
		if s.Holder != l.lastHolder && l.lastHolder != "" && s.Holder != l.cfg.Node {
			l.wasLeader = false
		}
		l.lastHolder = s.Holder
	} else if l.freeSince.IsZero() {
		l.freeSince = now
	}
	s.FreeSince = l.freeSince
	if r := o.db.Replica; r != nil {
		s.Replica = &ReplicaState{IORunning: r.IORunning, Connecting: r.Connecting, SQLRunning: r.SQLRunning, Lag: r.Lag, Error: r.Error}
		if view.Leader != nil && r.Host == view.Leader.Address && r.Port == view.Leader.Port {
			s.Replica.Source = view.Leader.Node
		}
		s.Errant = r.Errant
	}
	for _, m := range view.Members {
		if !m.Live || m.Node == l.cfg.Node {
			continue
		}
		s.Members = append(s.Members, Member{
			Node: m.Node, Role: m.Role, Eligible: m.Eligible, WasLeader: m.WasLeader,
			Cmp: l.db.Compare(m.Received, o.db.Received),
		})
	}
	o.state = s
	return o
}

// heartbeat passes the alive check and renews the session; the sent-times of the successes
// are what the fence deadline is computed from.
//
// A node whose mysqld does not answer stops passing the alive check rather than failing it:
// failing it would end the session (and a primary's lock) on one slow query; not passing it
// ends the session within checkTTL if mysqld stays away.
func (l *Loop) heartbeat(ctx context.Context, up bool, dbErr error) {
	sent := l.now()
	if up {
		if err := l.cluster.SetAlive(ctx, true, "mysqld answers"); err == nil {
			l.lastAliveOK = sent
		} else {
			l.log.Debug("alive check update failed", "err", err)
		}
	} else {
		l.log.Debug("not passing the alive check: mysqld does not answer", "err", dbErr)
	}
	if l.session == "" || l.now().Sub(l.lastRenewOK) < l.cfg.SessionTTL/3 {
		return
	}
	sent = l.now()
	switch err := l.cluster.RenewSession(ctx, l.session); {
	case err == nil:
		l.lastRenewOK = sent
	case errors.Is(err, ErrSessionGone):
		l.log.Warn("consul session is gone", "session", l.session)
		l.session = ""
	default:
		l.log.Debug("session renewal failed", "err", err)
	}
}

// deadline is the earliest instant another node could take a lock our session holds.
func (l *Loop) deadline() time.Time {
	if l.session == "" {
		return time.Time{}
	}
	a := l.lastAliveOK.Add(l.cfg.CheckTTL)
	b := l.lastRenewOK.Add(l.cfg.SessionTTL)
	if a.Before(b) {
		return a
	}
	return b
}

// fresh reports whether our lock is still safely ours right now.
func (l *Loop) fresh() bool {
	d := l.deadline()
	return !d.IsZero() && l.now().Before(d.Add(-l.cfg.Timing.FenceMargin))
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
	case StayPrimary:
		return l.stayPrimary(ctx)
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
		l.log.Info(l.cfg.Node+" follows "+a.Primary, "address", o.view.Leader.Address, "port", o.view.Leader.Port)
		return l.db.Follow(ctx, o.view.Leader.Address, o.view.Leader.Port)
	case StayReplica:
		return nil
	case Handover:
		return l.handover(ctx, a.To, o)
	case Quarantine:
		l.log.Error("QUARANTINED: "+a.Why(), "node", l.cfg.Node)
		return l.db.Fence(ctx)
	}
	return fmt.Errorf("unknown action %T", a)
}

// fence closes writes first, then stops advertising the primary.
func (l *Loop) fence(ctx context.Context) error {
	err := l.db.Fence(ctx)
	if err != nil {
		err = fmt.Errorf("fence: %w", err)
	} else {
		l.log.Warn(l.cfg.Node + " fenced itself: read-only, client sessions killed")
	}
	if e := l.cluster.SetPrimary(ctx, false); e == nil {
		l.primaryReg = false
	} else {
		err = errors.Join(err, e)
	}
	return err
}

func (l *Loop) promote(ctx context.Context, o observation) error {
	if err := l.whileAlive(ctx, l.db.CatchUp); err != nil {
		return fmt.Errorf("promote: apply relay log: %w", err)
	}
	if !l.fresh() {
		return errors.New("promote: lock renewal went stale while catching up: not opening writes")
	}
	if err := l.db.ArmWatchdog(ctx, l.watchdogWindow()); err != nil {
		return fmt.Errorf("promote: arm watchdog: %w", err)
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
	return l.stayPrimary(ctx)
}

// whileAlive runs fn (a long step: applying a relay log) while this goroutine keeps passing
// the alive check and renewing the session, so the lock does not lapse meanwhile.
func (l *Loop) whileAlive(ctx context.Context, fn func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
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
	// The server's event runs once a second, so it may fire up to 1s after the deadline.
	d := l.deadline().Sub(l.now()) - l.cfg.Timing.FenceMargin - time.Second
	if d < time.Second {
		d = time.Second
	}
	return d
}

func (l *Loop) stayPrimary(ctx context.Context) error {
	if err := l.db.ArmWatchdog(ctx, l.watchdogWindow()); err != nil {
		return fmt.Errorf("arm watchdog: %w", err)
	}
	if !l.primaryReg {
		if err := l.cluster.SetPrimary(ctx, true); err != nil {
			return err
		}
		l.primaryReg = true
	}
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
	deadline := l.now().Add(l.cfg.HandoverTimeout)
	target := to
	for {
		l.heartbeat(ctx, true, nil) // the loop may be stopped: keep the session alive meanwhile
		view, err := l.cluster.View(ctx)
		if err == nil {
			if target == "" {
				target = l.bestReplica(view, st.Executed)
			}
			if caught(view, target, st.Executed, l.db) {
				break
			}
		}
		if sent, err := l.db.SentAll(ctx); err == nil && sent && target != "" {
			break // every connected replica has the whole binlog in its relay log
		}
		if !l.now().Before(deadline) {
			l.log.Warn("handover: replica did not catch up in time; handing over anyway", "target", target, "timeout", l.cfg.HandoverTimeout)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := l.cluster.SetSwitchover(ctx, &Switchover{From: l.cfg.Node, To: target}); err != nil {
		return fmt.Errorf("handover: record switchover: %w", err)
	}
	if err := l.release(ctx); err != nil {
		return err
	}
	l.wasLeader = false
	l.log.Info(l.cfg.Node+" handed over", "to", target)
	return nil
}

// bestReplica picks the most advanced eligible live member (ties by name).
func (l *Loop) bestReplica(view ClusterView, mine string) string {
	best, bestRecv := "", ""
	for _, m := range view.Members {
		if !m.Live || !m.Eligible || m.Node == l.cfg.Node {
			continue
		}
		if best == "" || l.db.Compare(m.Received, bestRecv) == Ahead || (l.db.Compare(m.Received, bestRecv) == Equal && m.Node < best) {
			best, bestRecv = m.Node, m.Received
		}
	}
	return best
}

// caught reports whether target has received every transaction in executed.
func caught(view ClusterView, target, executed string, db Database) bool {
	for _, m := range view.Members {
		if m.Node == target && m.Live {
			c := db.Compare(m.Received, executed)
			return c == Equal || c == Ahead
		}
	}
	return false
}

// Stop is the graceful stop (docker stop): a primary hands over to its best replica and
// releases the lock; every node then destroys its session and leaves the services.
func (l *Loop) Stop(ctx context.Context) error {
	var errs []error
	view, _ := l.cluster.View(ctx)
	if l.session != "" && view.Leader != nil && view.LeaderSession == l.session {
		if err := l.handover(ctx, "", observation{view: view}); err != nil {
			errs = append(errs, err)
			errs = append(errs, l.fence(ctx))
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
	}
	healthy, note := l.health(role, o)
	if err := l.cluster.SetHealth(ctx, role, healthy, note); err != nil {
		l.log.Debug("health check update failed", "err", err)
	}
	s := o.state
	rec := MemberRecord{
		Node: l.cfg.Node, Address: l.cfg.Address, Port: l.cfg.Port, Role: role,
		Executed: o.db.Executed, Received: o.db.Received, Healthy: healthy,
		Eligible:  s.MySQLUp && !s.Errant && !s.Maintenance && !(s.Empty && s.Initialized),
		WasLeader: l.wasLeader, Why: a.Why(), Updated: l.now(),
	}
	if r := o.db.Replica; r != nil && r.Lag >= 0 {
		rec.Lag = r.Lag.Seconds()
	}
	if l.session != "" && (changed(rec, l.published) || l.now().Sub(l.publishedAt) > 10*time.Second) {
		if err := l.cluster.PublishMember(ctx, l.session, rec); err == nil {
			l.published, l.publishedAt = rec, l.now()
		} else {
			l.log.Debug("publish member failed", "err", err)
		}
	}
	st := Status{
		Node: l.cfg.Node, Role: role, Healthy: healthy, Action: Describe(a), Holder: s.Holder,
		Session: l.session != "", Writable: o.db.Writable, Executed: o.db.Executed, Replica: o.db.Replica,
		Members: o.view.Members, Updated: l.now(),
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
		a.Eligible != b.Eligible || a.WasLeader != b.WasLeader || a.Why != b.Why
}
