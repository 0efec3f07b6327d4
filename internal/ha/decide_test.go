package ha

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var timing = Timing{
	FenceMargin:     1500 * time.Millisecond,
	CandidateWindow: time.Second,
	TakeoverAfter:   5 * time.Second,
}

// base is node b, healthy, with a session and a fresh deadline, the lock held by a.
func base() State {
	return State{
		Now: t0, Node: "b", MySQLUp: true, Session: "sess-b", Deadline: t0.Add(5 * time.Second),
		Holder: "a", Replica: &ReplicaState{Source: "a", IORunning: true, SQLRunning: true},
		Initialized: true, ConsulOK: true,
	}
}

func primary() State {
	s := base()
	s.Holder, s.HeldByUs, s.Writable, s.Replica = "b", true, true, nil
	return s
}

func free(vacant time.Duration) State {
	s := base()
	s.Holder, s.FreeSince = "", t0.Add(-vacant)
	s.Replica = &ReplicaState{Source: "a", IORunning: false, SQLRunning: true, Error: "error reconnecting to master"}
	return s
}

func with(s State, f func(*State)) State { f(&s); return s }

// TestDecide is the failover specification: each case names the branch and the sentence it logs.
func TestDecide(t *testing.T) {
	cases := []struct {
		name  string
		state State
		want  string // Describe(action) prefix
	}{
		// Rule 1: fencing comes first.
		{"fence because writable while another node holds the lock",
			with(base(), func(s *State) { s.Writable = true }),
			"Fence: writable but a holds the lock"},
		{"fence because writable while the lock is free",
			with(free(10*time.Second), func(s *State) { s.Writable = true }),
			"Fence: writable without the lock (the lock is free)"},
		{"fence because renew failed past deadline",
			with(primary(), func(s *State) { s.Now = s.Deadline.Add(-time.Second) }),
			"Fence: lock renewal is late: fence deadline passed 500ms ago"},
		{"fence even when mysqld looks down, if it is writable",
			with(base(), func(s *State) { s.Writable, s.MySQLUp = true, false }),
			"Fence:"},
		{"fence because the in-server watchdog is gone",
			with(primary(), func(s *State) { s.WatchdogGone = true }),
			"Fence: the in-server watchdog is gone"},
		{"no fence just inside the margin",
			with(primary(), func(s *State) { s.Now = s.Deadline.Add(-1501 * time.Millisecond) }),
			"StayPrimary: the primary, with the lock"},
		{"fence without a session even if holder field says us",
			with(primary(), func(s *State) { s.Session, s.Deadline = "", time.Time{} }),
			"Fence: lock renewal is late"},

		// mysqld and session.
		{"let the lock lapse (not release it) while mysqld does not answer",
			with(primary(), func(s *State) { s.Writable, s.MySQLUp = false, false }),
			"Wait: mysqld is not answering: letting the lock lapse"},
		{"wait while mysqld is starting",
			with(base(), func(s *State) { s.MySQLUp = false }),
			"Wait: mysqld is not answering"},
		{"create a session when there is none",
			with(base(), func(s *State) { s.Session, s.Deadline = "", time.Time{} }),
			"NewSession: no Consul session"},

		// Holder.
		{"promote because we hold the lock and are read-only",
			with(primary(), func(s *State) { s.Writable = false }),
			"Promote: we hold the lock"},
		{"do not promote with a stale lock",
			with(primary(), func(s *State) { s.Writable = false; s.Now = s.Deadline }),
			"Wait: holding the lock but its renewal is late"},
		{"stay primary",
			primary(),
			"StayPrimary: the primary, with the lock"},
		{"hand over on switchover to an eligible replica",
			with(primary(), func(s *State) {
				s.Switchover = &Switchover{From: "b", To: "c"}
				s.Members = []Member{{Node: "c", Eligible: true, Role: RoleReplica}}
			}),
			"Handover(c): switchover requested"},
		{"hand over to the best replica when no target is named",
			with(primary(), func(s *State) {
				s.Switchover = &Switchover{From: "b"}
				s.Members = []Member{{Node: "c", Eligible: true, Live: true}}
			}),
			"Handover(c): switchover requested"},
		// Giving up after failed promotions.
		{"release the lock after three failed promotions",
			with(primary(), func(s *State) { s.Writable, s.PromoteFails = false, MaxPromoteFails }),
			"Release: promotion failed 3 times in a row: releasing the lock and sitting out 30s"},
		{"promote again after two",
			with(primary(), func(s *State) { s.Writable, s.PromoteFails = false, MaxPromoteFails-1 }),
			"Promote: we hold the lock"},
		{"a writable primary is never released for old failures",
			with(primary(), func(s *State) { s.PromoteFails = MaxPromoteFails }),
			"StayPrimary:"},
		{"ignore switchover to an ineligible target",
			with(primary(), func(s *State) {
				s.Switchover = &Switchover{From: "b", To: "c"}
				s.Members = []Member{{Node: "c", Eligible: false}}
			}),
			"StayPrimary: switchover to c requested, but it is not an eligible member"},
		{"ignore switchover with no replica at all",
			with(primary(), func(s *State) { s.Switchover = &Switchover{From: "b"} }),
			"StayPrimary: switchover requested, but no replica is eligible"},
		{"ignore a switchover addressed to another primary",
			with(primary(), func(s *State) { s.Switchover = &Switchover{From: "z", To: "c"} }),
			"StayPrimary: the primary, with the lock"},

		// Followers.
		{"follow the lock holder when not replicating",
			with(base(), func(s *State) { s.Replica = nil }),
			"Follow(a): a holds the lock"},
		{"follow new leader after failover",
			with(base(), func(s *State) { s.Holder = "c" }),
			"Follow(c): c holds the lock"},
		{"restart replication that stopped with an error",
			with(base(), func(s *State) { s.Replica.IORunning, s.Replica.Error = false, "error connecting to master" }),
			"Follow(a): replication from a stopped: error connecting to master"},
		{"do not restart replication that is still connecting",
			with(base(), func(s *State) { s.Replica.IORunning, s.Replica.Connecting = false, true }),
			"StayReplica: connecting to a"},
		{"restart replication whose connection failed",
			with(base(), func(s *State) {
				s.Replica.IORunning, s.Replica.Connecting, s.Replica.Error = false, true, "error connecting to master"
			}),
			"Follow(a): replication from a stopped: error connecting to master"},
		{"never follow ourselves when an earlier session of ours holds the lock",
			with(base(), func(s *State) { s.Holder, s.Replica = "b", nil }),
			"Wait: the lock is held by an earlier session of this node"},
		{"stay replica",
			base(),
			"StayReplica: replica of a"},
		{"quarantine because of errant transactions",
			with(base(), func(s *State) { s.Errant = true }),
			"Quarantine: this node has transactions a lacks"},
		{"re-seed when the primary purged the binlogs this node needs",
			with(base(), func(s *State) {
				s.Replica.IORunning, s.Replica.Purged = false, true
				s.Replica.Error = "Could not find GTID state requested by slave in any binlog files. Probably the slave state is too old and required binlog files have been purged."
			}),
			"Quarantine: a no longer has the binlogs after this node's position"},
		{"purged binlogs of a former primary: follow the new one",
			with(base(), func(s *State) {
				s.Replica.Source, s.Replica.IORunning, s.Replica.Purged = "c", false, true
			}),
			"Follow(a): a holds the lock"},

		// Candidates: the lock is free.
		{"wait for the candidate window",
			free(500 * time.Millisecond),
			"Wait: the lock is free: collecting candidates"},
		{"acquire as the only candidate after the window",
			free(time.Second),
			"Acquire: the lock is free and this node is the most advanced eligible one"},
		{"wait because a member is more advanced",
			with(free(2*time.Second), func(s *State) { s.Members = []Member{{Node: "c", Eligible: true, Cmp: Ahead}} }),
			"Wait: the lock is free and c is more advanced"},
		{"keep waiting for a more advanced member however long it takes",
			with(free(time.Hour), func(s *State) { s.Members = []Member{{Node: "c", Eligible: true, Cmp: Ahead}} }),
			"Wait: the lock is free and c is more advanced"},
		{"ignore a more advanced member that is not eligible",
			with(free(2*time.Second), func(s *State) { s.Members = []Member{{Node: "c", Eligible: false, Cmp: Ahead}} }),
			"Acquire:"},
		{"acquire when the others are behind",
			with(free(2*time.Second), func(s *State) { s.Members = []Member{{Node: "a0", Eligible: true, Cmp: Behind}} }),
			"Acquire:"},
		{"tie goes to the lower name",
			with(free(2*time.Second), func(s *State) { s.Members = []Member{{Node: "a0", Eligible: true, Cmp: Equal}} }),
			"Wait: the lock is free and a0 is as advanced and preferred"},
		{"tie won against a higher name",
			with(free(2*time.Second), func(s *State) { s.Members = []Member{{Node: "c", Eligible: true, Cmp: Equal}} }),
			"Acquire:"},
		{"tie goes to the last leader whatever its name",
			with(free(2*time.Second), func(s *State) { s.Members = []Member{{Node: "z", Eligible: true, Cmp: Equal, WasLeader: true}} }),
			"Wait: the lock is free and z is as advanced and preferred"},
		{"last leader wins the tie itself",
			with(free(2*time.Second), func(s *State) {
				s.WasLeader = true
				s.Members = []Member{{Node: "a0", Eligible: true, Cmp: Equal}}
			}),
			"Acquire:"},
		{"take over from a stuck equal candidate",
			with(free(7*time.Second), func(s *State) { s.Members = []Member{{Node: "a0", Eligible: true, Cmp: Equal}} }),
			"Acquire: the lock is still free 7s after the window and a0 (no more advanced) has not taken it"},
		{"the most advanced wins over a preferred equal",
			with(free(2*time.Second), func(s *State) {
				s.Members = []Member{{Node: "a0", Eligible: true, Cmp: Equal, WasLeader: true}, {Node: "c", Eligible: true, Cmp: Ahead}}
			}),
			"Wait: the lock is free and c is more advanced"},
		{"pause failover in maintenance",
			with(free(time.Minute), func(s *State) { s.Maintenance = true }),
			"Wait: the lock is free but maintenance mode pauses automatic failover"},
		{"an empty node never becomes primary of an initialized cluster",
			with(free(time.Minute), func(s *State) { s.Empty = true }),
			"Wait: not a candidate: empty datadir in an initialized cluster"},
		{"first boot: an empty node may bootstrap an uninitialized cluster",
			with(free(time.Minute), func(s *State) { s.Empty, s.Initialized, s.Replica = true, false, nil }),
			"Acquire:"},
		{"no candidacy with a broken SQL thread",
			with(free(time.Minute), func(s *State) { s.Replica.SQLRunning, s.Replica.Error = false, "Duplicate entry" }),
			"Wait: not a candidate: replication SQL error: Duplicate entry"},
		{"errant node never becomes primary",
			with(free(time.Minute), func(s *State) { s.Errant = true }),
			"Quarantine:"},
		{"switchover target acquires at once",
			with(free(0), func(s *State) { s.Switchover = &Switchover{From: "a", To: "b"} }),
			"Acquire: switchover target"},
		{"others wait for the switchover target",
			with(free(time.Minute), func(s *State) {
				s.Switchover = &Switchover{From: "a", To: "c"}
				s.Members = []Member{{Node: "c", Eligible: true, Cmp: Behind}}
			}),
			"Wait: switchover to c in progress"},
		{"the old primary does not take the lock back during its handover",
			with(free(time.Minute), func(s *State) {
				s.Switchover = &Switchover{From: "b", To: "c"}
				s.Members = []Member{{Node: "c", Eligible: true, Cmp: Behind}}
			}),
			"Wait: handed over: waiting for c to take the lock"},
		{"a switchover record whose target is gone is a normal election",
			with(free(time.Minute), func(s *State) {
				s.Switchover = &Switchover{From: "b", To: "c"}
				s.Members = []Member{{Node: "c", Eligible: false}}
			}),
			"Acquire: the lock is free and this node is the most advanced eligible one"},
		{"a switchover record without a target does not strand its author after a restart",
			with(free(time.Minute), func(s *State) { s.Switchover = &Switchover{From: "b"} }),
			"Acquire:"},
		{"a diverged member is never a tie to win by name",
			with(free(time.Minute), func(s *State) { s.Members = []Member{{Node: "c", Eligible: true, Cmp: Diverged}} }),
			"Wait: the lock is free and c has diverged from this node"},
		{"a diverged member blocks even a preferred equal",
			with(free(time.Minute), func(s *State) {
				s.Members = []Member{{Node: "a0", Eligible: true, Cmp: Equal}, {Node: "z", Eligible: true, Cmp: Diverged}}
			}),
			"Wait: the lock is free and z has diverged"},
		{"benched after failed promotions",
			with(free(time.Minute), func(s *State) { s.Benched = true }),
			"Wait: not a candidate: benched after failed promotions"},
		{"failover block",
			with(free(time.Minute), func(s *State) { s.LastFailover = t0.Add(-2 * time.Minute) }),
			"Wait: the lock is free but the last failover was 2m0s ago"},
	}
	tm := timing
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tt := tm
			if strings.HasPrefix(c.name, "failover block") {
				tt.FailoverBlock = 5 * time.Minute
			}
			got := Describe(Decide(c.state, tt))
			if !strings.HasPrefix(got, c.want) {
				t.Fatalf("Decide = %q\nwant prefix %q", got, c.want)
			}
		})
	}
}

