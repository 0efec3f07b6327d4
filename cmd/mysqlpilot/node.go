package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/certs"
	"github.com/mysqlpilot/mysqlpilot/internal/cluster"
	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/consul"
	"github.com/mysqlpilot/mysqlpilot/internal/control"
	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/metrics"
	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
	"github.com/mysqlpilot/mysqlpilot/internal/web"
)

// node is one running mysqlpilot: its adapters and its loop.
type node struct {
	cfg     *config.Config
	flavor  mysql.Flavor
	log     *slog.Logger
	sup     *supervisor.Supervisor
	consul  *consul.Client
	cluster *cluster.Cluster
	db      *mysql.Database
	loop    *ha.Loop // nil until startLoop
	mysqld  *supervisor.Process
	ctx     context.Context       // the node's lifetime
	snap    *snapshot.Snapshotter // nil when snapshot.backend is "none"
	reseed  chan string           // the loop asks for a re-seed (errant transactions)

	// restoredFrom is the snapshot this datadir was restored from ("" for none): read once
	// from its restore state at start, set again when this process finishes a restore.
	restoredFrom string

	lastReseedCheck time.Time // owned by run's select loop

	// truncate: this start's crash recovery drops transactions not committed in the engine
	// (see mysql.SemiSyncConfig.TruncateUnacknowledged).
	truncate bool
	// lacksWrites: this datadir was cut by a truncating recovery or restored from a snapshot
	// since this node last recorded a sync set as primary (the marker file).
	lacksWrites bool
	// unacked is set (once) when the fence killed mysqld to drop commits that waited for an
	// acknowledgement: its exit is then a restart, not a failure.
	unacked atomic.Bool
}

// reseedRecheck is how often a quarantined node looks again for a snapshot to re-seed from.
const reseedRecheck = 10 * time.Second

// exitReseed is the exit code after a node decided to re-seed itself: the container restarts
// and the next start restores the latest snapshot (the old datadir is kept aside).
const exitReseed = 75

// exitRestart is the exit code after the fence killed mysqld because commits waited for an
// acknowledgement that did not come: the container restarts, and mysqld's crash recovery
// drops those commits (nobody acknowledged them), so the node rejoins without a re-seed.
const exitRestart = 76

