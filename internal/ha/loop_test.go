package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeClock is the loop's clock; tests move it by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: t0} }
func (f *fakeWorld) record(s string)     { f.calls = append(f.calls, s) }

// countCalls is how many of the recorded calls are s.
func countCalls(xs []string, s string) int {
	n := 0
	for _, x := range xs {
		if x == s {
			n++
		}
	}
	return n
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// fakeWorld is Consul and mysqld in memory, recording every call in order.
type fakeWorld struct {
	calls     []string
	view      ClusterView
	db        DBState
	session   string
	aliveErr  error
	sentPoll  int // SentAll answers true from this poll on (0: never)
	polls     int
	alone     bool         // the last published MemberRecord.Alone
	dbErr     error        // Observe fails with it (mysqld not answering)
	member    MemberRecord // the last published
	ioStuck   bool         // CatchUp leaves the replica IO thread running
	viewDelay func()       // run by View (advances the fake clock: a slow read)
}

func (f *fakeWorld) View(context.Context) (ClusterView, error) {
	if f.viewDelay != nil {
		f.viewDelay()
	}
	return f.view, nil
}
func (f *fakeWorld) CreateSession(context.Context) (string, error) {
	f.record("CreateSession")
	f.session = "s1"
	return "s1", nil
}
func (f *fakeWorld) RenewSession(context.Context, string) error { f.record("RenewSession"); return nil }
func (f *fakeWorld) DestroySession(context.Context, string) error {
	f.record("DestroySession")
	return nil
}
func (f *fakeWorld) SetAlive(_ context.Context, ok bool, _ string) error {
	if ok {
		f.record("SetAlive")
	}
	return f.aliveErr
}
func (f *fakeWorld) SetHealth(context.Context, Role, bool, string) error { return nil }
func (f *fakeWorld) SetPrimary(_ context.Context, on bool) error {
	if on {
		f.record("SetPrimary(on)")
	} else {
		f.record("SetPrimary(off)")
	}
	return nil
}
func (f *fakeWorld) Acquire(_ context.Context, s string, rec LeaderRecord) (bool, error) {
	f.record("Acquire")
	f.view.Leader, f.view.LeaderSession = &rec, s
	return true, nil
}
func (f *fakeWorld) Release(context.Context, string) error {
	f.record("Release")
	f.view.Leader, f.view.LeaderSession = nil, ""
	return nil
}
func (f *fakeWorld) PublishMember(_ context.Context, _ string, m MemberRecord) error {
	if m.Alone != f.alone {
		f.record(fmt.Sprintf("PublishMember(alone=%v)", m.Alone))
	}
	f.alone = m.Alone
	if m.Left {
		f.record("PublishMember(left)")
	} else if strings.HasPrefix(m.Why, "leaving") && !m.Eligible {
		f.record("PublishMember(leaving)")
	}
	f.member = m
	return nil
}
func (f *fakeWorld) SetSwitchover(_ context.Context, sw *Switchover) error {
	if sw == nil {
		f.record("ClearSwitchover")
	} else {
		f.record("SetSwitchover(" + sw.To + ")")
	}
	f.view.Switchover = sw
	return nil
}
func (f *fakeWorld) MarkInitialized(context.Context) error {
	f.record("MarkInitialized")
	f.view.Initialized = true
	return nil
}
func (f *fakeWorld) Observe(context.Context) (DBState, error) { return f.db, f.dbErr }
func (f *fakeWorld) Fence(context.Context) error {
	f.record("Fence")
	f.db.Writable = false
	return nil
}
func (f *fakeWorld) Follow(_ context.Context, host string, _ int, ack bool) error {
	f.record("Follow(" + host + ")")
	f.db.Acking = ack
	return nil
}
func (f *fakeWorld) SetAck(_ context.Context, on bool) error {
	f.record(fmt.Sprintf("SetAck(%v)", on))
	f.db.Acking = on
	return nil
}
func (f *fakeWorld) SetSyncSet(_ context.Context, _ string, s SyncSet) error {
	f.record(fmt.Sprintf("SetSyncSet(%s)", strings.Join(s.Members, ",")))
	f.view.Sync = &s
	return nil
}
func (f *fakeWorld) CatchUp(context.Context) error {
	f.record("CatchUp")
	if r := f.db.Replica; r != nil && !f.ioStuck {
		r.IORunning = false
	}
	return nil
}
func (f *fakeWorld) RecordFailover(_ context.Context, fo Failover) error {
	f.record("RecordFailover(" + fo.Cause + ")")
	f.view.History = append(f.view.History, fo)
	return nil
}
func (f *fakeWorld) Promote(_ context.Context, bootstrap bool) error {
	if bootstrap {
		f.record("Promote(bootstrap)")
	} else {
		f.record("Promote")
	}
	f.db.Writable = true
	return nil
}
func (f *fakeWorld) SentAll(context.Context) (bool, error) {
	f.polls++
	if f.sentPoll > 0 && f.polls >= f.sentPoll {
		f.record("SentAll")
		return true, nil
	}
	return false, nil
}
func (f *fakeWorld) ArmWatchdog(context.Context, time.Duration) error {
	f.record("ArmWatchdog")
	return nil
}
func (f *fakeWorld) SetSemiSync(_ context.Context, on bool) error {
	f.record(fmt.Sprintf("SetSemiSync(%v)", on))
	f.db.SemiSync = on
	return nil
}

// Compare orders the fakes' one-letter positions: the further of executed and received.
func (f *fakeWorld) Compare(theirs, mine Progress) Cmp {
	a, b := max(theirs.Executed, theirs.Received), max(mine.Executed, mine.Received)
	switch {
	case a == b:
		return Equal
	case a > b:
		return Ahead
	}
	return Behind
}

// loopTiming is the decide tests' timing with the defaults' TTLs.
var loopTiming = func() Timing {
	t := timing
	t.SessionTTL, t.CheckTTL, t.LockDelay, t.Interval, t.HandoverTimeout = 10*time.Second, 5*time.Second, time.Second, time.Second, 10*time.Second
	return t
}()

func newLoop(f *fakeWorld, c *fakeClock) *Loop { return newLoopWith(f, c, false) }

func newLoopWith(f *fakeWorld, c *fakeClock, semiSyncAuto bool) *Loop {
	return New(Config{
		SemiSyncAuto: semiSyncAuto, SemiSync: semiSyncAuto,
		Node: "n1", Address: "10.0.0.1", Port: 3306, Timing: loopTiming,
		MaxLag: 30 * time.Second,
	}, f, f, slog.New(slog.DiscardHandler), c.now)
}

// cycleUntilWritable runs the loop, a second apart, until the node opens writes (at most 5
// cycles: the caller checks whether it did).
func cycleUntilWritable(l *Loop, f *fakeWorld, c *fakeClock) {
	for i := 0; i < 5 && !f.db.Writable; i++ {
		l.Cycle(context.Background())
		c.add(time.Second)
	}
}

func inOrder(t *testing.T, calls []string, want ...string) {
	t.Helper()
	last := -1
	for _, w := range want {
		i := indexOf(calls[last+1:], w)
		if i < 0 {
			t.Fatalf("calls %v: %q missing or out of order (want order %v)", calls, w, want)
		}
		last += i + 1
	}
}

func TestFirstBootBootstrapsAndOpensWritesLast(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Empty: true}}, newClock()
	l := newLoop(f, c)
	cycleUntilWritable(l, f, c)
	if !f.db.Writable {
		t.Fatalf("never became writable: %v", f.calls)
	}
	// The alive check passes before the session (bound to it) is created; the watchdog is
	// armed before writes open; mysql-primary is registered only after.
	inOrder(t, f.calls, "SetAlive", "CreateSession", "Acquire", "CatchUp", "ArmWatchdog", "Promote(bootstrap)", "MarkInitialized", "ArmWatchdog", "SetPrimary(on)")
	if st := l.Status(); st.Role != RolePrimary || !st.Healthy {
		t.Errorf("status = %+v", st)
	}
}