// TestNoWritableWithoutFreshLock checks safety rule 1 over a grid of states: whatever else is
// true, Decide never leaves a node writable (or makes it writable) without a fresh lock.
func TestNoWritableWithoutFreshLock(t *testing.T) {
	n := 0
	for _, writable := range []bool{false, true} {
		for _, held := range []bool{false, true} {
			for _, holder := range []string{"", "a", "b"} {
				for _, up := range []bool{false, true} {
					for _, age := range []time.Duration{-10 * time.Second, -2 * time.Second, -time.Second, 0, time.Second} {
						s := base()
						s.Writable, s.HeldByUs, s.Holder, s.MySQLUp = writable, held, holder, up
						s.Deadline = t0.Add(age + 1500*time.Millisecond)
						fresh := held && s.Now.Before(s.Deadline.Add(-timing.FenceMargin))
						a := Decide(s, timing)
						n++
						name := fmt.Sprintf("writable=%v held=%v holder=%q up=%v age=%v: %s", writable, held, holder, up, age, Describe(a))
						switch a.(type) {
						case Promote, StayPrimary:
							if !fresh {
								t.Errorf("%s: opens or keeps writes without a fresh lock", name)
							}
						}
						if writable && !fresh {
							if _, ok := a.(Fence); !ok {
								t.Errorf("%s: writable without a fresh lock must fence", name)
							}
						}
					}
				}
			}
		}
	}
	if n != 120 {
		t.Fatalf("checked %d states", n)
	}
}

