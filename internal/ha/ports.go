package ha

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSessionGone is returned by Cluster.RenewSession when Consul no longer knows the session.
var ErrSessionGone = errors.New("session gone")

// LeaderRecord is the value of the leader key: who holds the lock and where to reach it.
type LeaderRecord struct {
	Node     string    `json:"node"`
	Address  string    `json:"address"`
	Port     int       `json:"port"`
	ServerID uint32    `json:"server_id"`
	Since    time.Time `json:"since"`
}

// MemberRecord is the value of a member key.
type MemberRecord struct {
	Node      string  `json:"node"`
	Address   string  `json:"address"`
	Port      int     `json:"port"`
	Role      Role    `json:"role"`
	Executed  string  `json:"gtid_executed"`
	Received  string  `json:"gtid_received"`
	Lag       float64 `json:"lag_seconds"`
	Healthy   bool    `json:"healthy"`
	Eligible  bool    `json:"eligible"`
	WasLeader bool    `json:"was_leader"`
	// Streaming: a replica whose IO thread runs, connected to the lock holder (it can
	// acknowledge semi-synchronous commits).
	Streaming bool `json:"streaming,omitempty"`
	// Acking: its replica side of semi-sync is on (it acknowledges commits when streaming).
	Acking bool `json:"acking,omitempty"`
	// Boot: new each time the node's server starts (see SyncSet.Boots).
	Boot string `json:"boot,omitempty"`
	// Alone: a primary that may have acknowledged writes no replica has (semi-sync off, or
	// back on but no replica has caught up with what it committed alone yet). Published before
	// it acknowledges any such write; while this key outlives its session, no other node
	// takes over automatically.
	Alone bool `json:"alone,omitempty"`
	// Left: the node left for good (a graceful stop) after its IO thread stopped, so it
	// acknowledges nothing more and Received is all it ever could have acknowledged. The key
	// outlives its session with this value; the next start replaces it.
	Left    bool      `json:"left,omitempty"`
	Why     string    `json:"why"`
	Updated time.Time `json:"updated"`
	Live    bool      `json:"live"` // a session still holds the key (set by the adapter from the key, never from its value)
}

// ClusterView is one read of the cluster's keys.
type ClusterView struct {
	Leader        *LeaderRecord // nil when the lock is free
	LeaderSession string        // session holding the lock
	LastLeader    string        // with the lock free: its last holder ("" when unknown)
	Members       []MemberRecord
	Maintenance   bool
	Switchover    *Switchover
	Initialized   bool
	Sync          *SyncSet // the sync-set record, nil when none
	// History: the last changes of primary, oldest first (at most HistoryLen), for people.
	History []Failover
	// Snapshot: the latest published snapshot, nil when none.
	Snapshot *SnapshotInfo
	// BinlogArchived: when the binlog archive last recorded progress (zero: never).
	BinlogArchived time.Time
}

// Failover is one change of primary, as the new primary records it once it opened writes.
type Failover struct {
	At    time.Time     `json:"at"`
	From  string        `json:"from,omitempty"` // the last primary ("" for the first)
	To    string        `json:"to"`
	Cause string        `json:"cause"` // "switchover", "failover" or "bootstrap"
	Took  time.Duration `json:"took"`  // from the lock's release (or loss) to writes open here
}

// HistoryLen bounds the failover history kept in Consul.
const HistoryLen = 20

// SnapshotInfo is what the cluster view says of the latest snapshot.
type SnapshotInfo struct {
	ID        string    `json:"id"`
	Completed time.Time `json:"completed"`
	Size      int64     `json:"size"`
	// VerifiedAt is when a restore drill finished on it (zero: none yet); VerifyError why it
	// failed ("" when it passed). The names are the snapshot record's.
	VerifiedAt  time.Time `json:"verifiedAt,omitzero"`
	VerifyError string    `json:"verifyError,omitempty"`
}

// DrillState says what the latest snapshot's restore drill found: "verified", "failed" or
// "unverified" (none ran yet).
func (s SnapshotInfo) DrillState() string {
	switch {
	case s.VerifyError != "":
		return "failed"
	case !s.VerifiedAt.IsZero():
		return "verified"
	}
	return "unverified"
}

// Cluster is what the loop needs of Consul. internal/consul provides it through an adapter.
type Cluster interface {
	// View returns the latest view of the cluster's keys (from a blocking watch; cheap).
	View(ctx context.Context) (ClusterView, error)
	// CreateSession makes a session bound to this node's alive check, TTL and lock delay.
	CreateSession(ctx context.Context) (string, error)
	RenewSession(ctx context.Context, id string) error // ErrSessionGone when it is gone
	DestroySession(ctx context.Context, id string) error
	// SetAlive passes (ok) or fails the alive check the session is bound to.
	SetAlive(ctx context.Context, ok bool, note string) error
	// SetHealth registers this node in the read service with its role tag and updates its check.
	SetHealth(ctx context.Context, role Role, ok bool, note string) error
	// SetPrimary registers (on) or deregisters (off) this node as <service>-primary.
	SetPrimary(ctx context.Context, on bool) error
	Acquire(ctx context.Context, session string, rec LeaderRecord) (bool, error)
	Release(ctx context.Context, session string) error
	PublishMember(ctx context.Context, session string, m MemberRecord) error
	// SetSyncSet writes the sync-set record, only while session holds the leader lock
	// (checked by Consul in the same transaction): a deposed primary cannot write it.
	SetSyncSet(ctx context.Context, session string, s SyncSet) error
	// RecordFailover appends f to the bounded failover history (best effort, for people).
	RecordFailover(ctx context.Context, f Failover) error
	SetSwitchover(ctx context.Context, sw *Switchover) error // nil clears it
	MarkInitialized(ctx context.Context) error
}