func TestPrimaryFencesWhenAliveChecksStopPassing(t *testing.T) {
	f, c := &fakeWorld{db: DBState{}}, newClock()
	l := newLoop(f, c)
	cycleUntilWritable(l, f, c)
	f.calls = nil
	f.aliveErr = errConsulDown
	var fencedAt time.Duration
	for i := 1; i <= 10; i++ {
		c.add(500 * time.Millisecond)
		if a := l.Cycle(context.Background()); strings.HasPrefix(Describe(a), "Fence") {
			fencedAt = time.Duration(i) * 500 * time.Millisecond
			break
		}
	}
	// Last good pass was sent one second before the outage began; checkTTL 5s, less the
	// watchdog's 1s slack and the 1.5s margin: the fence must come 2.5s after that pass at the
	// latest, i.e. within 1.5s of the outage.
	if fencedAt == 0 || fencedAt > 1500*time.Millisecond {
		t.Fatalf("fenced after %s (calls %v), want <= 1.5s into the outage", fencedAt, f.calls)
	}
	inOrder(t, f.calls, "Fence", "SetPrimary(off)")
}

// The session is renewed only while the alive check passes through our agent: renewals that
// go another way (consul.fallback) must not keep alive the lock of a primary whose agent can
// no longer vouch for it (nor end its session through the check).
func TestNoRenewalWithoutTheAliveCheck(t *testing.T) {
	f, c := &fakeWorld{db: DBState{}}, newClock()
	l := newLoop(f, c)
	cycleUntilWritable(l, f, c)
	f.aliveErr = errConsulDown
	renewals := func() int { return countCalls(f.calls, "RenewSession") }
	before := -1
	for i := 0; i < 60; i++ { // 30 s
		c.add(500 * time.Millisecond)
		l.Cycle(context.Background())
		if i == 10 { // 5.5 s: checkTTL since the last pass
			before = renewals()
		}
	}
	if after := renewals(); after != before {
		t.Errorf("%d renewals after the alive check stopped passing for its TTL, want none (calls %v)", after-before, f.calls)
	}
	f.aliveErr = nil
	c.add(500 * time.Millisecond)
	l.Cycle(context.Background())
	if renewals() == before {
		t.Errorf("no renewal once the alive check passed again")
	}
}