// Adaptive semi-sync: the primary's commits wait for an acknowledgement while a member
// replicates from it (streaming), or just after its promotion while eligible members repoint;
// a primary with nobody replicating from it commits alone.
func TestSemiSyncWanted(t *testing.T) {
	streaming := Member{Node: "c", Role: RoleReplica, Eligible: true, Streaming: true, Live: true, Acking: true}
	notAckingYet := Member{Node: "c", Role: RoleReplica, Eligible: true, Streaming: true, Live: true}
	repointing := Member{Node: "c", Role: RoleReplica, Eligible: true, Live: true}
	broken := Member{Node: "d", Role: RoleReplica, Eligible: true, Live: true} // e.g. a wrong replication password
	quarantined := Member{Node: "e", Role: RoleNone, Eligible: false, Live: true}
	auto := func(ms ...Member) State {
		return with(primary(), func(s *State) { s.SemiSyncAuto, s.SemiSync, s.Members = true, true, ms })
	}
	justPromoted := func(s State, ago time.Duration) State { s.PromotedAt = s.Now.Add(-ago); return s }
	for _, c := range []struct {
		name string
		s    State
		want bool
	}{
		{"a streaming replica: wait for its ack", auto(streaming), true},
		{"a streaming replica, just added to the sync set, not acknowledging yet: commit alone until it does, never stall", auto(notAckingYet), false},
		{"alone: commit alone", auto(), false},
		{"only a quarantined member: commit alone", auto(quarantined), false},
		{"an eligible replica that does not replicate (long after promotion): commit alone, never stall", auto(broken), false},
		{"just promoted, an eligible replica still repointing: wait", justPromoted(auto(repointing), 2*time.Second), true},
		{"promoted a while ago, the replica never came: commit alone", justPromoted(auto(repointing), SemiSyncGrace), false},
		{"just promoted, alone: commit alone at once", justPromoted(auto(), time.Second), false},
		{"a broken and a streaming replica: wait", auto(broken, streaming), true},
		{"a streaming replica that cannot be promoted (SQL error): commit alone", auto(Member{Node: "f", Role: RoleReplica, Streaming: true, Live: true}), false},
		{"not adaptive (off, or strict: set once at promotion)", with(primary(), func(s *State) {
			s.Members = []Member{streaming}
		}), false},
		{"commits stalled 5 s for an acknowledgement: commit alone for a moment", with(auto(streaming), func(s *State) { s.AckStalled = AckStallLimit }), false},
		{"commits waiting 4 s: keep waiting", with(auto(streaming), func(s *State) { s.AckStalled = 4 * time.Second }), true},
		{"switchover refused keeps the semi-sync wanted", with(auto(streaming), func(s *State) {
			s.Switchover = &Switchover{From: "b", To: "zz"}
		}), true},
	} {
		a, ok := Decide(c.s, timing).(StayPrimary)
		if !ok {
			t.Errorf("%s: %s, want StayPrimary", c.name, Describe(Decide(c.s, timing)))
			continue
		}
		if a.SemiSync != c.want {
			t.Errorf("%s: SemiSync = %v, want %v", c.name, a.SemiSync, c.want)
		}
	}
}

// A primary that committed alone and is gone holds the only copy of those writes: nobody
// takes over automatically, except the target of its own handover.
func TestNoTakeoverFromAPrimaryThatCommittedAlone(t *testing.T) {
	alone := func(f func(*State)) State {
		return with(free(time.Minute), func(s *State) {
			s.Replica, s.AloneLeader = nil, "a"
			f(s)
		})
	}
	for _, c := range []struct {
		name string
		s    State
		want string
	}{
		{"the last primary committed alone and is gone: wait for it", alone(func(*State) {}),
			"Wait: the last primary a may have acknowledged writes no replica has"},
		{"its own handover to us (with its final GTIDs): take over", alone(func(s *State) { s.Switchover = &Switchover{From: "a", To: "b", GTID: "0-1-9"} }),
			"Acquire: switchover target"},
		{"an operator's switchover request from it, never handed over: wait", alone(func(s *State) { s.Switchover = &Switchover{From: "a", To: "b"} }),
			"Wait: the last primary a may have acknowledged writes no replica has"},
		{"an operator's request to any node: wait", alone(func(s *State) { s.Switchover = &Switchover{From: "a"} }),
			"Wait: the last primary a may have acknowledged writes no replica has"},
		{"the alone primary restarted as this node: it may acquire", alone(func(s *State) { s.AloneLeader = "b" }),
			"Acquire:"},
		{"no alone leader: a normal election", alone(func(s *State) { s.AloneLeader = "" }),
			"Acquire:"},
	} {
		if got := Describe(Decide(c.s, timing)); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %s, want %s...", c.name, got, c.want)
		}
	}
}