// runNode is `mysqlpilot run`: it starts mysqld read-only, joins the cluster and runs the HA loop
// until a stop signal or mysqld's exit, then hands over and returns the exit code.
//
// The steps, in order (each a method below):
//  1. startJobs: extra jobs (a local Consul agent, say) start first and stop last.
//  2. waitConsul: reach Consul (retrying, with a clear log line while it is unreachable);
//     joinCluster: end the sessions this node's previous process left.
//  3. prepareDatadir: re-seed, finish an interrupted restore, or seed an empty datadir from
//     the latest snapshot; then allocate this node's server_id.
//  4. startMySQL: write the option file, initialize an empty datadir, start mysqld (always
//     read-only) under the supervisor and wait until it answers; finishRestore: set a
//     restored datadir's GTID position.
//  5. startLoop: the Consul watch, the HA loop and the backup scheduler; serve: the control
//     socket and the metrics endpoint.
//  6. wait: on SIGTERM/SIGINT stop the loop, hand over if primary, leave Consul, stop mysqld;
//     on a re-seed request the same, then exit 75; on mysqld's own exit leave Consul
//     (releasing the lock) and exit with its code.
func runNode(ctx context.Context, cfg *config.Config, log *slog.Logger, sup *supervisor.Supervisor, signals <-chan syscall.Signal) int {
	n := &node{cfg: cfg, log: log, sup: sup, reseed: make(chan string, 1)}
	code, err := n.run(ctx, signals)
	if err != nil {
		log.Error("mysqlpilot stopped", "err", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func (n *node) run(ctx context.Context, signals <-chan syscall.Signal) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.ctx = ctx
	cfg := n.cfg

	flavor, err := mysql.ParseFlavor(cfg.MySQL.Flavor)
	if err != nil {
		return 2, fmt.Errorf("config: mysql.flavor: %w", err)
	}
	n.flavor = flavor
	addr, err := consul.ResolveAddress(cfg.Service.Interfaces)
	if err != nil {
		return 2, fmt.Errorf("config: service.interfaces: %w", err)
	}

	// Extra jobs (the local Consul agent first) start first and stop last.
	stopJobs := n.startJobs(addr)
	defer stopJobs()
	c, err := newConsul(cfg, n.log)
	if err != nil {
		return 2, err
	}
	n.consul = c
	if err := n.waitConsul(ctx, signals); err != nil {
		return 1, err
	}
	n.cluster = cluster.New(n.consul, cluster.Options{
		Prefix: cfg.Consul.Prefix, Service: cfg.Service.Name, Node: cfg.Node, Address: addr,
		Port: cfg.Service.Port, Tags: cfg.Service.Tags, Timing: timing(cfg),
	}, n.log)
	if err := n.checkConsulRights(ctx); err != nil {
		return 1, err
	}
	n.joinCluster(ctx)
	boot, err := n.prepareDatadir(ctx)
	if err != nil {
		return 1, err
	}
	n.truncate = boot == nil && n.mayTruncate(ctx)
	if n.truncate || boot != nil {
		// Lasts until this node, primary again, records its own sync set (see ha.State.Truncated):
		// a later plain restart does not make this datadir whole again.
		if err := os.WriteFile(n.truncatedMarker(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			return 1, fmt.Errorf("record that this datadir may lack acknowledged writes: %w", err)
		}
	}
	n.lacksWrites = fileExists(n.truncatedMarker())
	// A restored datadir gets a new server_id (see cluster.ServerID), and so does one whose
	// crash recovery cuts transactions it wrote as primary: the new primary may hold some of
	// them (acknowledged, their engine commit not on disk here), and a server skips the
	// replicated events that carry its own server_id, so under the old one it would never get
	// them back.
	serverID, err := n.cluster.ServerID(ctx, boot != nil || n.truncate)
	if err != nil {
		return 1, fmt.Errorf("allocate server_id: %w", err)
	}
	n.log.Info("node identity", "node", cfg.Node, "address", addr, "port", cfg.Service.Port, "server_id", serverID)

	serverTLS, err := n.prepareTLS(ctx, addr)
	if err != nil {
		return 1, err
	}
	db, proc, err := n.startMySQL(ctx, addr, serverID, serverTLS)
	if err != nil {
		return 1, err
	}
	n.db, n.mysqld = db, proc
	defer db.Close()
	_ = os.Remove(n.unackedMarker()) // this start's recovery did what it asked
	_ = os.Remove(n.cleanMarker())   // from now on, only a clean stop writes it again
	if cfg.HA.SemiSync && n.flavor == mysql.MariaDB {
		db.OnUnacknowledged = n.killForUnacknowledged
	}
	if boot != nil {
		finish := func() error { return boot.Finish(ctx, db.DB, cfg.MySQL.Datadir) }
		stopMySQL := func() { proc.Stop(context.Background(), syscall.SIGTERM, cfg.MySQL.StopTimeout.D()) }
		if err := n.finishRestore(finish, stopMySQL); err != nil {
			return 1, err
		}
		n.restoredFrom = boot.Record.ID
	}

	loopDone, stopLoop := n.startLoop(ctx, addr, serverID)
	defer stopLoop()
	stopServers := n.serve()
	defer stopServers()
	return n.wait(ctx, signals, proc, loopDone, stopLoop)
}

// startMySQL starts mysqld read-only on the datadir with this node's identity.
func (n *node) startMySQL(ctx context.Context, addr string, serverID uint32, serverTLS *mysql.ServerTLS) (*mysql.Database, *supervisor.Process, error) {
	m, h := n.cfg.MySQL, n.cfg.HA
	return mysql.Start(ctx, n.sup, mysql.StartOptions{
		Flavor: n.flavor, Exec: m.Exec, OSUser: m.OSUser(), Datadir: m.Datadir, Socket: m.Socket,
		ConfigFile: m.ConfigFile, Port: n.cfg.Service.Port, ServerID: serverID, ReportHost: addr,
		Users: mysql.Users{
			RootPassword: m.RootPassword, User: m.User, Password: m.Password, Database: m.Database,
			ReplUser: m.ReplUser, ReplPassword: m.ReplPassword,
		},
		SemiSync: h.SemiSync, SemiSyncAuto: h.SemiSync && !h.SemiSyncStrict, SemiSyncTimeout: h.SemiSyncTimeout.D(),
		TruncateUnacknowledged: n.truncate, TLS: serverTLS,
		StartTimeout: m.StartTimeout.D(), StopTimeout: m.StopTimeout.D(),
	}, n.log)
}

// prepareTLS returns the server's TLS files (mysql.tls), nil when TLS is off. In auto mode it
// makes sure this node has a certificate of the cluster CA naming every address replicas may
// connect to (the node name, the hostname, and the service address the leader key carries,
// which replicas use as MASTER_HOST), creating the cluster CA in Consul when there is none.
func (n *node) prepareTLS(ctx context.Context, addr string) (*mysql.ServerTLS, error) {
	t := n.cfg.MySQL.TLS
	switch t.Mode {
	case config.TLSFiles:
		return &mysql.ServerTLS{CA: t.CA, Cert: t.Cert, Key: t.Key, RequireSecureTransport: n.cfg.MySQL.RequireSecureTransport}, nil
	case config.TLSAuto:
	default:
		return nil, nil
	}
	// A Consul blip here would otherwise restart the container (and, after a truncating
	// recovery, allocate yet another server_id): retry for a while. A wrong replication
	// password never heals by waiting.
	var f certs.Files
	var did string
	var err error
	for deadline := time.Now().Add(tlsPrepareRetry); ; {
		if f, did, err = n.installTLS(ctx, addr); err == nil || errors.Is(err, certs.ErrWrongPassword) || time.Now().After(deadline) {
			break
		}
		n.log.Warn("TLS: cannot prepare this node's certificate yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	if err != nil {
		return nil, err
	}
	n.log.Info("TLS: "+did, "dir", f.Dir)
	return &mysql.ServerTLS{CA: f.CA, Cert: f.Cert, Key: f.Key, RequireSecureTransport: n.cfg.MySQL.RequireSecureTransport}, nil
}

// installTLS makes sure this node's certificate (mysql.tls auto) is valid for its names and
// not within its renewal window, issuing a new one when it is not (certs.Install).
func (n *node) installTLS(ctx context.Context, addr string) (certs.Files, string, error) {
	hosts := []string{n.cfg.Node, addr}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	uid, gid := -1, -1
	if u := n.cfg.MySQL.OSUser(); u != "" {
		var err error
		if uid, gid, err = mysql.OSUserIDs(u); err != nil {
			return certs.Files{}, "", fmt.Errorf("mysql.tls: %w", err)
		}
	}
	f, did, err := certs.Install(ctx, n.cluster, certs.InstallOptions{
		Dir: n.cfg.MySQL.TLS.Dir, Node: n.cfg.Node, Hosts: hosts, CAName: "mysqlpilot cluster CA (" + n.cfg.Consul.Prefix + ")",
		Password: n.cfg.MySQL.ReplPassword, UID: uid, GID: gid, Now: time.Now(),
	})
	if err != nil {
		return f, "", fmt.Errorf("mysql.tls auto: %w", err)
	}
	return f, did + " (names " + strings.Join(hosts, ",") + ")", nil
}

// tlsPrepareRetry bounds how long a start retries preparing its certificate (Consul errors).
const tlsPrepareRetry = time.Minute

// tlsRenewEvery is how often a running node checks its certificate (mysql.tls auto).
const tlsRenewEvery = time.Hour

// renewTLS keeps this node's certificate valid while it runs: every tlsRenewEvery it does
// what a start does (installTLS: a new certificate once fewer than 30 days are left) and,
// when it issued one, has mysqld load it. A node that runs for a year would otherwise serve
// an expired certificate, and every replica connecting to it after a failover would be
// refused. Established replication connections keep their TLS session; new ones get the new
// certificate.
func (n *node) renewTLS(ctx context.Context, addr string) {
	t := time.NewTicker(tlsRenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, did, err := n.installTLS(ctx, addr)
		switch {
		case err != nil:
			n.log.Warn("TLS: cannot check or renew this node's certificate; tried again in an hour", "err", err)
		case strings.HasPrefix(did, "kept"):
		default:
			if _, err := n.db.SQL().ExecContext(ctx, n.flavor.ReloadTLS()); err != nil {
				n.log.Error("TLS: "+did+", but the server did not load it: restart this node", "err", err)
				continue
			}
			n.log.Info("TLS: " + did + "; the server loaded it")
		}
	}
}

// startLoop starts the HA loop, the Consul watch that wakes it and, with a snapshot backend,
// the backup scheduler. stopLoop stops the loop and the scheduler (not the watch, which serves
// the handover); loopDone closes when the loop has returned.
func (n *node) startLoop(ctx context.Context, addr string, serverID uint32) (loopDone <-chan struct{}, stopLoop context.CancelFunc) {
	cfg, db := n.cfg, n.db
	n.loop = ha.New(ha.Config{
		Node: cfg.Node, Address: addr, Port: cfg.Service.Port, ServerID: serverID,
		Timing: timing(cfg), MaxLag: cfg.MySQL.MaxLag.D(), Boot: bootID(),
		OnQuarantine: n.onQuarantine, SemiSync: cfg.HA.SemiSync, SemiSyncAuto: cfg.HA.SemiSync && !cfg.HA.SemiSyncStrict,
		Truncated: n.lacksWrites, OnOwnSyncSet: func() { _ = os.Remove(n.truncatedMarker()) },
	}, n.cluster, db, n.log, time.Now)

	loopCtx, stopLoop := context.WithCancel(ctx)
	done := make(chan struct{})
	go n.cluster.Watch(ctx) // also serves the handover after the loop stops
	wake := n.cluster.Wake()
	if !cfg.HA.Watch {
		wake = nil // poll on the interval only
	}
	go func() { defer close(done); n.loop.Run(loopCtx, wake) }()
	if cfg.MySQL.TLS.Mode == config.TLSAuto {
		go n.renewTLS(loopCtx, addr)
	}
	if n.snap != nil {
		go n.snap.NewScheduler(db.DB).Run(loopCtx, func() bool {
			st := n.loop.Status()
			return st.Role == ha.RolePrimary && st.Writable
		})
	}
	if n.snap != nil && cfg.Snapshot.Verify.Enabled {
		// Restore drills run on a healthy replica only (snapshot.verify).
		go n.snap.NewVerifier().Run(loopCtx, func() bool {
			st := n.loop.Status()
			return st.Role == ha.RoleReplica && st.Healthy
		})
	}
	return done, stopLoop
}

// wait runs until a stop signal, a re-seed or mysqld's exit, and returns the exit code.
func (n *node) wait(ctx context.Context, signals <-chan syscall.Signal, proc *supervisor.Process, loopDone <-chan struct{}, stopLoop context.CancelFunc) (int, error) {
	var exitStatus *supervisor.ExitStatus
	for exitStatus == nil {
		select {
		case sig, ok := <-signals:
			if !ok {
				signals = nil
				continue
			}
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				n.log.Info("stop requested", "signal", sig.String())
				stopLoop()
				<-loopDone
				return n.stop(proc, 128+int(sig))
			}
			n.log.Info("forwarding signal to mysqld", "signal", sig.String())
			_ = proc.Signal(sig)
		case why := <-n.reseed:
			if time.Since(n.lastReseedCheck) < reseedRecheck {
				continue
			}
			n.lastReseedCheck = time.Now()
			if !n.reseedPossible(ctx, why) {
				continue
			}
			n.log.Error("re-seeding: this node restarts and restores the latest snapshot (its datadir is kept aside)", "reason", why)
			if err := os.WriteFile(n.reseedMarker(), []byte(why+"\n"), 0o600); err != nil {
				n.log.Error("cannot record the re-seed request", "err", err)
				continue
			}
			stopLoop()
			<-loopDone
			code, err := n.stop(proc, 0)
			if err != nil || code != 0 {
				return code, err
			}
			return exitReseed, nil
		case <-proc.Done():
			st := proc.Status()
			exitStatus = &st
		}
	}
	stopLoop()
	<-loopDone
	n.leave()
	if n.unacked.Load() {
		n.log.Warn("mysqld was killed to drop commits nobody acknowledged: exiting for a restart, whose crash recovery drops them",
			"status", exitStatus.String(), "exit_code", exitRestart)
		return exitRestart, nil
	}
	n.log.Error("mysqld exited", "status", exitStatus.String())
	return exitStatus.ExitCode(), nil
}

// mayTruncate says whether this start's crash recovery may drop transactions not committed in
// the engine, the tail a primary wrote to its binlog while it waited for acknowledgements:
// only with semi-sync on MariaDB, on a node that was primary (its member key says so, or its
// fence killed mysqld for that reason: the marker file), and only when its last word in Consul
// says it did not acknowledge writes alone (then it holds the only copy of some, and MariaDB
// would also drop acknowledged ones whose engine commit had not reached the disk). A replica
// keeps everything (it originates nothing; what it received is its primary's), and so does a
// node with no member key (new, or dropped by accept-loss).
//
// And only once another node holds the lock and has recorded its own sync set (which it does
// after applying everything it received, before it opens writes): then the writes this node
// acknowledged are applied on the new primary, which was held to the sync-set rule. With nobody else primary (a whole-cluster
// restart), the members' copies of its acknowledged writes may sit only in relay logs, which
// their own restarts discard (relay_log_recovery): it keeps everything then, and a tail nobody
// acknowledged at worst costs a re-seed later. It waits for a new primary at most
// timing's FailoverWithin.
func (n *node) mayTruncate(ctx context.Context) bool {
	if !n.cfg.HA.SemiSync || n.flavor != mysql.MariaDB {
		return false
	}
	v, err := n.cluster.View(ctx)
	if err != nil {
		n.log.Warn("cannot read this node's member key: its crash recovery keeps every transaction", "err", err)
		return false
	}
	_, markErr := os.Stat(n.unackedMarker())
	if _, err := os.Stat(n.cleanMarker()); err == nil && markErr != nil {
		_ = os.Remove(n.cleanMarker())
		return false // shut down cleanly: nothing is left waiting in its binlog
	}
	was := false
	for _, m := range v.Members {
		if m.Node == n.cfg.Node {
			was = !m.Alone && (m.Role == ha.RolePrimary || markErr == nil)
		}
	}
	if !was {
		return false
	}
	// While the lock is free, wait for a failover at most FailoverWithin; once another node
	// holds it, also for its promotion (its relay log applied, which may take minutes).
	truncateWait := timing(n.cfg).FailoverWithin()
	start := time.Now()
	deadline := start.Add(truncateWait)
	for {
		if v.Leader != nil && v.Leader.Node != n.cfg.Node {
			deadline = start.Add(truncateWait + promoteWithin)
		}
		if v.Leader == nil && ha.NobodyElseMay(v, n.cfg.Node) {
			n.log.Info("this node was primary and a member of its sync set restarted since it was recorded: only this node may take over; its crash recovery keeps every transaction")
			return false
		}
		// The new primary records its sync set only once it has applied everything it
		// received (durable there): before that, what this node acknowledged may sit only in
		// relay logs.
		if v.Leader != nil && v.Leader.Node != n.cfg.Node && v.Sync != nil && v.Sync.Leader == v.Leader.Node {
			n.log.Info("this node was primary and "+v.Leader.Node+" is now: its crash recovery drops the transactions nobody acknowledged", "primary", v.Leader.Node)
			return true
		}
		if time.Now().After(deadline) {
			n.log.Warn("this node was primary and no other node took over within " + truncateWait.String() + ": its crash recovery keeps every transaction")
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(500 * time.Millisecond):
		}
		if v, err = n.cluster.View(ctx); err != nil {
			return false
		}
	}
}

// promoteWithin bounds how long a restarted old primary waits for a new primary that holds
// the lock to finish its promotion (see mayTruncate).
const promoteWithin = 5 * time.Minute

// truncatedMarker is the file that says this datadir may lack writes this node acknowledged as
// primary (ha.State.Truncated).
func (n *node) truncatedMarker() string {
	return n.besideDatadir(".truncated")
}

// unackedMarker is the file that tells the next start its mysqld was killed to drop
// unacknowledged commits.
func (n *node) unackedMarker() string {
	return n.besideDatadir(".unacknowledged")
}

// killForUnacknowledged is the fence's way out when commits wait for an acknowledgement that
// does not come: kill mysqld, so that the restart's crash recovery drops them. Not on a node
// that acknowledged writes alone (its restart keeps every transaction: killing would only
// cost the restart), nor twice.
func (n *node) killForUnacknowledged(waiting int) bool {
	if n.loop == nil || n.loop.Status().Alone || n.unacked.Swap(true) {
		return false
	}
	n.log.Error("fence: commits wait for an acknowledgement that does not come: killing mysqld so that its crash recovery drops them (they were never acknowledged)",
		"waiting", waiting)
	if err := os.WriteFile(n.unackedMarker(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		n.log.Error("cannot record why mysqld is killed: not killing it", "err", err)
		n.unacked.Store(false)
		return false
	}
	if err := n.mysqld.Signal(syscall.SIGKILL); err != nil {
		n.log.Error("could not kill mysqld", "err", err)
		return false
	}
	return true
}

// stop is the graceful stop sequence: handover (if primary), leave Consul, stop mysqld.
func (n *node) stop(proc *supervisor.Process, sigCode int) (int, error) {
	n.leave()
	st := proc.Stop(context.Background(), syscall.SIGTERM, n.cfg.MySQL.StopTimeout.D())
	n.log.Info("mysqld stopped", "status", st.String())
	if st.Signal == syscall.SIGKILL {
		return 137, nil
	}
	if st.Success() {
		// A clean shutdown leaves no transaction waiting in the binlog: the next start
		// needs no truncating recovery (see mayTruncate).
		if err := os.WriteFile(n.cleanMarker(), nil, 0o600); err != nil {
			n.log.Warn("cannot record the clean shutdown", "err", err)
		}
		return 0, nil
	}
	return st.ExitCode(), nil
}

// cleanMarker is the file that tells the next start mysqld was shut down cleanly.
func (n *node) cleanMarker() string {
	return n.besideDatadir(".clean")
}

// finishRestore sets a restored datadir's GTID position (finish: Bootstrap.Finish) once mysqld
// answers, before the HA loop exists. On failure the node leaves Consul (with no loop, there
// is nothing to hand over) and stops mysqld (stopMySQL), and the error is the exit's reason.
func (n *node) finishRestore(finish func() error, stopMySQL func()) error {
	if err := finish(); err != nil {
		n.leave()
		stopMySQL()
		return err
	}
	_ = os.Remove(n.reseedMarker())
	return nil
}

// leave hands over (when primary: only a running loop can be), destroys the session and
// deregisters, bounded in time.
func (n *node) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HA.HandoverTimeout.D()+5*time.Second)
	defer cancel()
	if n.loop != nil {
		if err := n.loop.Stop(ctx); err != nil {
			n.log.Warn("handover incomplete", "err", err)
		}
	}
	if err := n.cluster.Deregister(ctx); err != nil {
		n.log.Warn("deregister", "err", err)
	}
}

// newConsul is the Consul client of the consul section.
func newConsul(cfg *config.Config, log *slog.Logger) (*consul.Client, error) {
	fallback, err := cfg.Consul.FallbackAddresses() // validated
	if err != nil {
		return nil, err
	}
	return consul.New(consul.Options{
		Address: cfg.Consul.Address, Token: cfg.Consul.Token, Scheme: cfg.Consul.Scheme,
		CAFile: cfg.Consul.CAFile, CertFile: cfg.Consul.CertFile, KeyFile: cfg.Consul.KeyFile,
		InsecureSkipVerify: cfg.Consul.InsecureSkipVerify, Datacenter: cfg.Consul.Datacenter,
		Fallback: fallback,
	}, log)
}

// bootID is new for each process, which starts mysqld once: it tells the sync set when a
// member's server restarted (ha.SyncSet.Boots).
func bootID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// timing is the one value every interval of the HA loop and its Consul records comes from.
func timing(cfg *config.Config) ha.Timing {
	h := cfg.HA
	return ha.Timing{
		SessionTTL: h.SessionTTL.D(), CheckTTL: h.CheckTTL.D(), LockDelay: h.LockDelay.D(), Interval: h.HealthInterval.D(),
		FenceMargin: h.FenceMargin.D(), CandidateWindow: h.CandidateWindow.D(), FailoverBlock: h.FailoverBlock.D(),
		HandoverTimeout: h.HandoverTimeout.D(),
	}
}

// checkConsulRights tests, once, every Consul right this node will use
// (consul.CheckPermissions): a token that lacks some stops the start, each missing right logged
// with the policy rule that grants it, instead of a promotion failing later. A check that
// cannot run (Consul gone again) does not stop the start.
func (n *node) checkConsulRights(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := n.consul.CheckPermissions(ctx, n.cluster.Needs())
	if err == nil {
		return nil
	}
	missing := consul.PermissionErrors(err)
	if len(missing) == 0 {
		n.log.Warn("could not check the Consul token's rights at start", "err", err)
		return nil
	}
	for _, e := range missing {
		n.log.Error(e.Error())
	}
	if len(missing) == 1 {
		return missing[0]
	}
	return fmt.Errorf("consul: the token lacks %d rights mysqlpilot needs (each logged above; the whole policy is %s): %w",
		len(missing), consul.PolicyFile, consul.ErrPermissionDenied)
}

// joinCluster ends the sessions this node's previous process left behind.
func (n *node) joinCluster(ctx context.Context) {
	if err := n.cluster.DestroyStaleSessions(ctx); err != nil {
		n.log.Warn("could not clean up sessions of a previous run", "err", err)
	}
}

// serve starts the control socket and the metrics endpoint; the returned func stops both.
func (n *node) serve() func() {
	var stops []func()
	if p := n.cfg.Control.Socket; p != "" {
		cn := control.Node{Loop: n.loop, Cluster: n.cluster, Log: n.log}
		if n.snap != nil {
			cn.Backup = func(id string) (snapshot.Record, error) { return n.snap.BackupNow(n.ctx, n.db.DB, id) }
		}
		if stop, err := control.Serve(p, cn); err != nil {
			n.log.Warn("control socket disabled", "path", p, "err", err)
		} else {
			stops = append(stops, stop)
		}
	}
	if l := n.cfg.Metrics.Listen; l != "" {
		h := web.Handler(web.Options{
			Status: n.loop.Status, Metrics: metrics.Handler(n.loop.Status, n.sup.Stats, n.drillStats()),
			MaxLag: n.cfg.MySQL.MaxLag.D(), Stale: 2 * n.cfg.HA.CheckTTL.D(),
		})
		srv := &http.Server{Addr: l, Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		ln, err := net.Listen("tcp", l)
		if err != nil {
			n.log.Warn("metrics endpoint disabled", "listen", l, "err", err)
		} else {
			go func() { _ = srv.Serve(ln) }()
			stops = append(stops, func() { _ = srv.Close() })
		}
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// waitConsul blocks until Consul answers, logging plainly while it does not; a stop signal
// while waiting ends the wait.
func (n *node) waitConsul(ctx context.Context, signals <-chan syscall.Signal) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- n.consul.WaitReady(ctx) }()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			n.log.Warn("waiting for Consul", "address", n.cfg.Consul.Address, "hint", "check consul.address / CONSUL")
		case sig := <-signals:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				return errors.New("stopped while waiting for Consul")
			}
		}
	}
}