// A primary re-arms the watchdog on every alive pass, not only when its cycle gets to
// StayPrimary after the Consul reads, which take their full timeout while Consul elects a
// leader. Not once fenced, nor while an action runs beside the heartbeats.
func TestAlivePassRearmsTheWatchdog(t *testing.T) {
	f, c := &fakeWorld{db: DBState{}}, newClock()
	l := newLoop(f, c)
	cycleUntilWritable(l, f, c)
	arms := func() int { return countCalls(f.calls, "ArmWatchdog") }
	n := arms()
	c.add(500 * time.Millisecond)
	l.heartbeat(context.Background(), true, nil)
	if arms() != n+1 {
		t.Fatalf("calls %v: the alive pass of a primary with writes open did not re-arm the watchdog", f.calls)
	}
	l.acting = true
	l.heartbeat(context.Background(), true, nil)
	l.acting = false
	if arms() != n+1 {
		t.Errorf("re-armed while an action ran beside the heartbeats")
	}
	// The watchdog fired by itself (promotedAt still set): read-only as observed, no re-arm.
	l.lastDB.Writable = false // as the next observation will say
	n = arms()
	l.heartbeat(context.Background(), true, nil)
	if arms() != n {
		t.Errorf("re-armed a server observed read-only (calls %v)", f.calls)
	}
	l.lastDB.Writable = true
	if err := l.fence(context.Background()); err != nil {
		t.Fatal(err)
	}
	n = arms()
	l.heartbeat(context.Background(), true, nil)
	if arms() != n {
		t.Errorf("re-armed after a fence")
	}
}

