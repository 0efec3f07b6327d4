package ha

import "fmt"

// Action is what Decide asks the loop to do. Each action carries the reason it was chosen.
type Action interface {
	// Why is one sentence that names the branch, for the log and `mysqlpilot status`.
	Why() string
	isAction()
}

type reason string

func (r reason) Why() string { return string(r) }
func (reason) isAction()     {}

// Wait does nothing this cycle.
type Wait struct{ reason }

// Fence makes this node read-only, kills client sessions and deregisters mysql-primary at once.
type Fence struct{ reason }

// NewSession creates a Consul session (and republishes our member key).
type NewSession struct{ reason }

// Acquire tries to take the leader lock; on success the loop promotes in the same cycle.
type Acquire struct{ reason }

// Promote applies the relay log fully, stops replication and opens writes. We already hold
// the lock.
type Promote struct{ reason }

// StayPrimary renews the watchdog and keeps mysql-primary registered. With adaptive
// semi-sync (State.SemiSyncAuto), SemiSync says whether commits must wait for a replica's
// acknowledgement: while the sync set has a member, yes.
//
// With semi-sync configured (State.SemiSync), Sync is the sync set to record. The loop acts
// in this order: when Alone, say so in the member key first; then write the record (before
// any new member may acknowledge, after a dropped one stopped); then turn semi-sync on or off.
type StayPrimary struct {
	reason
	SemiSync bool
	Sync     []string // nil without semi-sync
	Alone    bool     // members that may hold acknowledged writes are dropped with none caught up
}

// Follow points replication at Primary and starts it, acknowledging commits (Ack) only as a
// member of Primary's sync set.
type Follow struct {
	reason
	Primary string
	Ack     bool
}

// SetAck turns this replica's side of semi-sync on (a member of the primary's sync set) or
// off (no longer a member, or about to lose its session: a member without a session must not
// acknowledge, the primary drops it).
type SetAck struct {
	reason
	On bool
}

// StayReplica keeps replicating.
type StayReplica struct{ reason }

// Release gives up the lock after promotions that keep failing, and benches this node (no
// candidacy for BenchTime), so a node that cannot open writes does not hold the lock forever.
type Release struct{ reason }

// Handover is a switchover from us: fence, let To catch up, then release the lock.
type Handover struct {
	reason
	To string // "" means the most advanced replica
}

// Quarantine keeps a node with errant transactions out of replication and out of service,
// loudly, until it is re-seeded.
type Quarantine struct{ reason }

func because(format string, args ...any) reason { return reason(fmt.Sprintf(format, args...)) }

// Describe renders an action as "<Kind>: <why>" for logs.
func Describe(a Action) string {
	name := fmt.Sprintf("%T", a)
	if i := len("ha."); len(name) > i && name[:i] == "ha." {
		name = name[i:]
	}
	if f, ok := a.(Follow); ok {
		ack := ""
		if f.Ack {
			ack = ", acknowledging"
		}
		return fmt.Sprintf("%s(%s%s): %s", name, f.Primary, ack, a.Why())
	}
	if f, ok := a.(SetAck); ok {
		return fmt.Sprintf("%s(%v): %s", name, f.On, a.Why())
	}
	if h, ok := a.(Handover); ok && h.To != "" {
		return fmt.Sprintf("%s(%s): %s", name, h.To, a.Why())
	}
	return name + ": " + a.Why()
}
