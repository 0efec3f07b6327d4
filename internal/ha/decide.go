package ha

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Decide returns the one action this node should take now. It is a pure function of s and t.
//
// The order of the checks is the order of the safety rules (DESIGN.md section 3):
//  1. A writable node that does not hold a fresh lock fences before anything else.
//  2. No session, no lock, no promotion.
//  3. The lock holder promotes or stays primary; everyone else follows it.
//  4. With the lock free, only the most advanced eligible node acquires, after a short window.
func Decide(s State, t Timing) Action {
	fresh := Fresh(s.Deadline, s.Now, t.FenceMargin)
	if s.Writable {
		switch {
		case !s.HeldByUs && s.Holder == "":
			return Fence{because("writable without the lock (the lock is free)")}
		case !s.HeldByUs:
			return Fence{because("writable but %s holds the lock", s.Holder)}
		case !fresh:
			return Fence{because("lock renewal is late: fence deadline passed %s ago", s.Now.Sub(s.Deadline.Add(-t.FenceMargin)).Round(time.Millisecond))}
		case s.WatchdogGone:
			// Nothing would fence this server if the supervisor froze now. Promote
			// reinstalls the watchdog before it opens writes again.
			return Fence{because("the in-server watchdog is gone (event missing or disabled, or event_scheduler off)")}
		}
	}
	if !s.MySQLUp {
		// Not Release: a server that does not answer may still be running and writable. The
		// alive check goes unpassed, so the lock lapses within checkTTL (plus the lock delay),
		// by which time the in-server watchdog has set read_only. A mysqld that exited is
		// handled by the stop sequence, which releases the lock at once.
		if s.HeldByUs {
			return Wait{because("mysqld is not answering: letting the lock lapse unless it recovers")}
		}
		return Wait{because("mysqld is not answering")}
	}
	if s.Acking && !s.HeldByUs && !fresh {
		// A sync-set member whose session may end must stop acknowledging before it does:
		// the primary drops members whose sessions ended, and a member dropped from the
		// record while it still acknowledges could be the only one holding a write.
		return SetAck{reason: because("no fresh Consul session: not acknowledging the primary's commits"), On: false}
	}
	if s.Session == "" {
		return NewSession{because("no Consul session")}
	}
	if s.HeldByUs {
		return decideHolder(s, fresh)
	}
	if s.Holder != "" {
		return decideFollower(s, fresh)
	}
	return decideCandidate(s, t)
}

// Fresh reports whether a lock whose deadline (the earliest instant another node could take
// it) is deadline is still safely held at now: writes stay open only until margin before it.
// The one freshness formula, for Decide and for the loop's re-checks between steps.
func Fresh(deadline, now time.Time, margin time.Duration) bool {
	return !deadline.IsZero() && now.Before(deadline.Add(-margin))
}

// Promotion failures: after MaxPromoteFails in a row the node releases the lock and sits out
// BenchTime, so a node that cannot open writes does not hold the lock forever.
const (
	MaxPromoteFails = 3
	BenchTime       = 30 * time.Second
)

// decideHolder: we hold the lock.
func decideHolder(s State, fresh bool) Action {
	if !fresh {
		return Wait{because("holding the lock but its renewal is late: not opening writes")}
	}
	if !s.Writable && s.PromoteFails >= MaxPromoteFails {
		return Release{because("promotion failed %d times in a row: releasing the lock and sitting out %s", s.PromoteFails, BenchTime)}
	}
	if sw := s.Switchover; sw != nil && sw.From == s.Node && sw.To != s.Node {
		if sw.To != "" && !eligible(s.Members, sw.To) {
			return stayPrimary(s, because("switchover to %s requested, but it is not an eligible member", sw.To))
		}
		to := sw.To
		if to == "" {
			if to = HandoverTarget(s); to == "" {
				return stayPrimary(s, because("switchover requested, but no replica is eligible"))
			}
		}
		return Handover{reason: because("switchover requested"), To: to}
	}
	if !s.Writable {
		return Promote{because("we hold the lock")}
	}
	return stayPrimary(s, because("the primary, with the lock"))
}