// The sync set, candidate side (Patroni's synchronous mode for MariaDB semi-sync): after the
// last primary a is gone, only a member of a's recorded sync set that is as advanced as every
// other member takes over; a itself may always come back.
func TestSyncSetCandidacy(t *testing.T) {
	// Node b, the lock free for a minute, a held it last and recorded the sync set {b, c}.
	lost := func(f func(*State)) State {
		return with(free(time.Minute), func(s *State) {
			s.Replica, s.SemiSync, s.SemiSyncAuto, s.LastLeader = nil, true, true, "a"
			s.Sync = &SyncSet{Leader: "a", Members: []string{"b", "c"}}
			s.Members = []Member{{Node: "c", Eligible: true, Live: true, Cmp: Behind}}
			f(s)
		})
	}
	for _, c := range []struct {
		name string
		s    State
		want string
	}{
		{"in the set, the other member live and behind: take over", lost(func(*State) {}),
			"Acquire: the lock is free and this node is the most advanced eligible one"},
		{"in the set, the other member live and equal: the tie-break decides", lost(func(s *State) { s.Members[0].Cmp = Equal }),
			"Acquire: the lock is free and this node is the most advanced eligible one"},
		// Partition {a, c} | {b, Consul}: c acknowledged a's last writes and cannot be seen.
		{"partition: the other member's session ended: wait for it, say how to accept the loss",
			lost(func(s *State) { s.Members[0].Live, s.Members[0].Eligible = false, false }),
			"Wait: sync-set member c of the last primary a is not live and may hold acknowledged writes: waiting for it; to fail over anyway, losing what only it holds: mysqlpilot accept-loss"},
		// A scale-down removes the primary and a member at once: the member stopped its IO
		// thread and published its final position before its session ended.
		{"the other member left for good holding nothing we lack: take over",
			lost(func(s *State) { s.Members[0].Live, s.Members[0].Eligible, s.Members[0].Left = false, false, true }),
			"Acquire: the lock is free and this node is the most advanced eligible one"},
		{"the other member left for good as advanced as we are: take over",
			lost(func(s *State) {
				s.Members[0].Live, s.Members[0].Eligible, s.Members[0].Left, s.Members[0].Cmp = false, false, true, Equal
			}),
			"Acquire:"},
		{"the other member left for good with writes we lack: wait for it",
			lost(func(s *State) {
				s.Members[0].Live, s.Members[0].Eligible, s.Members[0].Left, s.Members[0].Cmp = false, false, true, Ahead
			}),
			"Wait: sync-set member c of the last primary a is not live and may hold acknowledged writes"},
		{"the other member left for good, diverged from us: wait for it",
			lost(func(s *State) {
				s.Members[0].Live, s.Members[0].Eligible, s.Members[0].Left, s.Members[0].Cmp = false, false, true, Diverged
			}),
			"Wait: sync-set member c of the last primary a is not live"},
		{"the other member left, then its server restarted: what it held in its relay log is gone, wait for a",
			lost(func(s *State) {
				s.Sync.Boots = map[string]string{"b": "b1", "c": "c1"}
				s.Boot = "b1"
				s.Members[0].Live, s.Members[0].Eligible, s.Members[0].Left, s.Members[0].Boot = false, false, true, "c2"
			}),
			"Wait: sync-set member c's server restarted since a recorded it"},
		{"the other member never published a key: wait for it", lost(func(s *State) { s.Members = nil }),
			"Wait: sync-set member c of the last primary a is not live"},
		{"the other member is more advanced: wait for it", lost(func(s *State) { s.Members[0].Cmp = Ahead }),
			"Wait: sync-set member c is more advanced"},
		{"the other member diverged: the operator chooses", lost(func(s *State) { s.Members[0].Cmp = Diverged }),
			"Wait: sync-set member c has diverged from this node"},
		{"not in the set, however advanced: wait", lost(func(s *State) { s.Sync.Members = []string{"c", "d"} }),
			"Wait: not in the last primary a's sync set (c, d): waiting for one of them or a to take over"},
		{"an empty set (a acknowledged alone): wait for a", lost(func(s *State) { s.Sync.Members = []string{} }),
			"Wait: the last primary a had an empty sync set (it acknowledged writes alone): waiting for it to come back"},
		{"a itself comes back, its members live and not ahead: it takes over", lost(func(s *State) { s.Node, s.Sync.Members = "a", []string{"c"} }),
			"Acquire:"},
		{"a itself comes back with an empty set (it acknowledged alone): it takes over", lost(func(s *State) { s.Node, s.Sync.Members = "a", []string{} }),
			"Acquire:"},
		// Restarted, a's crash recovery may have cut acknowledged writes that c holds.
		{"a itself comes back truncated while a member is not live: it waits for it too",
			lost(func(s *State) {
				s.Node, s.Sync.Members, s.Members[0].Live, s.Truncated = "a", []string{"c"}, false, true
			}),
			"Wait: sync-set member c of the last primary a is not live"},
		{"a itself comes back truncated behind a member: it waits for the member",
			lost(func(s *State) {
				s.Node, s.Sync.Members, s.Members[0].Cmp, s.Truncated = "a", []string{"c"}, Ahead, true
			}),
			"Wait: sync-set member c is more advanced"},
		// Its recovery kept every transaction: no member holds a write of a's that a lacks.
		{"a itself comes back having kept everything: a member that is not live does not hold it back",
			lost(func(s *State) { s.Node, s.Sync.Members, s.Members[0].Live = "a", []string{"c"}, false }),
			"Acquire:"},
		{"a's own handover, with its final GTIDs, to a node outside the set: the target takes over",
			lost(func(s *State) {
				s.Sync.Members = []string{"c"}
				s.Switchover = &Switchover{From: "a", To: "b", GTID: "0-1-9"}
			}),
			"Acquire: switchover target"},
		// A whole-cluster crash: a member's relay log, discarded at its restart, may have held
		// writes it acknowledged.
		{"the other member's server restarted since it was recorded: wait for a",
			lost(func(s *State) {
				s.Boot, s.Sync.Boots = "b1", map[string]string{"b": "b1", "c": "c1"}
				s.Members[0].Boot = "c2"
			}),
			"Wait: sync-set member c's server restarted since a recorded it"},
		{"this node's server restarted since it was recorded: wait for a",
			lost(func(s *State) {
				s.Boot, s.Sync.Boots = "b2", map[string]string{"b": "b1", "c": "c1"}
				s.Members[0].Boot = "c1"
			}),
			"Wait: this node's server restarted since a recorded it"},
		{"boots as recorded: take over",
			lost(func(s *State) {
				s.Boot, s.Sync.Boots = "b1", map[string]string{"b": "b1", "c": "c1"}
				s.Members[0].Boot = "c1"
			}),
			"Acquire:"},
		{"a itself, back, has everything it wrote: restarted members do not hold it back",
			lost(func(s *State) {
				s.Node, s.Boot, s.Sync.Members, s.Sync.Boots = "a", "a9", []string{"c"}, map[string]string{"c": "c1"}
				s.Members[0].Boot = "c2"
			}),
			"Acquire:"},
		{"a's handover to another node frees only that node: wait",
			lost(func(s *State) {
				s.Sync.Members = []string{"c"}
				s.Switchover = &Switchover{From: "a", To: "c", GTID: "0-1-9"}
			}),
			"Wait: not in the last primary a's sync set"},
		{"the lock is free: stop acknowledging first (the lost primary may still be running)",
			lost(func(s *State) { s.Acking = true }),
			"SetAck(false): the lock is free"},
		{"another member still acknowledges the lost primary: wait for it to stop",
			lost(func(s *State) { s.Members[0].Acking = true }),
			"Wait: sync-set member c still acknowledges the lost primary's commits"},
		{"a node outside the set that is further along holds only unacknowledged writes: it never holds a member back",
			lost(func(s *State) {
				s.Members = append(s.Members, Member{Node: "d", Eligible: true, Live: true, Cmp: Ahead})
			}),
			"Acquire: the lock is free and this node is the most advanced eligible one"},
		{"a switchover request without a's GTIDs proves nothing: wait",
			lost(func(s *State) { s.Sync.Members, s.Switchover = []string{"c"}, &Switchover{From: "a", To: "b"} }),
			"Wait: not in the last primary a's sync set"},
		// a took the lock after x and was lost before it recorded its own set (it records it
		// only after applying what it received, before opening writes): x's writes are still
		// where x's record says, and a wrote nothing.
		{"the last holder was lost before it recorded a set: the recorded one (x's) still holds",
			lost(func(s *State) { s.Sync.Leader, s.Sync.Members = "x", []string{"c"} }),
			"Wait: not in the last primary x's sync set (c): waiting for one of them or x to take over"},
		{"the last holder was lost before it recorded a set, we are in x's: the rule is x's",
			lost(func(s *State) { s.Sync.Leader, s.Sync.Members = "x", []string{"a", "b"} }),
			"Wait: sync-set member a of the last primary x is not live"},
		// a took the lock, said Alone, and was lost before it recorded a set: it never opened
		// writes, so its Alone protects nothing; x's record rules.
		{"an Alone holder that never recorded its set does not hold the election back",
			lost(func(s *State) { s.AloneLeader, s.Sync.Leader, s.Sync.Members = "a", "x", []string{"b", "c"} }),
			"Acquire:"},
		{"an Alone holder that recorded its set: wait for it",
			lost(func(s *State) { s.AloneLeader = "a" }),
			"Wait: the last primary a may have acknowledged writes no replica has"},
		// A record left by a semi-sync primary before the cluster ran asynchronously is
		// replaced by the async primary's: it governs nothing.
		{"an asynchronous primary's record: a normal election",
			lost(func(s *State) { s.Sync.Leader, s.Sync.Members, s.Sync.Async = "x", nil, true }),
			"Acquire:"},
		{"the last holder was lost before it recorded a set, x itself comes back: it takes over",
			lost(func(s *State) { s.Node, s.Sync.Leader, s.Sync.Members = "x", "x", []string{"c"} }),
			"Acquire:"},
		{"asynchronous replication: no sync set, a normal election",
			lost(func(s *State) { s.SemiSync, s.SemiSyncAuto, s.Sync.Members = false, false, []string{"c"} }),
			"Acquire:"},
		{"a member whose session ended is never a candidate to wait for outside the rule",
			lost(func(s *State) {
				s.Sync.Members = []string{"b"}
				s.Members = []Member{{Node: "c", Live: false, Eligible: false, Cmp: Ahead}}
			}),
			"Acquire:"},
	} {
		if got := Describe(Decide(c.s, timing)); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s:\n got %s\nwant %s...", c.name, got, c.want)
		}
	}
}

