package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// Database is the server the HA loop drives: it implements ha.Database over DB.
type Database struct {
	*DB
	flavor   Flavor
	users    Users
	semiSync bool
	semiAuto bool // adaptive semi-sync: the loop needs the primary's semi-sync state
	semiTO   time.Duration
	tls      *ServerTLS // nil: replication in plain TCP
	log      *slog.Logger
	// OnUnacknowledged, when set, is called by Fence when commits still wait for an
	// acknowledgement that does not come (the replicas follow another primary, or are cut
	// off). It may end the server hard (SIGKILL), so that the next start's crash recovery
	// drops those commits (SemiSyncConfig.TruncateUnacknowledged) instead of committing them
	// as errant transactions, and reports whether it did.
	OnUnacknowledged func(waiting int) bool
	// watchdogGone: the last observation of a writable server found its watchdog gone;
	// ArmWatchdog reinstalls it before the next promotion opens writes.
	watchdogGone bool
}

// ArmWatchdog arms the in-server watchdog, reinstalling it first when it was found gone.
func (d *Database) ArmWatchdog(ctx context.Context, dur time.Duration) error {
	if d.watchdogGone {
		if err := d.InstallWatchdog(ctx); err != nil {
			return err
		}
		d.log.Warn("the in-server watchdog was gone: reinstalled it")
		d.watchdogGone = false
	}
	return d.DB.ArmWatchdog(ctx, dur)
}

func (d *Database) Observe(ctx context.Context) (ha.DBState, error) {
	ro, err := d.ReadOnly(ctx)
	if err != nil {
		return ha.DBState{}, err
	}
	g, err := d.GTIDState(ctx)
	if err != nil {
		return ha.DBState{}, err
	}
	st := ha.DBState{Writable: !ro, Executed: g.Executed, Received: g.Received, Empty: g.Executed == ""}
	if d.semiAuto && st.Writable {
		if st.SemiSync, err = d.SemiSyncPrimary(ctx); err != nil {
			return ha.DBState{}, err
		}
		if st.SemiSync {
			if st.AckWaiting, err = d.SemiSyncWaiting(ctx); err != nil {
				return ha.DBState{}, err
			}
		}
	}
	if d.semiSync && st.Writable {
		if st.Replicas, err = d.ConnectedReplicas(ctx); err != nil {
			return ha.DBState{}, err
		}
	}
	if st.Writable {
		running, err := d.WatchdogRunning(ctx)
		if err != nil {
			return ha.DBState{}, err
		}
		st.WatchdogGone = !running
		d.watchdogGone = st.WatchdogGone
	}
	if d.semiSync && !st.Writable {
		if st.Acking, err = d.ReplicaAck(ctx); err != nil {
			return ha.DBState{}, err
		}
	}
	rs, err := d.ReplicaStatus(ctx)
	if err != nil {
		return ha.DBState{}, err
	}
	if rs != nil {
		r := &ha.ReplicaStatus{Host: rs.PrimaryHost, Port: rs.PrimaryPort, IORunning: rs.IORunning, SQLRunning: rs.SQLRunning, Lag: -1,
			Connecting: rs.IOState == "Connecting" || rs.IOState == "Preparing"}
		if rs.LagSeconds != nil {
			r.Lag = time.Duration(*rs.LagSeconds) * time.Second
		}
		switch {
		case rs.LastSQLError != "":
			r.Error, r.ErrNo = rs.LastSQLError, rs.LastSQLErrno
		case rs.LastIOError != "":
			r.Error, r.ErrNo = rs.LastIOError, rs.LastIOErrno
		}
		// 1236: the primary cannot serve our position: we hold transactions it never had
		// (errant), or it purged binlogs we still need (then we are only behind: not errant,
		// and the error stays visible until the node is re-seeded from a snapshot).
		msg := strings.ToLower(rs.LastIOError)
		r.Errant, r.Purged = classify1236(rs.LastIOErrno, msg)
		st.Replica = r
	}
	return st, nil
}