// stayPrimary is StayPrimary with the sync set and the semi-sync wanted.
//
// The sync set (see SyncSet) is every live member that could be promoted and replicates from
// us, kept while it acknowledges. With adaptive semi-sync, commits wait for an
// acknowledgement while the set has a member, and not while it is empty (a cluster of one,
// every replica down, quarantined or cut off): waiting would then only stop writes. The
// primary says in its member key when it may have acknowledged writes alone
// (MemberRecord.Alone), and nobody takes over from such a primary automatically
// (decideCandidate), so a write acknowledged alone is never lost to a failover.
func stayPrimary(s State, r reason) StayPrimary {
	if !s.SemiSync {
		return StayPrimary{reason: r}
	}
	set, alone := syncSet(s)
	sp := StayPrimary{reason: r, SemiSync: s.SemiSyncAuto && waitForAck(s, set), Sync: set, Alone: alone}
	if sp.SemiSync && s.AckStalled >= AckStallLimit {
		// Members that say they acknowledge but do not (a lagging member fetching a backlog,
		// or a semi-sync connection MariaDB lost track of): commit alone, said first, rather
		// than stall; semi-sync comes back on the next cycle, afresh.
		sp.reason = because("commits waited %s for an acknowledgement: committing alone (said first) and turning semi-sync on again afresh", s.AckStalled.Round(time.Millisecond))
		sp.SemiSync, sp.Alone = false, true
	}
	return sp
}

// AckStallLimit is how long adaptive semi-sync lets commits wait for an acknowledgement before
// it commits alone for a moment (a primary in strict semi-sync waits).
const AckStallLimit = 5 * time.Second

// waitForAck: with adaptive semi-sync, commits wait for an acknowledgement while a member of
// the set acknowledges (live, streaming, replica side on), and for SemiSyncGrace after the
// promotion while members repoint. A member just added does not acknowledge yet: until it
// does, commits go on alone (the primary is marked alone meanwhile) rather than stall.
func waitForAck(s State, set []string) bool {
	if len(set) > 0 && !s.PromotedAt.IsZero() && s.Now.Sub(s.PromotedAt) < SemiSyncGrace {
		return true
	}
	for _, m := range s.Members {
		if m.Live && m.Streaming && m.Acking && slices.Contains(set, m.Node) {
			return true
		}
	}
	return false
}

// SemiSyncGrace is how long after its promotion a primary keeps eligible members in its sync
// set (and, with adaptive semi-sync, semi-sync on) while they repoint to it.
const SemiSyncGrace = 5 * time.Second

// syncSet is the sync set the primary wants recorded, and whether it must say first that it
// may hold acknowledged writes no member has (alone).
//
//   - Added: every live member that could be promoted and replicates from us (for
//     SemiSyncGrace after the promotion, every live eligible one: they are repointing).
//     Adding is always safe: a larger set only constrains who may take over.
//   - Kept: a recorded member while it acknowledges (live, replica side on).
//   - Kept too: a recorded member that left for good (MemberRecord.Left), until a member
//     of the set that acknowledges has everything it received (CoveredBy); dropping it then
//     says nothing about being alone.
//   - Dropped: a member that stopped acknowledging or lost its session (a member about to
//     lose its session stops acknowledging first: see Decide). The writes it acknowledged
//     are ours; if no member left acknowledges and has received everything we executed,
//     we are alone until one has (the loop clears Alone then).
//   - Empty: nobody acknowledges; we are alone.
func syncSet(s State) (set []string, alone bool) {
	var cur []string
	if s.Sync != nil && s.Sync.Leader == s.Node {
		cur = s.Sync.Members
	}
	grace := !s.PromotedAt.IsZero() && s.Now.Sub(s.PromotedAt) < SemiSyncGrace
	in := map[string]bool{}
	var left []*Member
	for _, n := range cur {
		m := member(s.Members, n)
		switch {
		case m == nil:
		case s.Sync.Boots != nil && m.Boot != s.Sync.Boots[n]:
			// Restarted since it was recorded: it no longer vouches for what it
			// acknowledged (dropped; it may come back below, recorded afresh).
		case m.Live && (m.Acking || grace && m.Eligible):
			in[n] = true
		case m.Connected && m.Acking:
			// Its session ended but it still streams from us with its replica side on (its
			// supervisor frozen, say): its server may still acknowledge, so it stays, and
			// the members wait for it should we be lost.
			in[n] = true
		case m.Left && !m.Live:
			left = append(left, m)
		}
	}
	for _, m := range s.Members {
		if m.Live && m.Eligible && (m.Streaming || grace) {
			in[m.Node] = true
		}
	}
	// A member that left for good (its final position in its key) stays while no member of
	// the set that acknowledges has everything it received: a candidate must then hold its
	// writes (syncRule), and we need not say we are alone. Once one has, it goes, and its
	// going says nothing about being alone either.
	covered := map[string]bool{}
	for _, m := range left {
		if slices.ContainsFunc(m.CoveredBy, func(n string) bool { return in[n] }) {
			covered[m.Node] = true
		} else {
			in[m.Node] = true
		}
	}
	dropped := false
	for _, n := range cur {
		m := member(s.Members, n)
		restarted := m != nil && s.Sync.Boots != nil && m.Boot != s.Sync.Boots[n]
		if covered[n] {
			continue
		}
		dropped = dropped || !in[n] || m == nil || restarted
	}
	caught := false
	for _, m := range s.Members {
		if in[m.Node] && m.Live && m.Acking && m.Streaming && (m.Cmp == Equal || m.Cmp == Ahead) {
			caught = true
		}
	}
	set = make([]string, 0, len(in))
	for n := range in {
		set = append(set, n)
	}
	slices.Sort(set)
	return set, len(set) == 0 || dropped && !caught
}

