package ha

// ReseedState is what a quarantined node knows when it considers re-seeding itself from a
// snapshot (with a snapshot backend; without one it stays quarantined).
type ReseedState struct {
	// Latest is the id of the snapshot a re-seed would restore (the newest that did not fail
	// a restore drill), "" when there is none.
	Latest       string
	RestoredFrom string // the snapshot this datadir was restored from, "" when none
	// AllFailed names the latest snapshot when every one failed its restore drill (Latest is
	// then ""): a request must ask for one newer than it, as the drill did.
	AllFailed string
	// Requested: a snapshot request is pending; RequestedAfter is the snapshot it asks to be
	// newer than ("" for any).
	Requested      bool
	RequestedAfter string
}

// Reseed is what DecideReseed asks for.
type Reseed int

// Re-seed decisions.
const (
	ReseedNow       Reseed = iota // restart and restore the latest snapshot
	RequestSnapshot               // ask the primary for a fresh snapshot, stay quarantined
	WaitForSnapshot               // one is asked for already: stay quarantined
)

// ReseedDecision is DecideReseed's answer: what to do, the snapshot a request must be newer
// than ("" for any), and why, for the log.
type ReseedDecision struct {
	Do    Reseed
	After string
	Why   string
}

// DecideReseed is the re-seed policy. A node re-seeds from the latest snapshot unless its
// datadir came from that very snapshot: re-seeding twice from one snapshot would loop (it
// cannot cure what it caused), so it asks the primary for a fresh one, once, and waits read-only
// and out of service until it is published. The same with no snapshot at all.
func DecideReseed(r ReseedState) ReseedDecision {
	var after, wait string
	switch {
	case r.Latest == "" && r.AllFailed != "":
		after, wait = r.AllFailed, "every snapshot failed its restore drill (the latest is "+r.AllFailed+")"
	case r.Latest == "":
		wait = "there is no snapshot to re-seed from yet"
	case r.RestoredFrom == r.Latest:
		after, wait = r.Latest, "this datadir was restored from the latest snapshot "+r.Latest+" already"
	default:
		return ReseedDecision{Do: ReseedNow, Why: "re-seeding from the latest snapshot " + r.Latest}
	}
	if r.Requested && r.RequestedAfter == after {
		return ReseedDecision{Do: WaitForSnapshot, After: after, Why: wait + "; a fresh snapshot is asked for already"}
	}
	return ReseedDecision{Do: RequestSnapshot, After: after, Why: wait}
}