// A cycle whose Consul calls each wait out their bound (no Consul leader) passes the alive
// check again between them, so the passes never lag more than about an Interval and one call.
func TestSlowConsulCycleBeatsBetweenCalls(t *testing.T) {
	f, c := &fakeWorld{db: DBState{}}, newClock()
	l := newLoop(f, c)
	cycleUntilWritable(l, f, c)
	f.viewDelay = func() { c.add(time.Second) } // the read waits out its bound
	f.calls = nil
	c.add(time.Second)
	l.Cycle(context.Background())
	if got := countCalls(f.calls, "SetAlive"); got < 2 {
		t.Errorf("calls %v: %d alive passes in a cycle whose Consul read took its full bound, want 2", f.calls, got)
	}
}

func TestGracefulStopHandsOverOnlyAfterReplicasHaveEverything(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Executed: "5", Received: "5"}}, newClock()
	l := newLoop(f, c)
	cycleUntilWritable(l, f, c)
	f.view.Members = []MemberRecord{{Node: "n2", Live: true, Eligible: true, Received: "4"}}
	f.calls = nil
	f.sentPoll = 3 // the replica's IO thread needs a few polls to drain the binlog
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	inOrder(t, f.calls, "Fence", "SetPrimary(off)", "SentAll", "SetSwitchover(n2)", "Release", "DestroySession")
	if f.polls != 3 {
		t.Errorf("released after %d polls, want 3 (only once the binlog was sent)", f.polls)
	}
}

// A replica that stops for good stops fetching (its IO thread is what acknowledges), then
// publishes its final position with Left before its session ends: should the primary be lost
// too, the others need not wait for it (see TestSyncSetCandidacy). One whose IO thread still
// runs says nothing of the kind.
func TestGracefulStopOfAReplicaSaysItLeft(t *testing.T) {
	for _, stuck := range []string{"", "running", "connecting"} {
		f, c := &fakeWorld{db: DBState{Executed: "4", Received: "5", Acking: true, Replica: &ReplicaStatus{IORunning: true, SQLRunning: true}}}, newClock()
		f.ioStuck = stuck != ""
		if stuck == "connecting" {
			f.db.Replica.IORunning, f.db.Replica.Connecting = false, true
		}
		f.view.Leader, f.view.LeaderSession = &LeaderRecord{Node: "n2"}, "s2"
		l := newLoop(f, c)
		l.session = "s1"
		l.published = MemberRecord{Node: "n1", Role: RoleReplica, Eligible: true, Healthy: true, Streaming: true, Acking: true, Executed: "3", Received: "4"}
		if err := l.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if stuck != "" {
			if slices.Contains(f.calls, "PublishMember(left)") {
				t.Errorf("IO thread %s, yet it said it left: %v", stuck, f.calls)
			}
			continue
		}
		inOrder(t, f.calls, "PublishMember(leaving)", "CatchUp", "PublishMember(left)", "DestroySession")
		m := f.member
		if m.Received != "5" || m.Executed != "4" || m.Eligible || m.Streaming || !m.Acking || !m.Left {
			t.Errorf("final record %+v: want its final position (4, 5), left, neither eligible nor streaming, acking as observed", m)
		}
	}
}

type consulDownErr struct{}

func (consulDownErr) Error() string { return "consul down" }

var errConsulDown error = consulDownErr{}