// wantAck: this node acknowledges the holder's commits only as a member of its recorded sync
// set, only while it could be promoted (an acknowledgement on a node that cannot be promoted
// protects nothing), and only with a fresh session; it turns on only with this cycle's read
// of the record (a member cut off from Consul must not turn acknowledging back on from a
// stale view: the primary may have dropped it).
func wantAck(s State, fresh bool) bool {
	if !s.SemiSync || !fresh || s.Sync == nil || s.Sync.Leader != s.Holder || !s.Sync.Has(s.Node) {
		return false
	}
	if s.Sync.Boots != nil && s.Sync.Boots[s.Node] != s.Boot {
		// Recorded as an earlier incarnation of this node (a server since restarted): the
		// set vouches for that one, whose key may still say it left holding less than we
		// will acknowledge. Not before the primary records this one.
		return false
	}
	if !s.ConsulOK && !s.Acking {
		return false
	}
	// A failed read with a fresh session changes nothing (a Consul leader election, a slow
	// server): turning acknowledgements off on every hiccup would stall the primary's commits
	// for AckStallLimit. The primary keeps a live member that acknowledges in its set, and
	// the session, which must stay fresh, bounds how long a stale view can keep it on.
	// Turning on needs this cycle's read.
	ok, _ := Candidacy(s)
	return ok
}

// newHolderUnrecorded: the cluster replicates semi-synchronously, the sync-set record is still
// an earlier leader's, and the holder took the lock less than HolderRecordWait ago (seen from
// here): it is between taking the lock and recording its set.
func newHolderUnrecorded(s State) bool {
	return s.SemiSync && s.Sync != nil && s.Sync.Leader != s.Holder && !s.HeldSince.IsZero() &&
		s.Now.Sub(s.HeldSince) < HolderRecordWait
}

// HolderRecordWait bounds how long a replica waits for a new holder's sync-set record before
// it follows the holder anyway (without acknowledging until the record names it).
const HolderRecordWait = 3 * time.Second

func member(ms []Member, node string) *Member {
	for i := range ms {
		if ms[i].Node == node {
			return &ms[i]
		}
	}
	return nil
}

// decideFollower: another node holds the lock.
func decideFollower(s State, fresh bool) Action {
	if s.Holder == s.Node {
		return Wait{because("the lock is held by an earlier session of this node: waiting for Consul to end it")}
	}
	if s.Errant {
		return Quarantine{because("this node has transactions %s lacks: it must be re-seeded, not replicate", s.Holder)}
	}
	ack := wantAck(s, fresh)
	if s.Acking && !ack {
		return SetAck{reason: because("not in %s's sync set (or not a candidate): not acknowledging its commits", s.Holder), On: false}
	}
	r := s.Replica
	switch {
	case (r == nil || r.Source != s.Holder) && newHolderUnrecorded(s):
		// A new holder records its sync set before it opens writes. Connecting to it before
		// the record names this node would connect without acknowledging; the new primary's
		// first commits, sent on that connection, then wait for an acknowledgement that never
		// comes (seen: 2 s write gaps after a handover). The record comes within milliseconds
		// (the Consul watch wakes this node); the wait is bounded.
		return Wait{because("%s has not recorded its sync set yet: following it once it has, acknowledging if this node is in it", s.Holder)}
	case r == nil || r.Source != s.Holder:
		return Follow{reason: because("%s holds the lock", s.Holder), Primary: s.Holder, Ack: ack}
	case r.Purged && !r.IORunning:
		return Quarantine{because("%s no longer has the binlogs after this node's position: it must be re-seeded from a snapshot", s.Holder)}
	case ack && !s.Acking:
		return SetAck{reason: because("in %s's sync set: acknowledging its commits", s.Holder), On: true}
	case r.Connecting && r.SQLRunning && r.Error == "":
		return StayReplica{because("connecting to %s", s.Holder)}
	case !r.IORunning || !r.SQLRunning:
		msg := "replication from %s stopped"
		if r.Error != "" {
			return Follow{reason: because(msg+": %s", s.Holder, r.Error), Primary: s.Holder, Ack: ack}
		}
		return Follow{reason: because(msg, s.Holder), Primary: s.Holder, Ack: ack}
	}
	return StayReplica{because("replica of %s", s.Holder)}
}