// The sync set, replica side: a node acknowledges the holder's commits only as a member of
// the holder's recorded set, only while it could be promoted, and never without a fresh
// session (the primary drops members whose sessions end).
func TestSyncSetAcknowledging(t *testing.T) {
	// Node b replicates from a, streaming; a recorded the sync set {b}.
	member := func(f func(*State)) State {
		return with(base(), func(s *State) {
			s.SemiSync, s.SemiSyncAuto = true, true
			s.Sync = &SyncSet{Leader: "a", Members: []string{"b"}}
			f(s)
		})
	}
	for _, c := range []struct {
		name string
		s    State
		want string
	}{
		{"in the holder's set: turn acknowledging on", member(func(*State) {}),
			"SetAck(true): in a's sync set: acknowledging its commits"},
		{"in the set and acknowledging: stay", member(func(s *State) { s.Acking = true }),
			"StayReplica: replica of a"},
		{"dropped from the set: stop acknowledging", member(func(s *State) { s.Acking, s.Sync.Members = true, []string{"c"} }),
			"SetAck(false): not in a's sync set (or not a candidate)"},
		{"recorded with this server's boot: turn acknowledging on",
			member(func(s *State) { s.Boot, s.Sync.Boots = "b2", map[string]string{"b": "b2"} }),
			"SetAck(true):"},
		// The set names an earlier incarnation, whose key may still say it left holding less
		// than this one would acknowledge: not before the primary records this one.
		{"recorded as an earlier incarnation of this node: do not acknowledge",
			member(func(s *State) { s.Boot, s.Sync.Boots = "b2", map[string]string{"b": "b1"} }),
			"StayReplica: replica of a"},
		{"recorded as an earlier incarnation, acknowledging: stop",
			member(func(s *State) { s.Acking, s.Boot, s.Sync.Boots = true, "b2", map[string]string{"b": "b1"} }),
			"SetAck(false):"},
		{"the set of an earlier primary: do not acknowledge", member(func(s *State) { s.Sync.Leader = "x" }),
			"StayReplica: replica of a"},
		{"a replication SQL error makes it no candidate: stop acknowledging",
			member(func(s *State) {
				s.Acking = true
				s.Replica = &ReplicaState{Source: "a", IORunning: true, SQLRunning: false, Error: "Duplicate entry"}
			}),
			"SetAck(false):"},
		{"a new holder whose set has it: follow, acknowledging",
			member(func(s *State) { s.Replica = &ReplicaState{Source: "x", IORunning: true, SQLRunning: true} }),
			"Follow(a, acknowledging): a holds the lock"},
		{"a new holder that has not recorded it yet: follow without acknowledging",
			member(func(s *State) {
				s.Sync.Leader = "x"
				s.Replica = &ReplicaState{Source: "x", IORunning: true, SQLRunning: true}
			}),
			"Follow(a): a holds the lock"},
		{"renewal late: stop acknowledging before the session can end",
			member(func(s *State) { s.Acking, s.Now = true, s.Deadline.Add(-time.Second) }),
			"SetAck(false): no fresh Consul session"},
		{"no session (a fresh start acknowledging from its option file): stop acknowledging",
			member(func(s *State) { s.Acking, s.Session, s.Deadline = true, "", time.Time{} }),
			"SetAck(false): no fresh Consul session"},
		{"this cycle's Consul read failed: never turn acknowledging on from a stale view",
			member(func(s *State) { s.ConsulOK = false }),
			"StayReplica: replica of a"},
		// A Consul leader election fails reads for a second or two: stopping would stall the
		// primary's commits (TestConsulLeaderKilled: an 8 s write gap). The primary never
		// drops a live member that acknowledges, and the session bounds the stale view.
		{"this cycle's Consul read failed, acknowledging, session fresh: go on acknowledging",
			member(func(s *State) { s.ConsulOK, s.Acking = false, true }),
			"StayReplica: replica of a"},
		{"reads failing until the session is no longer fresh: stop",
			member(func(s *State) { s.ConsulOK, s.Acking, s.Deadline = false, true, s.Now.Add(time.Second) }),
			"SetAck(false):"},
		{"asynchronous replication: never acknowledging",
			member(func(s *State) { s.SemiSync, s.SemiSyncAuto = false, false }),
			"StayReplica: replica of a"},
	} {
		if got := Describe(Decide(c.s, timing)); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s:\n got %s\nwant %s...", c.name, got, c.want)
		}
	}
}