// Adaptive semi-sync on a primary alone: it says in Consul that it commits alone before it
// turns semi-sync off (releasing waiting commits); when a replica streams from it, semi-sync
// comes back, and the flag clears only once that replica has everything committed alone.
func TestAdaptiveSemiSyncSaysAloneFirst(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Empty: true}}, newClock()
	l := newLoopWith(f, c, true)
	cycleUntilWritable(l, f, c)
	if !f.db.Writable {
		t.Fatalf("never became writable: %v", f.calls)
	}
	// A new primary says alone before it opens writes (until a member has what it holds);
	// Promote turned semi-sync on; alone, it goes off, and only after the flag is out.
	inOrder(t, f.calls, "PublishMember(alone=true)", "Promote(bootstrap)", "SetSemiSync(false)")
	// The last primary's record is replaced only once what we received is applied: until
	// then, its writes may sit only in relay logs, and its record names who holds them.
	inOrder(t, f.calls, "CatchUp", "PublishMember(alone=true)", "SetSyncSet()", "Promote(bootstrap)")
	if !f.alone || f.db.SemiSync {
		t.Fatalf("alone=%v semi-sync=%v after promotion with no replica", f.alone, f.db.SemiSync)
	}

	// A replica streams from us, behind what we committed alone.
	f.calls = nil
	f.db.Executed, f.db.Received = "5", "5"
	f.view.Members = []MemberRecord{{Node: "n2", Role: RoleReplica, Eligible: true, Streaming: true, Live: true, Received: "3"}}
	l.Cycle(context.Background())
	c.add(time.Second)
	inOrder(t, f.calls, "SetSemiSync(true)")
	if !f.alone {
		t.Fatal("alone cleared before the replica had the writes committed alone")
	}
	f.view.Members[0].Received = "5"
	f.view.Members[0].Acking = true // in the sync set, it turned its replica side on
	l.Cycle(context.Background())
	if f.alone {
		t.Fatalf("alone still set with the replica caught up: %v", f.calls)
	}
}

// The Alone flag outlives whatever the node does next, short of following another primary:
// a cycle that is not StayPrimary (mysqld not answering, a fence) keeps it published, and a
// restarted process takes it back from its own member key.
func TestAloneFlagIsSticky(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Empty: true}}, newClock()
	l := newLoopWith(f, c, true)
	cycleUntilWritable(l, f, c)
	if !f.alone {
		t.Fatalf("not alone after promotion with no replica: %v", f.calls)
	}
	f.dbErr = errors.New("mysqld: i/o timeout")
	for i := 0; i < 3; i++ {
		a := l.Cycle(context.Background())
		c.add(500 * time.Millisecond)
		if !f.alone {
			t.Fatalf("alone cleared by %s", Describe(a))
		}
	}
	f.dbErr = nil

	// A new process (same node) finds its Alone record and keeps it.
	f2, c2 := &fakeWorld{db: DBState{Writable: false}}, newClock()
	f2.view.Members = []MemberRecord{{Node: "n1", Role: RolePrimary, Alone: true}}
	f2.alone = true
	l2 := newLoopWith(f2, c2, true)
	l2.Cycle(context.Background())
	if !f2.alone {
		t.Fatalf("a restarted process published alone=false: %v", f2.calls)
	}
}

// The lock is free and its last holder, dead, said it committed alone: this node waits.
func TestNoTakeoverFromADeadAlonePrimary(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Executed: "9", Received: "9"}}, newClock()
	f.view.Initialized, f.view.LastLeader = true, "n2"
	f.view.Members = []MemberRecord{{Node: "n2", Role: RolePrimary, Alone: true, WasLeader: true, Executed: "10", Received: "10"}}
	l := newLoopWith(f, c, true)
	for i := 0; i < 6; i++ {
		l.Cycle(context.Background())
		c.add(time.Second)
	}
	if f.db.Writable || indexOf(f.calls, "Acquire") >= 0 {
		t.Fatalf("took over from a primary that committed alone: %v", f.calls)
	}
	if st := l.Status(); !strings.Contains(st.Action, "may have acknowledged writes no replica has") {
		t.Fatalf("status action = %q", st.Action)
	}
}