// Candidacy says whether this node may take the lock, and why not. The same predicate decides
// the Eligible flag the node publishes, so others never wait for a node that will not come.
// (Maintenance is cluster-wide and checked separately: it does not make a node ineligible.)
func Candidacy(s State) (ok bool, why string) {
	switch {
	case !s.MySQLUp:
		return false, "mysqld is not answering"
	case s.Errant:
		return false, "this node has transactions the cluster lacks: it must be re-seeded"
	case s.Empty && s.Initialized:
		return false, "empty datadir in an initialized cluster: waiting for a primary to copy from"
	case s.Benched:
		return false, "benched after failed promotions"
	case s.Replica != nil && !s.Replica.SQLRunning && s.Replica.Error != "":
		return false, "replication SQL error: " + s.Replica.Error
	}
	return true, ""
}

// decideCandidate: the lock is free.
func decideCandidate(s State, t Timing) Action {
	if s.Errant {
		return Quarantine{because("this node has transactions the cluster lacks: it must be re-seeded")}
	}
	if s.Acking {
		// The last primary may still be running, its commits waiting: no acknowledgement
		// from here may complete one after the candidates compared their positions.
		return SetAck{reason: because("the lock is free: not acknowledging the lost primary's commits"), On: false}
	}
	if s.Maintenance {
		return Wait{because("the lock is free but maintenance mode pauses automatic failover")}
	}
	if ok, why := Candidacy(s); !ok {
		return Wait{because("not a candidate: %s", why)}
	}
	if a := s.AloneLeader; a != "" && a != s.Node && !handoverTarget(s, a) && (s.Sync == nil || s.Sync.Leader == a) {
		// A holder that never recorded its own set never opened writes (it records the set
		// first): its Alone protects nothing, and the record it did not replace still holds.
		return Wait{because("the last primary %s may have acknowledged writes no replica has (it was committing alone): "+
			"waiting for it to come back; to fail over anyway, losing them: mysqlpilot accept-loss --yes", a)}
	}
	if why, ok := syncRule(s); !ok {
		return Wait{reason(why)}
	}
	if sw := s.Switchover; sw != nil && (sw.To == "" || eligible(s.Members, sw.To) || sw.To == s.Node) {
		// A switchover record counts only while its target can still act on it; a stale one
		// (target gone) falls through to a normal election.
		switch {
		case sw.To == s.Node:
			return Acquire{because("switchover target")}
		case sw.From == s.Node && sw.To != "":
			return Wait{because("handed over: waiting for %s to take the lock", sw.To)}
		case sw.To != "":
			return Wait{because("switchover to %s in progress", sw.To)}
		}
	}
	if t.FailoverBlock > 0 && !s.LastFailover.IsZero() && s.Now.Sub(s.LastFailover) < t.FailoverBlock {
		return Wait{because("the lock is free but the last failover was %s ago (failover block %s)", s.Now.Sub(s.LastFailover).Round(time.Second), t.FailoverBlock)}
	}
	vacant := s.Now.Sub(s.FreeSince)
	if vacant < t.CandidateWindow {
		return Wait{because("the lock is free: collecting candidates for %s", t.CandidateWindow)}
	}
	best, ahead := bestOther(s)
	if best == nil {
		return Acquire{because("the lock is free and this node is the most advanced eligible one")}
	}
	if ahead {
		return Wait{because("the lock is free and %s is more advanced", best.Node)}
	}
	if best.Cmp == Diverged {
		return Wait{because("the lock is free and %s has diverged from this node (each has transactions the other lacks): choose by hand with `mysqlpilot switchover --to`", best.Node)}
	}
	if vacant < t.CandidateWindow+t.TakeoverAfter {
		return Wait{because("the lock is free and %s is as advanced and preferred", best.Node)}
	}
	return Acquire{because("the lock is still free %s after the window and %s (no more advanced) has not taken it", vacant.Round(time.Millisecond), best.Node)}
}