// The sync set, primary side: who is recorded, and when the primary must first say it is
// alone (it drops members that may hold acknowledged writes and no member left has them all).
func TestSyncSetRecorded(t *testing.T) {
	streaming := func(n string, cmp Cmp) Member {
		return Member{Node: n, Role: RoleReplica, Eligible: true, Streaming: true, Live: true, Acking: true, Cmp: cmp}
	}
	prim := func(recorded []string, ms ...Member) State {
		return with(primary(), func(s *State) {
			s.SemiSync, s.SemiSyncAuto, s.Members = true, true, ms
			if recorded != nil {
				s.Sync = &SyncSet{Leader: "b", Members: recorded}
			}
		})
	}
	dead := func(n string) Member { return Member{Node: n, Role: RoleReplica, Live: false, Acking: true} }
	lagging := streaming("d", Behind)
	for _, c := range []struct {
		name     string
		s        State
		set      []string
		alone    bool
		semiSync bool
	}{
		{"streaming members are added, sorted", prim(nil, streaming("d", Equal), streaming("c", Behind)), []string{"c", "d"}, false, true},
		{"a member not acknowledging yet is added (it acknowledges once recorded)",
			prim([]string{}, Member{Node: "c", Eligible: true, Streaming: true, Live: true}), []string{"c"}, false, false},
		{"a recorded member that acknowledges stays even when lagging", prim([]string{"d"}, lagging), []string{"d"}, false, true},
		{"a dead member is dropped when another has everything", prim([]string{"c", "d"}, dead("c"), streaming("d", Equal)), []string{"d"}, false, true},
		{"a dead member dropped with the rest lagging: alone first", prim([]string{"c", "d"}, dead("c"), lagging), []string{"d"}, true, true},
		{"a member that stopped acknowledging (SQL error) is dropped",
			prim([]string{"c", "d"}, Member{Node: "c", Live: true, Streaming: true}, streaming("d", Ahead)), []string{"d"}, false, true},
		{"a member whose session ended but still streams from us, acknowledging (its supervisor frozen): kept",
			prim([]string{"c", "d"}, Member{Node: "c", Live: false, Acking: true, Connected: true}, streaming("d", Equal)), []string{"c", "d"}, false, true},
		// A scale-down: c stopped for good, saying how far it had come (left).
		{"a member that left holding what no acknowledging member has yet: kept, not alone",
			prim([]string{"c", "d"}, Member{Node: "c", Role: RoleReplica, Left: true}, lagging), []string{"c", "d"}, false, true},
		{"a member that left, its writes on an acknowledging member: dropped, not alone",
			prim([]string{"c", "d"}, Member{Node: "c", Role: RoleReplica, Left: true, CoveredBy: []string{"d"}}, lagging), []string{"d"}, false, true},
		{"a member that left, its writes only on a member leaving the set: kept",
			prim([]string{"c", "d"}, Member{Node: "c", Role: RoleReplica, Left: true, CoveredBy: []string{"e"}}, lagging,
				Member{Node: "e", Role: RoleReplica, Live: true, Acking: true, Streaming: true}), []string{"c", "d"}, false, true},
		{"a member that left, then its server restarted: dropped, alone until one has everything",
			with(prim([]string{"c", "d"}, Member{Node: "c", Role: RoleReplica, Left: true, Boot: "c2"}, lagging), func(s *State) {
				s.Sync.Boots = map[string]string{"c": "c1"}
			}), []string{"d"}, true, true},
		{"the only member left: kept, and nobody acknowledges (semi-sync off, alone said first by the loop)",
			prim([]string{"c"}, Member{Node: "c", Role: RoleReplica, Left: true}), []string{"c"}, false, false},
		{"every member gone: empty and alone", prim([]string{"c"}, dead("c")), []string{}, true, false},
		{"a member whose server restarted is recorded afresh, and we are alone until one has everything",
			with(prim([]string{"c"}, func() Member { m := streaming("c", Behind); m.Boot = "c2"; return m }()), func(s *State) {
				s.Sync.Boots = map[string]string{"c": "c1"}
			}), []string{"c"}, true, true},
		{"a cluster of one: empty and alone", prim(nil), []string{}, true, false},
		{"a member whose session ended is never added", prim(nil, Member{Node: "c", Eligible: true, Streaming: true}), []string{}, true, false},
		{"the record of the last primary is not ours: start afresh",
			with(prim(nil, streaming("c", Equal)), func(s *State) { s.Sync = &SyncSet{Leader: "a", Members: []string{"z"}} }), []string{"c"}, false, true},
		{"just promoted: eligible members repointing are in the set",
			with(prim(nil, Member{Node: "c", Eligible: true, Live: true}), func(s *State) { s.PromotedAt = s.Now.Add(-time.Second) }), []string{"c"}, false, true},
		{"strict semi-sync records the same set; commits always wait (SemiSync is for adaptive only)",
			with(prim(nil, streaming("c", Equal)), func(s *State) { s.SemiSyncAuto = false }), []string{"c"}, false, false},
	} {
		a, ok := Decide(c.s, timing).(StayPrimary)
		if !ok {
			t.Errorf("%s: %s, want StayPrimary", c.name, Describe(Decide(c.s, timing)))
			continue
		}
		if strings.Join(a.Sync, ",") != strings.Join(c.set, ",") || a.Sync == nil || a.Alone != c.alone || a.SemiSync != c.semiSync {
			t.Errorf("%s: set %v alone %v semi-sync %v, want %v %v %v", c.name, a.Sync, a.Alone, a.SemiSync, c.set, c.alone, c.semiSync)
		}
	}
	if a := Decide(with(primary(), func(s *State) {}), timing).(StayPrimary); a.Sync != nil {
		t.Errorf("asynchronous replication records no sync set: %v", a.Sync)
	}
}