// Turning the replica side of semi-sync on is a replica's cycle: its role and health stay.
func TestSetAckKeepsTheReplicaRole(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Executed: "5", Replica: &ReplicaStatus{Host: "10.0.0.2", Port: 3306, IORunning: true, SQLRunning: true}}}, newClock()
	f.session = "s1"
	f.view.Leader, f.view.LeaderSession = &LeaderRecord{Node: "n2", Address: "10.0.0.2", Port: 3306}, "s2"
	f.view.Sync = &SyncSet{Leader: "n2", Members: []string{"n1"}}
	l := newLoopWith(f, c, true)
	var a Action
	for i := 0; i < 4; i++ {
		if a = l.Cycle(context.Background()); strings.HasPrefix(Describe(a), "SetAck(true)") {
			break
		}
		c.add(time.Second)
	}
	if !strings.HasPrefix(Describe(a), "SetAck(true)") {
		t.Fatalf("never turned acknowledging on: last %s, calls %v", Describe(a), f.calls)
	}
	if st := l.Status(); st.Role != RoleReplica || !st.Healthy {
		t.Fatalf("after %s: role %q healthy %v, want a healthy replica", Describe(a), st.Role, st.Healthy)
	}
}

// A datadir cut by a truncating recovery or a restore lacks writes its node acknowledged as
// primary until that node, promoted again, has recorded its own sync set: only then does the
// loop say so (the node removes its marker file).
func TestTruncatedEndsWithOwnSyncSet(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Empty: true}}, newClock()
	cleared := 0
	l := New(Config{
		SemiSyncAuto: true, SemiSync: true, Truncated: true, OnOwnSyncSet: func() { cleared++ },
		Node: "n1", Address: "10.0.0.1", Port: 3306, Timing: loopTiming, MaxLag: 30 * time.Second,
	}, f, f, slog.New(slog.DiscardHandler), c.now)
	if !l.truncated {
		t.Fatal("Truncated from the config is not in force")
	}
	cycleUntilWritable(l, f, c)
	if !f.db.Writable {
		t.Fatalf("never became writable: %v", f.calls)
	}
	inOrder(t, f.calls, "Promote(bootstrap)", "RecordFailover(bootstrap)")
	if l.truncated || cleared != 1 {
		t.Errorf("after recording its own set: truncated=%v, OnOwnSyncSet called %d times; want false, 1", l.truncated, cleared)
	}
}

// A fence stops advertising writes at once (the status GET /primary reads), even when no report
// follows (a handover runs after the loop stopped).
func TestFenceStopsAdvertisingAtOnce(t *testing.T) {
	f, c := &fakeWorld{db: DBState{Empty: true}}, newClock()
	l := newLoopWith(f, c, false)
	cycleUntilWritable(l, f, c)
	if st := l.Status(); st.Role != RolePrimary || st.WritableUntil.IsZero() {
		t.Fatalf("not advertised as primary: %+v", st)
	}
	if err := l.fence(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.Role == RolePrimary || !st.WritableUntil.IsZero() {
		t.Errorf("still advertised as primary after the fence: role %s until %s", st.Role, st.WritableUntil)
	}
}

// A member that left is covered once a live member that streams and acknowledges has
// everything it received; a member that does not acknowledge covers nothing.
func TestLeftMemberCovered(t *testing.T) {
	f, c := &fakeWorld{}, newClock()
	l := newLoop(f, c)
	for _, tc := range []struct {
		other   MemberRecord
		covered bool
	}{
		{MemberRecord{Node: "n3", Live: true, Streaming: true, Acking: true, Received: "5"}, true},
		{MemberRecord{Node: "n3", Live: true, Streaming: true, Acking: true, Received: "6"}, true},
		{MemberRecord{Node: "n3", Live: true, Streaming: true, Acking: true, Received: "4"}, false},
		{MemberRecord{Node: "n3", Live: true, Streaming: true, Received: "6"}, false},
		{MemberRecord{Node: "n3", Live: false, Streaming: true, Acking: true, Received: "6"}, false},
	} {
		view := ClusterView{Members: []MemberRecord{{Node: "n2", Left: true, Received: "5"}, tc.other}}
		ms := l.members(view, Progress{Executed: "6"})
		if covered := slices.Equal(ms[0].CoveredBy, []string{"n3"}); covered != tc.covered {
			t.Errorf("left at 5, other %+v: covered by %v, want covered %v", tc.other, ms[0].CoveredBy, tc.covered)
		}
	}
}