// acceptLoss is how every wait for a lost node says the operator's way out.
const acceptLoss = "to fail over anyway, losing what only it holds: mysqlpilot accept-loss --yes"

// syncRule: after the last primary L is gone, a node may take the lock only if it is in L's
// recorded sync set, or is L itself, and every other member of the set is live and not ahead
// of it, or left for good (MemberRecord.Left) holding nothing it lacks. Every write L acknowledged is on L and on a member of that set (or L said it was
// alone, which the Alone rule and the empty set cover: only L then), so such a node has them
// all. L itself is held to the same rule: restarted, its crash recovery may have cut
// acknowledged writes whose engine commit had not reached the disk (see
// mysql.SemiSyncConfig.TruncateUnacknowledged); a member has them.
//
// L is the leader the record names, not the last one to hold the lock: a node that took the
// lock and was lost before it recorded its own set (it records it only once it has applied
// everything it received, right before it opens writes) wrote nothing, and L's writes are
// still where L's set says.
//
// A handover from L (a switchover record carrying L's final GTIDs, which the target waits
// for) loses nothing and is exempt.
func syncRule(s State) (why string, ok bool) {
	if !s.SemiSync || s.Sync == nil || s.Sync.Leader == "" || s.Sync.Async {
		return "", true
	}
	l := s.Sync.Leader
	if handoverTarget(s, l) {
		return "", true
	}
	switch {
	case l == s.Node && !s.Truncated:
		// L kept every transaction it wrote (its recovery dropped none, its datadir is its
		// own): no member holds a write of L's that L lacks, so none is waited for.
		return "", true
	case l == s.Node:
	case len(s.Sync.Members) == 0:
		return fmt.Sprintf("the last primary %s had an empty sync set (it acknowledged writes alone): waiting for it to come back; %s",
			l, acceptLoss), false
	case !s.Sync.Has(s.Node):
		return fmt.Sprintf("not in the last primary %s's sync set (%s): waiting for one of them or %s to take over",
			l, strings.Join(s.Sync.Members, ", "), l), false
	}
	if s.Sync.Boots != nil && l != s.Node && s.Boot != s.Sync.Boots[s.Node] {
		return fmt.Sprintf("this node's server restarted since %s recorded it in its sync set: what it held only in its relay log is gone; "+
			"waiting for %s; %s", l, l, acceptLoss), false
	}
	for _, n := range s.Sync.Members {
		if n == s.Node {
			continue
		}
		m := member(s.Members, n)
		switch {
		case m != nil && s.Sync.Boots != nil && m.Boot != s.Sync.Boots[n] && l != s.Node:
			return fmt.Sprintf("sync-set member %s's server restarted since %s recorded it: what it held only in its relay log is gone; "+
				"waiting for %s; %s", n, l, l, acceptLoss), false
		case m != nil && !m.Live && m.Left && (m.Cmp == Equal || m.Cmp == Behind):
			// It left for good (docker stop, a scale-down) with its IO thread stopped, and
			// we hold everything it had received: it holds no acknowledged write we lack.
		case m == nil || !m.Live:
			return fmt.Sprintf("sync-set member %s of the last primary %s is not live and may hold acknowledged writes: waiting for it; %s",
				n, l, acceptLoss), false
		case m.Acking:
			return fmt.Sprintf("sync-set member %s still acknowledges the lost primary's commits: waiting for it to stop", n), false
		case m.Cmp == Ahead:
			return fmt.Sprintf("sync-set member %s is more advanced: waiting for it to take over", n), false
		case m.Cmp == Diverged:
			return fmt.Sprintf("sync-set member %s has diverged from this node (each has transactions the other lacks): "+
				"choose by hand with `mysqlpilot switchover --to`", n), false
		}
	}
	return "", true
}