// The handover target (switchover without --to, docker stop of the primary b): a member of
// b's sync set that acknowledges first, then the most advanced, then the lower name; never
// one whose history split from another's, nor one that is not live or not eligible.
func TestHandoverTarget(t *testing.T) {
	m := func(node string, rank int, f func(*Member)) Member {
		x := Member{Node: node, Live: true, Eligible: true, Streaming: true, Rank: rank}
		if f != nil {
			f(&x)
		}
		return x
	}
	acking := func(x *Member) { x.Acking = true }
	set := &SyncSet{Leader: "b", Members: []string{"d", "e"}}
	for _, c := range []struct {
		name string
		sync *SyncSet
		ms   []Member
		want string
	}{
		{"none", nil, nil, ""},
		{"the most advanced", nil, []Member{m("c", 1, nil), m("d", 0, nil)}, "d"},
		{"equals: the lower name", nil, []Member{m("e", 0, nil), m("d", 0, nil)}, "d"},
		{"an acknowledging sync-set member before a more advanced outsider", set, []Member{m("c", 0, nil), m("e", 1, acking)}, "e"},
		{"a sync-set member that does not acknowledge is no better than an outsider", set, []Member{m("c", 0, nil), m("e", 1, nil)}, "c"},
		{"the set of another primary does not count", &SyncSet{Leader: "x", Members: []string{"e"}}, []Member{m("c", 0, nil), m("e", 1, acking)}, "c"},
		{"never a split history", nil, []Member{m("c", 0, func(x *Member) { x.Split = true }), m("d", 1, nil)}, "d"},
		{"never a member without a session", nil, []Member{m("c", 0, func(x *Member) { x.Live = false }), m("d", 1, nil)}, "d"},
		{"never an ineligible member", nil, []Member{m("c", 0, func(x *Member) { x.Eligible = false })}, ""},
	} {
		s := with(primary(), func(s *State) { s.Members, s.Sync = c.ms, c.sync })
		if got := HandoverTarget(s); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// The re-seed policy of a quarantined node (with a snapshot backend).
func TestDecideReseed(t *testing.T) {
	for _, c := range []struct {
		name string
		r    ReseedState
		want Reseed
		why  string
	}{
		{"a snapshot it did not come from: re-seed", ReseedState{Latest: "s2", RestoredFrom: "s1"}, ReseedNow, "re-seeding from the latest snapshot s2"},
		{"never restored: re-seed", ReseedState{Latest: "s1"}, ReseedNow, "re-seeding"},
		{"restored from the latest already: ask for a fresh one, never loop", ReseedState{Latest: "s1", RestoredFrom: "s1"}, RequestSnapshot,
			"this datadir was restored from the latest snapshot s1 already"},
		{"asked already for one newer than it: wait", ReseedState{Latest: "s1", RestoredFrom: "s1", Requested: true, RequestedAfter: "s1"}, WaitForSnapshot,
			"a fresh snapshot is asked for already"},
		{"a pending request for an older one does not count: ask", ReseedState{Latest: "s1", RestoredFrom: "s1", Requested: true, RequestedAfter: "s0"}, RequestSnapshot, ""},
		{"no snapshot at all: ask for one", ReseedState{}, RequestSnapshot, "there is no snapshot to re-seed from yet"},
		{"no snapshot, asked already: wait", ReseedState{Requested: true}, WaitForSnapshot, ""},
		{"every snapshot failed its drill: ask for one newer than the latest", ReseedState{AllFailed: "s2", RestoredFrom: "s1"}, RequestSnapshot,
			"every snapshot failed its restore drill"},
		{"every snapshot failed its drill, and the drill asked already: wait", ReseedState{AllFailed: "s2", Requested: true, RequestedAfter: "s2"}, WaitForSnapshot, ""},
	} {
		d := DecideReseed(c.r)
		if d.Do != c.want || !strings.Contains(d.Why, c.why) {
			t.Errorf("%s: %+v, want %v %q", c.name, d, c.want, c.why)
		}
		if want := c.r.Latest + c.r.AllFailed; d.Do == RequestSnapshot && (c.r.RestoredFrom == c.r.Latest || c.r.AllFailed != "") && d.After != want {
			t.Errorf("%s: asks for a snapshot after %q, want after %q", c.name, d.After, want)
		}
	}
}

// Committing alone after a stall is said first, like any other.
func TestAckStallSaysAloneFirst(t *testing.T) {
	s := with(primary(), func(s *State) {
		s.SemiSync, s.SemiSyncAuto, s.AckStalled = true, true, AckStallLimit
		s.Members = []Member{{Node: "c", Role: RoleReplica, Eligible: true, Streaming: true, Live: true, Acking: true}}
	})
	a := Decide(s, timing).(StayPrimary)
	if a.SemiSync || !a.Alone || !strings.Contains(a.Why(), "waited 5s for an acknowledgement") {
		t.Fatalf("%s: semi-sync %v alone %v, want off and alone", Describe(a), a.SemiSync, a.Alone)
	}
	s.SemiSyncAuto = false // strict: waits
	if a := Decide(s, timing).(StayPrimary); a.Alone {
		t.Fatalf("strict semi-sync committed alone after a stall: %s", Describe(a))
	}
}

// What leaves the node (Consul KV, check notes) carries a replication error's number and
// class, never its server text (application data, accounts, hosts).
func TestPublicReason(t *testing.T) {
	r := &ReplicaStatus{Error: "Could not execute Write_rows event on table app.users; Duplicate entry 'alice@example.com' for key 'email'", ErrNo: 1062}
	why := "Wait: not a candidate: replication SQL error: " + r.Error
	got := PublicReason(why, r)
	if strings.Contains(got, "alice") || !strings.Contains(got, "error 1062 (row conflict)") {
		t.Errorf("PublicReason = %q", got)
	}
	if got := PublicReason("replica of a", nil); got != "replica of a" {
		t.Errorf("no error: %q", got)
	}
	// MariaDB's text for a primary certificate from another CA says nothing useful.
	tls := &ReplicaStatus{Error: "error connecting to master - message: SSL connection error: error:00000000:lib(0)::reason(0)", ErrNo: 2026}
	if got := PublicReason("replica of a: "+tls.Error, tls); !strings.Contains(got, "error 2026 (TLS to the primary failed: its certificate is not signed by this node's CA") {
		t.Errorf("TLS: %q", got)
	}
}

// A restarted old primary need not wait for a failover the sync-set rule forbids: once a
// member of its set restarted since it was recorded, nobody else may take the lock.
func TestNobodyElseMay(t *testing.T) {
	set := &SyncSet{Leader: "a", Members: []string{"b", "c"}, Boots: map[string]string{"b": "b1", "c": "c1"}}
	view := func(bBoot string, s *SyncSet) ClusterView {
		return ClusterView{Sync: s, Members: []MemberRecord{{Node: "b", Boot: bBoot}, {Node: "c", Boot: "c1"}}}
	}
	for _, c := range []struct {
		name string
		v    ClusterView
		node string
		want bool
	}{
		{"every member as recorded: another may take over", view("b1", set), "a", false},
		{"a member restarted since: only a", view("b2", set), "a", true},
		{"not this node's record", view("b2", set), "x", false},
		{"no record", view("b2", nil), "a", false},
		{"an asynchronous primary's record", view("b2", &SyncSet{Leader: "a", Async: true}), "a", false},
		{"a member that never published its boot", view("", set), "a", false},
	} {
		if got := NobodyElseMay(c.v, c.node); got != c.want {
			t.Errorf("%s: NobodyElseMay = %v, want %v", c.name, got, c.want)
		}
	}
}

// A replica repointing to a new holder waits, briefly, for the holder's sync-set record, so
// that it connects acknowledging when the set names it: connected without acknowledging, it
// receives the new primary's first commits unacknowledged, and they wait for an
// acknowledgement that never comes (2 s write gaps after a handover, before this rule).
func TestFollowNewHolderAfterItsRecord(t *testing.T) {
	// Node b replicated from a; c took the lock 100 ms ago; the record is still a's.
	repoint := func(f func(*State)) State {
		return with(base(), func(s *State) {
			s.Holder, s.HeldSince, s.SemiSync, s.SemiSyncAuto = "c", t0.Add(-100*time.Millisecond), true, true
			s.Sync = &SyncSet{Leader: "a", Members: []string{"b", "c"}}
			s.Replica = &ReplicaState{Source: "a", IORunning: false, SQLRunning: true}
			f(s)
		})
	}
	for _, c := range []struct {
		name string
		s    State
		want string
	}{
		{"the record is the last leader's: wait for the new holder's", repoint(func(*State) {}),
			"Wait: c has not recorded its sync set yet"},
		{"the new holder recorded a set naming this node: follow, acknowledging",
			repoint(func(s *State) { s.Sync = &SyncSet{Leader: "c", Members: []string{"b"}} }),
			"Follow(c, acknowledging): c holds the lock"},
		{"the new holder recorded a set without this node: follow, not acknowledging",
			repoint(func(s *State) { s.Sync = &SyncSet{Leader: "c", Members: []string{"d"}} }),
			"Follow(c): c holds the lock"},
		{"no record after HolderRecordWait: follow anyway",
			repoint(func(s *State) { s.HeldSince = t0.Add(-HolderRecordWait) }),
			"Follow(c): c holds the lock"},
		{"no record at all (dropped by accept-loss): follow at once", repoint(func(s *State) { s.Sync = nil }),
			"Follow(c): c holds the lock"},
		{"asynchronous replication: follow at once", repoint(func(s *State) { s.SemiSync, s.SemiSyncAuto = false, false }),
			"Follow(c): c holds the lock"},
		{"already replicating from the holder: the rule does not apply",
			repoint(func(s *State) { s.Replica = &ReplicaState{Source: "c", IORunning: true, SQLRunning: true} }),
			"StayReplica:"},
	} {
		if got := Describe(Decide(c.s, timing)); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s:\n got  %s\n want %s…", c.name, got, c.want)
		}
	}
}
