// Package ha is mysqlpilot's high-availability loop: observe the world, decide one action with
// a pure function, act through thin adapters.
//
// Decide is the failover specification. It reads only its State argument (time included), has
// no I/O, and returns one Action naming what to do and why. The loop logs that sentence once per
// change, like Patroni's run_cycle, so the log reads as a timeline of decisions.
package ha

import "time"

// Role is what a node is, as seen by itself or published in its member key.
type Role string

// Roles.
const (
	RoleNone    Role = ""        // not serving yet (starting, quarantined)
	RolePrimary Role = "primary" // holds the lock and accepts writes
	RoleReplica Role = "replica" // replicates from the lock holder
)

// Cmp compares a member's data with ours.
type Cmp int

// Comparisons of a member's GTID position with ours.
const (
	Equal    Cmp = iota // same transactions
	Ahead               // the member has every transaction we have, and more
	Behind              // we have every transaction the member has, and more
	Diverged            // each has transactions the other lacks
)

// Member is another node as published under <prefix>members/<node>, bound to its session.
type Member struct {
	Node      string
	Role      Role
	Eligible  bool // healthy and willing to be primary (not quarantined, not in maintenance)
	Cmp       Cmp  // its received GTID position compared with ours
	WasLeader bool // it held the lock most recently (ties go to it: no needless failover)
	Streaming bool // replicating from the lock holder (its IO thread can acknowledge commits)
	// Live: a session holds its member key. A member whose session ended may still be
	// running (cut off from Consul): it is never a candidate, but as a sync-set member it
	// may hold acknowledged writes, so it still counts in the sync-set rule.
	Live bool
	// Acking: its replica side of semi-sync is on (it acknowledges the primary's commits).
	Acking bool
	// Rank: how many other live eligible members are further along than it (0: none is).
	Rank int
	// Split: its history diverged from another live eligible member's.
	Split bool
	// Connected: (seen by the primary) it streams from us now, whatever its session says.
	Connected bool
	// Boot: the boot id it publishes (new each time its server starts).
	Boot string
	// Left: it left for good with its IO thread stopped (MemberRecord.Left): Cmp then
	// compares everything it could have acknowledged with what we have.
	Left bool
	// CoveredBy (a member that Left): the live members that stream and acknowledge and have
	// everything it received.
	CoveredBy []string
}

// SyncSet is the primary's record, in Consul, of the members allowed to acknowledge its
// commits (Patroni's synchronous mode for MariaDB semi-sync). A member turns its replica side
// of semi-sync on only while it is in the record of the current lock holder; the primary adds
// a member to the record before that, and drops one only once it no longer acknowledges (or,
// failing that, after saying in its member key that it may hold writes no member has).
// So every acknowledged write is on the primary and on a member of the record, or the primary
// said it is alone: after the primary is lost, only a member of the record that is as advanced
// as every other member may take over.
type SyncSet struct {
	Leader  string   `json:"leader"`  // the primary that wrote it
	Members []string `json:"members"` // sorted; empty: nobody acknowledges (the primary is alone)
	// Boots: each member's boot id when it was recorded. A member whose server restarted
	// since has lost what it held only in its relay log (MariaDB discards unapplied relay
	// logs at restart), so it no longer vouches for the writes it acknowledged.
	Boots   map[string]string `json:"boots,omitempty"`
	Updated time.Time         `json:"updated"`
	// Async: written by a primary without semi-sync (asynchronous replication), which
	// promises nothing about acknowledged writes: it replaces an earlier semi-sync primary's
	// record, so that record never governs elections after it (no sync-set rule applies).
	Async bool `json:"async,omitempty"`
}

// Has reports whether node is in the set.
func (s *SyncSet) Has(node string) bool {
	if s == nil {
		return false
	}
	for _, m := range s.Members {
		if m == node {
			return true
		}
	}
	return false
}

// ReplicaState is this node's replication, when it is configured.
type ReplicaState struct {
	Source     string // node name of the primary it replicates from ("" when unknown)
	IORunning  bool
	Connecting bool // the IO thread is (re)connecting, without an error yet
	SQLRunning bool
	Lag        time.Duration // -1 when unknown
	Error      string        // last IO or SQL error
	Purged     bool          // the source no longer has the binlogs after our position
}

// Switchover is an operator's request (mysqlpilot switchover [--to NODE]).
type Switchover struct {
	From string `json:"from"` // the primary that must hand over
	To   string `json:"to"`   // the target, or "" for the most advanced replica
	// GTID is the fenced primary's executed set, written by the handover: the target opens
	// writes only once it has received all of it.
	GTID string `json:"gtid,omitempty"`
}