// Database is what the loop needs of the local mysqld. internal/mysql provides it.
type Database interface {
	// Observe reads the server's state in one go.
	Observe(ctx context.Context) (DBState, error)
	// Fence: read_only on, client connections killed.
	Fence(ctx context.Context) error
	// Follow points replication at host:port and starts it, with the replica side of
	// semi-sync on (ack) or off.
	Follow(ctx context.Context, host string, port int, ack bool) error
	// SetAck turns the replica side of semi-sync on or off (restarting the IO thread, so the
	// change takes effect at once).
	SetAck(ctx context.Context, on bool) error
	// CatchUp stops fetching from the old primary and waits until the relay log is applied.
	CatchUp(ctx context.Context) error
	// Promote resets replication, runs first-boot bootstrap when asked, and opens writes.
	Promote(ctx context.Context, bootstrap bool) error
	// SentAll reports whether a fenced primary has sent its whole binlog to every connected
	// replica (and that at least one is connected).
	SentAll(ctx context.Context) (bool, error)
	// ArmWatchdog pushes the in-server fence deadline d into the future.
	ArmWatchdog(ctx context.Context, d time.Duration) error
	// Compare orders another server's progress against ours. Executed states are compared
	// per domain and originating server: what neither contains is Diverged, never Ahead.
	Compare(theirs, mine Progress) Cmp
	// SetSemiSync makes the primary's commits wait for a replica's acknowledgement (on) or
	// not (off); used with adaptive semi-sync only.
	SetSemiSync(ctx context.Context, on bool) error
}

// Progress is a server's GTID progress: what it executed (exact: MariaDB's binlog state, per
// domain and originating server; MySQL's gtid_executed) and what its replica IO thread
// received beyond that ("" when not a replica).
type Progress struct {
	Executed string
	Received string
}

// Progress of a member, as published.
func (m MemberRecord) Progress() Progress {
	return Progress{Executed: m.Executed, Received: m.Received}
}

// DBState is one observation of the local server.
type DBState struct {
	Writable bool
	Executed string // GTIDs applied (exact state)
	Received string // GTIDs fetched by the IO thread (MariaDB: Gtid_IO_Pos), "" when not a replica
	Empty    bool
	// Acking: the replica side of semi-sync is on.
	Acking bool
	// WatchdogGone: writable, and the in-server watchdog event is missing, disabled, or the
	// event scheduler is off (read on writable servers only).
	WatchdogGone bool
	// AckWaiting: commits waiting for a replica's acknowledgement now (read on writable
	// servers with adaptive semi-sync on).
	AckWaiting int
	// Replicas: the replicas streaming from this server now, "address:port" (read on
	// writable servers with semi-sync).
	Replicas []string
	Replica  *ReplicaStatus
	// SemiSync: the primary's commits wait for a replica's acknowledgement (read only when
	// semi-sync is configured).
	SemiSync bool
}

// ReplicaStatus is the server's replication state.
type ReplicaStatus struct {
	Host       string
	Port       int
	IORunning  bool
	Connecting bool // IO thread state "Connecting"
	SQLRunning bool
	Lag        time.Duration // -1 when unknown
	// Error is the server's text of the last replication error (local status only: it can
	// hold application data; what leaves the node is ErrNo and a class, see PublicReason).
	Error  string
	ErrNo  int
	Errant bool // the primary refused us because we have transactions it lacks
	// Purged: the primary refused us because it no longer has the binlogs after our
	// position (we are behind, not errant): only a re-seed from a snapshot helps.
	Purged bool
}

// PublicReason is a reason fit to leave the node (Consul KV, check notes, /cluster): the
// replication error's server text, which can hold application data, account names and hosts,
// becomes its number and a short class.
func PublicReason(why string, r *ReplicaStatus) string {
	if r == nil || r.Error == "" || why == "" {
		return why
	}
	return strings.ReplaceAll(why, r.Error, ReplicationErrorClass(r.ErrNo))
}

// ReplicationErrorClass is "error N (class)" for a replication error number.
func ReplicationErrorClass(errno int) string {
	class := "replication error"
	switch errno {
	case 1236:
		class = "the primary cannot serve this position"
	case 1045:
		class = "access denied: a wrong replication password, or TLS required by the primary and off here (mysql.tls)"
	case 2026:
		// MariaDB's own text for a certificate from another CA says only
		// "error:00000000:lib(0)::reason(0)".
		class = "TLS to the primary failed: its certificate is not signed by this node's CA, or does not name the address in the leader key (mysql.tls)"
	case 2002, 2003, 2005, 2013:
		class = "cannot connect"
	case 1062, 1032, 1451, 1452:
		class = "row conflict"
	case 0:
		return class
	}
	return fmt.Sprintf("error %d (%s)", errno, class)
}