// besideDatadir is a marker file's path: the datadir's path plus suffix, in the same volume
// (next to it, so a restore that swaps the datadir keeps it).
func (n *node) besideDatadir(suffix string) string {
	return strings.TrimRight(n.cfg.MySQL.Datadir, "/") + suffix
}

// reseedMarker is the file that asks the next start to re-seed from a snapshot.
func (n *node) reseedMarker() string {
	return n.besideDatadir(".reseed")
}

// reseedPossible applies the re-seed policy (ha.DecideReseed) to the catalog: it says whether
// to re-seed now, and otherwise asks the primary for a fresh snapshot (once) while the node
// stays quarantined (read-only, out of service) until one is published.
func (n *node) reseedPossible(ctx context.Context, why string) bool {
	cat := n.snap.Catalog()
	// The snapshot a re-seed would restore: the newest that did not fail a restore drill.
	rec, err := n.snap.RestoreCandidate(ctx)
	var latest *snapshot.Record
	if errors.Is(err, snapshot.ErrNoSnapshot) {
		latest, err = cat.Latest(ctx)
	}
	if err != nil {
		n.log.Error("quarantined, and the snapshot catalog cannot be read: staying read-only and out of service", "reason", why, "err", err)
		return false
	}
	r := ha.ReseedState{RestoredFrom: n.restoredFrom}
	switch {
	case rec != nil:
		r.Latest = rec.ID
	case latest != nil && latest.FailedDrill():
		r.AllFailed = latest.ID
	}
	if pending, err := cat.SnapshotRequested(ctx); err == nil && pending != nil {
		r.Requested, r.RequestedAfter = true, pending.After
	}
	d := ha.DecideReseed(r)
	switch d.Do {
	case ha.ReseedNow:
		return true
	case ha.WaitForSnapshot:
		return false // asked already (by this node or another); said so then
	}
	wait := d.Why
	req := snapshot.SnapshotRequest{Node: n.cfg.Node, Reason: why, After: d.After, Requested: time.Now().UTC()}
	if err := cat.RequestSnapshot(ctx, req); err != nil {
		n.log.Error("quarantined: "+wait+", and the request for a fresh one failed: staying read-only and out of service", "reason", why, "err", err)
		return false
	}
	n.log.Error("quarantined: "+wait+"; asked the primary for a fresh snapshot, staying read-only and out of service until it is published", "reason", why)
	return false
}