// State is everything Decide reads: one observation of the world.
type State struct {
	Now  time.Time
	Node string // this node

	// This node's server.
	MySQLUp  bool // answers SQL
	Writable bool // read_only is off
	// WatchdogGone: writable without the in-server watchdog that fences a frozen supervisor.
	WatchdogGone bool
	Replica      *ReplicaState // nil when not configured as a replica
	Errant       bool          // has transactions the current primary lacks
	Empty        bool          // no transactions at all (a fresh datadir)
	// WasLeader: this node held the lock most recently (it wins ties, like a member's WasLeader).
	WasLeader bool
	// Benched: a promotion failed repeatedly here; no candidacy until the bench time is over.
	Benched bool
	// PromoteFails: promotions that failed in a row while holding the lock (see Release).
	PromoteFails int
	// SemiSyncAuto: adaptive semi-synchronous replication (ha.semiSync without
	// ha.semiSyncStrict): the primary waits for a replica's acknowledgement of each commit
	// while another node could be promoted, and commits alone when none could.
	SemiSyncAuto bool
	PromotedAt   time.Time // when this node last opened writes as primary (zero: not primary)
	// SemiSync: semi-synchronous replication is configured (adaptive or strict): the sync-set
	// rules apply. Without it (asynchronous replication) there is no sync set.
	SemiSync bool
	// Acking: this node's replica side of semi-sync is on.
	Acking bool
	// AckStalled: how long, as primary, its commits have waited for an acknowledgement
	// without a break (0 while none waits).
	AckStalled time.Duration
	// Sync is the sync-set record (nil when there is none).
	Sync *SyncSet
	// LastLeader: with the lock free, the node that held it last ("" when unknown).
	LastLeader string
	// ConsulOK: this cycle's read of the cluster's keys succeeded (else the view is the last
	// good one).
	ConsulOK bool
	// Boot: this node's boot id (new each time its server starts; see SyncSet.Boots).
	Boot string
	// Truncated: this start's crash recovery may have dropped transactions this node wrote
	// as primary (mysql.SemiSyncConfig.TruncateUnacknowledged), or its datadir was restored
	// from a snapshot: it may lack writes it acknowledged, which its set's members hold.
	Truncated bool
	// AloneLeader: the lock is free and its last holder said it may have acknowledged writes
	// no replica has (dead or alive): only it may take the lock; another would lose them.
	AloneLeader string

	// Consul.
	Session  string    // our session ID, "" when we have none
	Deadline time.Time // earliest instant another node could take our lock (zero without a session)
	Holder   string    // node holding the leader lock, "" when free
	HeldByUs bool      // the lock is held by our current session
	// FreeSince is when the lock was first seen free in the current vacancy (zero when held).
	FreeSince time.Time
	// HeldSince is when this node first saw the current holder hold the lock (zero when free).
	HeldSince time.Time
	Members   []Member // other nodes with live member keys

	// Initialized: the cluster has been bootstrapped once (<prefix>initialized exists), so an
	// empty node must never become primary.
	Initialized  bool
	Maintenance  bool        // automatic failover paused
	Switchover   *Switchover // pending switchover request, or nil
	LastFailover time.Time   // when we last saw the lock change holder without a switchover
}

// Timing is every interval of the HA loop and of the Consul records behind it, set once from
// the configuration; the intervals derived from them are its methods, computed in one place.
type Timing struct {
	SessionTTL time.Duration // Consul session TTL (Consul may stretch it to 2x)
	CheckTTL   time.Duration // the alive check the session is bound to
	LockDelay  time.Duration // Consul's lock delay after a session ends
	Interval   time.Duration // one cycle at least this often (the health interval)

	FenceMargin     time.Duration // fence this long before Deadline
	CandidateWindow time.Duration // wait this long after the lock frees before acquiring
	// TakeoverAfter: if the best candidate has not taken the lock this long after the window,
	// the next one may (the best may be stuck). Default 5 x CandidateWindow.
	TakeoverAfter   time.Duration
	FailoverBlock   time.Duration // refuse a second automatic failover within this period
	HandoverTimeout time.Duration // a graceful handover waits at most this for a replica
}

// RenewEvery is how often the session is renewed: a third of its TTL.
func (t Timing) RenewEvery() time.Duration { return t.SessionTTL / 3 }

// ObserveTimeout bounds one read of mysqld: half the alive check's TTL.
func (t Timing) ObserveTimeout() time.Duration { return t.CheckTTL / 2 }

// ConsulTimeout bounds each Consul call of a cycle, so a Consul that drops packets cannot hold
// the loop past its fence deadline: the health interval, at least 500ms.
func (t Timing) ConsulTimeout() time.Duration { return max(t.Interval, 500*time.Millisecond) }

// ReadCheckTTL is the TTL of the read service's health check: three alive-check TTLs, so a
// replica does not flap out of the read pool on one slow cycle.
func (t Timing) ReadCheckTTL() time.Duration { return 3 * t.CheckTTL }

// FailoverWithin bounds how long an automatic failover takes after a primary is lost: its
// session ends (its check expires, or, where nobody can expire the check (an agent that died
// with the node), its TTL runs out, which Consul may stretch to twice the TTL), the lock delay
// passes, the candidates collect and, if the best is stuck, the next takes over.
func (t Timing) FailoverWithin() time.Duration {
	t = t.withDefaults()
	return 2*t.SessionTTL + t.LockDelay + t.CandidateWindow + t.TakeoverAfter + t.Interval
}

func (t Timing) withDefaults() Timing {
	if t.TakeoverAfter == 0 {
		t.TakeoverAfter = 5 * t.CandidateWindow
	}
	return t
}