// NobodyElseMay reports whether the sync-set rule lets no node but node (the set's leader)
// take the lock: a member of its set has restarted since it was recorded (its relay log, which
// may have held writes it acknowledged, is gone), so every other candidate waits for node
// (see syncRule), so a restarted old primary need not wait for a failover before it starts. Only a new holder can change the record, and none can arise.
func NobodyElseMay(v ClusterView, node string) bool {
	s := v.Sync
	if s == nil || s.Async || s.Leader != node || s.Boots == nil {
		return false
	}
	for _, r := range v.Members {
		if r.Node != node && s.Has(r.Node) && r.Boot != "" && r.Boot != s.Boots[r.Node] {
			return true
		}
	}
	return false
}

// HandoverTarget is the member a graceful handover (switchover without --to, docker stop)
// goes to: among live eligible members, those that acknowledge our commits as members of our
// sync set first (they have what we acknowledged), then the most advanced (Rank: how many such
// members are further along; a member diverged from another is never the target), then the
// lower name. "" when there is none. The loop re-picks while it waits, as positions arrive.
func HandoverTarget(s State) string {
	var best *Member
	synced := func(m *Member) bool {
		return m.Acking && s.Sync != nil && s.Sync.Leader == s.Node && s.Sync.Has(m.Node)
	}
	for i := range s.Members {
		m := &s.Members[i]
		if !m.Live || !m.Eligible || m.Node == s.Node || m.Split {
			continue
		}
		switch {
		case best == nil:
		case synced(m) != synced(best):
			if !synced(m) {
				continue
			}
		case m.Rank != best.Rank:
			if m.Rank > best.Rank {
				continue
			}
		case m.Node > best.Node:
			continue
		}
		best = m
	}
	if best == nil {
		return ""
	}
	return best.Node
}

// handoverTarget: a handover from last (a switchover record carrying its final GTIDs, which
// the target waits for before it opens writes) names this node. It loses nothing, so the
// rules that protect a lost primary's writes do not hold the target back; they still hold
// every other node (an operator's request alone, or a record naming another target, proves
// nothing).
func handoverTarget(s State, last string) bool {
	sw := s.Switchover
	return sw != nil && sw.From == last && sw.GTID != "" && sw.To == s.Node
}

// syncMembersOnly: the sync-set rule applies to this node (it is a member of the last
// primary's set, or that primary): a node outside the set that is further along holds only
// writes nobody acknowledged, and never holds the election back.
func syncMembersOnly(s State) bool {
	if !s.SemiSync || s.Sync == nil || s.Sync.Leader == "" || s.Sync.Async {
		return false
	}
	return s.Sync.Leader == s.Node || s.Sync.Has(s.Node)
}

// bestOther returns the eligible member that outranks us, if any, and whether it is strictly
// more advanced (rather than equal and preferred by the tie-break).
func bestOther(s State) (best *Member, ahead bool) {
	only := syncMembersOnly(s)
	for i := range s.Members {
		m := &s.Members[i]
		if !m.Eligible || m.Node == s.Node {
			continue
		}
		if only && m.Node != s.Sync.Leader && !s.Sync.Has(m.Node) {
			continue
		}
		if m.Cmp == Ahead {
			if best == nil || !ahead || m.Node < best.Node {
				best, ahead = m, true
			}
			continue
		}
		if ahead || m.Cmp == Behind {
			continue
		}
		if m.Cmp == Diverged {
			// Neither contains the other: promoting either could drop acknowledged writes.
			// Never a tie to win by name; the operator decides.
			best = m
			continue
		}
		if best != nil && best.Cmp == Diverged {
			continue
		}
		if preferred(*m, s) && (best == nil || preferredOver(*m, *best)) {
			best = m
		}
	}
	return best, ahead
}

// preferred reports whether an equally advanced member wins the tie against us: the last
// leader first (no needless failover after a Consul restart), then the lower node name.
func preferred(m Member, s State) bool {
	if m.WasLeader != s.WasLeader {
		return m.WasLeader
	}
	return m.Node < s.Node
}

func preferredOver(a, b Member) bool {
	if a.WasLeader != b.WasLeader {
		return a.WasLeader
	}
	return a.Node < b.Node
}

func eligible(ms []Member, node string) bool {
	for _, m := range ms {
		if m.Node == node {
			return m.Eligible
		}
	}
	return false
}