// unackedWait is how long Fence lets commits that wait for an acknowledgement get one (a
// handover's replicas acknowledge within milliseconds) before it calls OnUnacknowledged.
const unackedWait = time.Second

func (d *Database) Fence(ctx context.Context) error {
	if d.semiSync && d.OnUnacknowledged != nil {
		if waiting := d.stillWaiting(ctx); waiting > 0 && d.OnUnacknowledged(waiting) {
			return fmt.Errorf("fence: %d commits waited for an acknowledgement that did not come: mysqld was killed, "+
				"so that its crash recovery drops them", waiting)
		}
	}
	n, err := d.DB.Fence(ctx)
	if err == nil && n > 0 {
		d.log.Warn("fence killed client connections", "count", n)
	}
	return err
}

// stillWaiting returns how many commits still wait for an acknowledgement after unackedWait
// (0 as soon as none does).
func (d *Database) stillWaiting(ctx context.Context) int {
	deadline := time.Now().Add(unackedWait)
	for {
		n, err := d.SemiSyncWaiting(ctx)
		if err != nil || n == 0 {
			return 0
		}
		if !time.Now().Before(deadline) {
			return n
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Database) Follow(ctx context.Context, host string, port int, ack bool) error {
	o := ChangePrimaryOptions{ConnectRetry: time.Second, HeartbeatPeriod: time.Second}
	if d.tls != nil {
		// The primary's certificate must be signed by the cluster's CA and name host.
		o.SSL, o.SSLCA = true, d.tls.CA
	}
	err := d.ChangePrimary(ctx, Primary{Host: host, Port: port, User: d.users.ReplUser, Password: d.users.ReplPassword}, o)
	if err != nil {
		return err
	}
	if d.semiSync {
		// Only a member of the primary's sync set acknowledges (ha.SyncSet).
		if err := d.SetReplicaAck(ctx, ack); err != nil {
			return err
		}
	}
	return d.StartReplica(ctx)
}

func (d *Database) SetAck(ctx context.Context, on bool) error {
	if !d.semiSync {
		return nil
	}
	return d.SetReplicaAck(ctx, on)
}

func (d *Database) SentAll(ctx context.Context) (bool, error) {
	_, all, err := d.BinlogSentToAll(ctx)
	return all, err
}

func (d *Database) CatchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return d.WaitRelayApplied(ctx)
}

func (d *Database) Promote(ctx context.Context, bootstrap bool) error {
	rs, err := d.ReplicaStatus(ctx)
	if err != nil {
		return err
	}
	if rs != nil {
		if err := d.StopReplica(ctx); err != nil {
			return err
		}
		if err := d.ResetReplica(ctx); err != nil {
			return err
		}
	}
	if bootstrap {
		if err := d.Bootstrap(ctx, d.users); err != nil {
			return err
		}
	}
	if changed, err := d.RequireReplTLS(ctx, d.users.ReplUser, d.tls != nil); err != nil {
		return err
	} else if changed {
		d.log.Info("replication account's TLS requirement changed", "user", d.users.ReplUser, "require_tls", d.tls != nil)
	}
	if d.semiSync {
		if err := d.EnableSemiSync(ctx, true, d.semiTO); err != nil {
			return err
		}
	}
	return d.SetReadOnly(ctx, false)
}

func (d *Database) SetSemiSync(ctx context.Context, on bool) error {
	if on {
		return d.EnableSemiSync(ctx, true, d.semiTO)
	}
	return d.DisableSemiSync(ctx)
}

func (d *Database) Compare(theirs, mine ha.Progress) ha.Cmp {
	o := CompareProgress(d.flavor, Progress(theirs), Progress(mine))
	return map[Order]ha.Cmp{Same: ha.Equal, Further: ha.Ahead, Behind: ha.Behind, Split: ha.Diverged}[o]
}

// StartOptions say how the node runs its server (the mysql and ha sections of the config).
type StartOptions struct {
	Flavor     Flavor
	Exec       []string // the server command: the binary and its arguments (mysql.exec)
	OSUser     string   // the command's --user=, who owns the datadir ("" for none)
	Datadir    string
	Socket     string
	ConfigFile string // the option file Start writes
	Port       int
	ServerID   uint32
	ReportHost string // the address replicas and Consul know this node by
	Users      Users  // root's password and the accounts a fresh datadir gets
	// TLS: the server's certificate files; replicas verify the primary's against TLS.CA and
	// the replication account requires TLS. nil: plain TCP.
	TLS *ServerTLS

	SemiSync        bool          // semi-synchronous replication (ha.semiSync)
	SemiSyncAuto    bool          // adaptive semi-sync: the loop reads the primary's state
	SemiSyncTimeout time.Duration // 0: no async fallback
	// TruncateUnacknowledged: see SemiSyncConfig.TruncateUnacknowledged (MariaDB only).
	TruncateUnacknowledged bool

	StartTimeout time.Duration // for the server to answer
	StopTimeout  time.Duration // for it to stop when start-up fails
}

// maxSemiSyncTimeout is the longest rpl_semi_sync_master_timeout MariaDB and MySQL accept.
const maxSemiSyncTimeout = 4294967295 * time.Millisecond

// Start prepares the datadir and option file, starts mysqld read-only under the supervisor
// and returns a pooled connection once it answers.
func Start(ctx context.Context, sup *supervisor.Supervisor, m StartOptions, log *slog.Logger) (*Database, *supervisor.Process, error) {
	flavor, user, users := m.Flavor, m.OSUser, m.Users
	initialized, err := Initialized(m.Datadir)
	if err != nil {
		return nil, nil, fmt.Errorf("datadir %s: %w", m.Datadir, err)
	}
	tmpdir := serverTmpdir(m.Datadir)
	if !initialized {
		if err := initDatadir(ctx, sup, flavor, m.Datadir, tmpdir, user, log); err != nil {
			return nil, nil, err
		}
	}
	sc := ServerConfig{
		Flavor: flavor, Datadir: m.Datadir, Socket: m.Socket, Port: m.Port,
		ServerID: m.ServerID, ReportHost: m.ReportHost, TmpDir: tmpdir, TLS: m.TLS,
	}
	semiTO := m.SemiSyncTimeout
	if semiTO == 0 {
		// No async fallback, ever: MariaDB's longest timeout (2^32-1 ms, 49 days).
		semiTO = maxSemiSyncTimeout
	}
	if m.SemiSync {
		sc.SemiSync = &SemiSyncConfig{Timeout: semiTO, TruncateUnacknowledged: m.TruncateUnacknowledged && flavor == MariaDB}
	}
	for _, dir := range []string{filepath.Dir(m.ConfigFile), filepath.Dir(m.Socket), tmpdir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("mysql: %w", err)
		}
		if user != "" {
			chownTo(dir, user)
		}
	}
	if err := WriteServerConfig(m.ConfigFile, sc); err != nil {
		return nil, nil, err
	}
	argv := append([]string{"--defaults-file=" + m.ConfigFile}, m.Exec[1:]...)
	proc, err := sup.Start(supervisor.Cmd{Name: "mysqld", Path: m.Exec[0], Args: argv, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		return nil, nil, fmt.Errorf("start mysqld: %w", err)
	}
	db, err := connect(ctx, flavor, m, users, !initialized, proc, log)
	if err != nil {
		proc.Stop(context.Background(), 15, m.StopTimeout)
		return nil, nil, err
	}
	if err := db.InstallWatchdog(ctx); err != nil {
		db.Close()
		proc.Stop(context.Background(), 15, m.StopTimeout)
		return nil, nil, err
	}
	return &Database{DB: db, flavor: flavor, users: users, semiSync: m.SemiSync,
		semiAuto: m.SemiSyncAuto, semiTO: semiTO, tls: m.TLS, log: log}, proc, nil
}

// connect waits for mysqld to answer (or to die) and logs in as root. A datadir initialized
// just now has a root without a password: it gets the configured one locally (not binlogged).
func connect(ctx context.Context, flavor Flavor, m StartOptions, users Users, fresh bool, proc *supervisor.Process, log *slog.Logger) (*DB, error) {
	ctx, cancel := context.WithTimeout(ctx, m.StartTimeout)
	defer cancel()
	go func() {
		select {
		case <-proc.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	open := func(pw string) (*DB, error) {
		db, err := Open(ctx, Conn{Flavor: flavor, Socket: m.Socket, User: "root", Password: pw, PasswordSource: "MYSQL_ROOT_PASSWORD", Logger: log})
		if err != nil {
			return nil, err
		}
		if err := db.WaitReady(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	password := users.RootPassword
	if fresh {
		password = ""
	}
	db, err := open(password)
	if err != nil {
		select {
		case <-proc.Done():
			return nil, fmt.Errorf("mysqld exited during start (%s): see its log above", proc.Status())
		default:
		}
		if errors.Is(err, ErrAccessDenied) {
			return nil, fmt.Errorf("%w (the datadir %s was initialized with another root password; mysqlpilot will not touch its data)", err, m.Datadir)
		}
		return nil, err
	}
	if fresh {
		if err := db.BootstrapLocal(ctx, users); err != nil {
			db.Close()
			return nil, err
		}
		db.Close()
		if db, err = open(users.RootPassword); err != nil {
			return nil, err
		}
	}
	return db, nil
}

// chownTo hands dir to the named OS user when we can (we run as root in the container).
func chownTo(dir, name string) {
	if uid, gid, err := OSUserIDs(name); err == nil {
		_ = os.Chown(dir, uid, gid)
	}
}

// serverTmpdir is the server's own tmpdir, "<datadir>.tmp" beside the datadir (in the same
// volume): never shared with another server on the host (see ServerConfig.TmpDir).
func serverTmpdir(datadir string) string {
	return strings.TrimRight(datadir, "/") + ".tmp"
}

// initDatadir initializes an empty datadir. The init tool has been seen to crash now and then
// on a loaded machine; a failed attempt's files (and only those) are removed before the next.
func initDatadir(ctx context.Context, run supervisor.Runner, flavor Flavor, datadir, tmpdir, user string, log *slog.Logger) error {
	const attempts = 3
	before := map[string]bool{}
	if ents, err := os.ReadDir(datadir); err == nil {
		for _, e := range ents {
			before[e.Name()] = true
		}
	}
	for i := 1; ; i++ {
		log.Info("empty datadir: initializing", "datadir", datadir, "attempt", i)
		err := InitDatadir(ctx, run, flavor, datadir, InitOptions{OSUser: user, TmpDir: tmpdir})
		if err == nil || i == attempts || ctx.Err() != nil {
			return err
		}
		log.Warn("datadir initialization failed; removing what it wrote and retrying", "err", err)
		ents, rerr := os.ReadDir(datadir)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		for _, e := range ents {
			if !before[e.Name()] {
				if rerr := os.RemoveAll(filepath.Join(datadir, e.Name())); rerr != nil {
					return errors.Join(err, rerr)
				}
			}
		}
	}
}

// classify1236 reads the primary's refusal (error 1236, lowercased message) of the position
// a replica asked for. errant: the replica holds transactions the primary never had
// (MariaDB: "... which is not in the master's binlog", "... the slave has diverged", and in
// strict mode "the binlog on the master is missing the GTID ...";
// MySQL: "... has more GTIDs than the source has"). purged: the primary no longer has the
// binlogs after the position ("... have been purged"): the replica is only behind. Either
// way only a re-seed from a snapshot helps; only errant makes the node ineligible.
func classify1236(errno int, msg string) (errant, purged bool) {
	if errno != 1236 {
		return false, false
	}
	switch {
	case strings.Contains(msg, "purged"):
		return false, true
	case strings.Contains(msg, "diverged"), strings.Contains(msg, "not in the master's binlog"),
		strings.Contains(msg, "is missing the gtid"),
		strings.Contains(msg, "more gtids than the source"), strings.Contains(msg, "more gtids than the master"):
		return true, false
	}
	return false, false
}