// onQuarantine is the loop's hook: with a snapshot backend, a node with errant transactions
// re-seeds itself instead of staying out of service.
func (n *node) onQuarantine(why string) {
	if n.snap == nil {
		return
	}
	select {
	case n.reseed <- why:
	default:
	}
}

// prepareDatadir restores a snapshot into the datadir before mysqld starts: for a node asked
// to re-seed (the old datadir is moved aside), or an empty datadir when the cluster has a
// snapshot (scale-out). It returns nil when mysqld should start on the datadir as it is.
func (n *node) prepareDatadir(ctx context.Context) (*snapshot.Bootstrap, error) {
	log := n.log.With("component", "snapshot")
	cat := cluster.NewCatalog(n.consul, n.cfg.Consul.Prefix, n.cfg.Node, log)
	snap, err := snapshot.NewSnapshotter(n.cfg, n.flavor, cat, n.sup, n.log)
	if err != nil {
		return nil, err
	}
	n.snap = snap
	// The datadir's restore state, read once: what to finish, and which snapshot it came from.
	st, stErr := snapshot.ReadRestoreState(n.cfg.MySQL.Datadir)
	if stErr == nil && st != nil {
		n.restoredFrom = st.Snapshot
	}
	if snap != nil && fileExists(n.reseedMarker()) {
		boot, err := snap.Reseed(ctx)
		if errors.Is(err, snapshot.ErrNoSnapshot) {
			// Never a crash loop: start on the datadir as it is; the node stays quarantined
			// (read-only, out of service) until a snapshot exists.
			n.log.Error("asked to re-seed but the cluster has no snapshot: starting on the old datadir, read-only", "err", err)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		// The datadir's restore state now says what is left to do (Finish), should this
		// node stop before it does: no second restore.
		_ = os.Remove(n.reseedMarker())
		return boot, nil
	}
	if stErr != nil {
		return nil, stErr
	}
	if boot := snapshot.PendingBootstrap(st); boot != nil {
		n.log.Warn("the datadir was restored but its GTID position never set: setting it now", "snapshot", boot.Record.ID, "gtid", boot.Result.GTID)
		return boot, nil
	}
	if snap == nil {
		return nil, nil
	}
	return snap.BootstrapReplica(ctx)
}

// startJobs runs the config's jobs under the supervisor; the returned func stops them and
// waits until they are gone.
func (n *node) startJobs(addr string) func() {
	var jobs []supervisor.Job
	if a := n.cfg.Consul.Agent; a.Join != "" {
		jobs = append(jobs, consulAgentJob(a, n.cfg.Node, addr))
	}
	for _, j := range n.cfg.Jobs {
		var env []string // nil: the supervisor's scrubbed environment
		if len(j.Env) > 0 {
			env = append(supervisor.ScrubEnv(os.Environ(), n.cfg.Secrets()), supervisor.Pass(os.Environ(), j.Env)...)
		}
		jobs = append(jobs, supervisor.Job{
			Name: j.Name, Cmd: supervisor.Cmd{Name: j.Name, Path: j.Exec[0], Args: j.Exec[1:], Stdout: os.Stdout, Stderr: os.Stderr, Env: env},
			Restart: supervisor.RestartPolicy(j.Restart), RestartDelay: j.RestartDelay.D(), StopTimeout: j.StopTimeout.D(),
		})
	}
	if len(jobs) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.sup.RunJobs(ctx, jobs...); err != nil && ctx.Err() == nil {
			n.log.Warn("jobs ended", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// consulAgentJob is the local Consul agent (config consul.agent): client mode, named after
// this node, gossiping on its service address, its HTTP API on loopback only, joining the
// servers (retrying until it does). It leaves the cluster when stopped (a client's default),
// after mysqlpilot has handed over and destroyed its session.
func consulAgentJob(a config.ConsulAgentConfig, node, addr string) supervisor.Job {
	args := []string{"agent", "-node=" + node, "-data-dir=" + a.DataDir, "-bind=" + addr, "-client=127.0.0.1",
		"-hcl=disable_update_check = true", "-log-level=warn"}
	for _, srv := range strings.Split(a.Join, ",") {
		args = append(args, "-retry-join="+strings.TrimSpace(srv))
	}
	return supervisor.Job{
		Name: "consul-agent", Cmd: supervisor.Cmd{Name: "consul-agent", Path: a.Exec, Args: args, Stdout: os.Stdout, Stderr: os.Stderr,
			// Its own environment: none of the passwords in ours.
			Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + a.DataDir}},
		Restart: supervisor.RestartAlways, RestartDelay: time.Second, StopTimeout: 10 * time.Second,
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// drillStats reads this node's restore drill counters for /metrics; nil when it runs none.
func (n *node) drillStats() func() metrics.Drills {
	if n.snap == nil || !n.cfg.Snapshot.Verify.Enabled {
		return nil
	}
	return func() metrics.Drills {
		v := n.snap.VerifyStats()
		return metrics.Drills{Runs: v.Runs, Failures: v.Failures, LocalErrors: v.LocalErrors,
			LastSuccess: v.LastSuccess, LastRun: v.LastRun, LastTook: v.LastTook}
	}
}
