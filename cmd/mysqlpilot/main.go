// Command mysqlpilot is PID 1 of a MySQL/MariaDB container: it supervises mysqld and makes a
// group of identical containers elect a primary, replicate, back up and heal themselves
// through Consul. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/control"
	"github.com/mysqlpilot/mysqlpilot/internal/ha"
	"github.com/mysqlpilot/mysqlpilot/internal/seal"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `mysqlpilot: a self-operating MySQL/MariaDB container (PID 1).

Usage:
  mysqlpilot run [--config FILE]            supervise mysqld and run the HA loop
  mysqlpilot status [--cluster] [--json]    this node's state (exit 0 when healthy)
  mysqlpilot switchover [--to NODE]         hand the primary role over without stopping
  mysqlpilot maintenance on|off             pause or resume automatic failover
  mysqlpilot accept-loss --yes              fail over without a lost primary or sync-set member,
                                            losing the writes only it may hold
  mysqlpilot backup [--no-wait] [--json]    take a snapshot now (on the primary)
  mysqlpilot restore --to-time T|--to-gtid G --datadir D
                                            point-in-time restore from snapshots + archived binlogs
  mysqlpilot config [--config FILE]         print the effective config, secrets redacted
  mysqlpilot keygen                         print a new random snapshot key (snapshot.encrypt)
  mysqlpilot supervise [flags] -- CMD ARGS  run any command as PID 1 (reap, forward signals)
  mysqlpilot version

Run 'mysqlpilot COMMAND --help' for a command's flags.
`

// run parses the command line and dispatches; it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "status":
		return cmdStatus(ctx, rest, stdout, stderr)
	case "switchover":
		return cmdSwitchover(ctx, rest, stdout, stderr)
	case "maintenance":
		return cmdMaintenance(ctx, rest, stdout, stderr)
	case "accept-loss":
		return cmdAcceptLoss(ctx, rest, stdout, stderr)
	case "config":
		return cmdConfig(rest, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, rest, stdout, stderr)
	case "restore":
		return cmdRestore(ctx, rest, stdout, stderr)
	case "supervise":
		return cmdSupervise(ctx, rest, stderr)
	case "keygen":
		if len(rest) != 0 {
			fmt.Fprintln(stderr, "Usage: mysqlpilot keygen > snapshot.key  (32 random bytes, base64; give the file as snapshot.encrypt.keyFile)")
			return 2
		}
		fmt.Fprintln(stdout, seal.NewKeyText())
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "mysqlpilot", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "mysqlpilot: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// flags makes a FlagSet whose errors and --help print to stderr and return a code.
func flags(name, synopsis string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mysqlpilot %s\n\nFlags:\n%s", synopsis, fs.FlagUsages())
	}
	return fs
}

func parse(fs *pflag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// loadConfig loads --config, or the default path, or the embedded default when neither exists.
func loadConfig(path string, explicit bool) (*config.Config, error) {
	if !explicit {
		if _, err := os.Stat(path); err != nil {
			path = ""
		}
	}
	return config.Load(path, os.LookupEnv)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(config.Redact(h, cfg.Secrets()))
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flags("run", "run [--config FILE]", stderr)
	path := fs.String("config", config.DefaultPath, "config file (JSON); the embedded default is used when the default path does not exist")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*path, fs.Changed("config"))
	if err != nil {
		fmt.Fprintln(stderr, "mysqlpilot:", strings.ReplaceAll(err.Error(), "\n", "\nmysqlpilot: "))
		return 2
	}
	log := newLogger(cfg, stderr)
	log.Info("mysqlpilot starting", "version", version, "node", cfg.Node, "flavor", cfg.MySQL.Flavor, "pid", os.Getpid())
	sigCtx, stopSignals := context.WithCancel(ctx)
	defer stopSignals()
	signals := supervisor.Signals(sigCtx) // before any child starts
	sup := supervisor.New(log)
	defer sup.Close()
	// No child inherits a password, key or token (mysqld, tools and jobs get their secrets in
	// 0600 option files or not at all; a job gets what its config names in jobs[].env).
	sup.SetEnviron(supervisor.ScrubEnv(os.Environ(), cfg.Secrets()))
	return runNode(ctx, cfg, log, sup, signals)
}

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	fs := flags("config", "config [--config FILE]", stderr)
	path := fs.String("config", config.DefaultPath, "config file")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*path, fs.Changed("config"))
	if err != nil {
		fmt.Fprintln(stderr, "mysqlpilot:", strings.ReplaceAll(err.Error(), "\n", "\nmysqlpilot: "))
		return 2
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(cfg.Redacted())
	return 0
}

func controlFlags(name, synopsis string, stderr io.Writer) (*pflag.FlagSet, *string) {
	fs := flags(name, synopsis, stderr)
	sock := fs.String("socket", "/var/run/mysqlpilot.sock", "control socket of the running mysqlpilot")
	return fs, sock
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, sock := controlFlags("status", "status [--cluster] [--json] [--quiet]", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	cluster := fs.Bool("cluster", false, "print every member of the cluster")
	quiet := fs.BoolP("quiet", "q", false, "print nothing; exit 0 when healthy, 1 otherwise (for HEALTHCHECK)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var st ha.Status
	if err := control.NewClient(*sock, control.DefaultTimeout).Do(ctx, "GET", "/status", &st); err != nil {
		if !*quiet {
			fmt.Fprintln(stderr, "mysqlpilot status:", err)
		}
		return 1
	}
	switch {
	case *quiet:
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	default:
		printStatus(stdout, st, *cluster)
	}
	if st.Healthy {
		return 0
	}
	return 1
}

func printStatus(w io.Writer, st ha.Status, cluster bool) {
	role := string(st.Role)
	if role == "" {
		role = "none"
	}
	fmt.Fprintf(w, "node:     %s\nrole:     %s\nhealthy:  %v\nwritable: %v\nprimary:  %s\ngtid:     %s\ndecision: %s\n",
		st.Node, role, st.Healthy, st.Writable, st.Holder, st.Executed, st.Action)
	if st.Alone {
		fmt.Fprintln(w, "alone:    yes: no replica has everything this node acknowledged; should it fail, nobody takes over automatically")
	}
	if r := st.Replica; r != nil {
		fmt.Fprintf(w, "replication: io=%v sql=%v lag=%s from %s:%d", r.IORunning, r.SQLRunning, r.Lag, r.Host, r.Port)
		if r.Error != "" {
			fmt.Fprintf(w, " error=%q", r.Error)
		}
		fmt.Fprintln(w)
	}
	if st.Error != "" {
		fmt.Fprintf(w, "error:    %s\n", st.Error)
	}
	if !cluster {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tROLE\tLIVE\tHEALTHY\tLAG\tGTID\tDECISION")
	for _, m := range st.Members {
		why := m.Why
		if m.Alone {
			why = "[committed alone] " + why
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%.0fs\t%s\t%s\n", m.Node, m.Role, m.Live, m.Healthy, m.Lag, m.Executed, why)
	}
	tw.Flush()
	if s := st.Snapshot; s != nil {
		fmt.Fprintf(w, "\nsnapshot: %s, completed %s, %.1f MiB\ndrill:    %s\n", s.ID, s.Completed.UTC().Format(time.RFC3339),
			float64(s.Size)/(1<<20), drillLine(*s))
	}
}

// drillLine says what the latest snapshot's restore drill found.
func drillLine(s ha.SnapshotInfo) string {
	at := s.VerifiedAt.UTC().Format(time.RFC3339)
	switch s.DrillState() {
	case "verified":
		return "verified at " + at + " (restored, prepared, CHECK TABLE passed)"
	case "failed":
		return "FAILED at " + at + ": " + s.VerifyError + " (not used for bootstraps or re-seeds while another snapshot is usable; a fresh one is asked for)"
	}
	return "not drilled yet (snapshot.verify: a healthy replica drills it within snapshot.verify.interval)"
}

func cmdSwitchover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, sock := controlFlags("switchover", "switchover [--to NODE]", stderr)
	to := fs.String("to", "", "target node (default: the most advanced replica)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var sw ha.Switchover
	q := ""
	if *to != "" {
		q = "?to=" + *to
	}
	if err := control.NewClient(*sock, control.DefaultTimeout).Do(ctx, "POST", "/switchover"+q, &sw); err != nil {
		fmt.Fprintln(stderr, "mysqlpilot switchover:", err)
		return 1
	}
	target := sw.To
	if target == "" {
		target = "the most advanced replica"
	}
	fmt.Fprintf(stdout, "switchover requested: %s -> %s\n", sw.From, target)
	return 0
}

func cmdMaintenance(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, sock := controlFlags("maintenance", "maintenance on|off", stderr)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "on" && fs.Arg(0) != "off") {
		fs.Usage()
		return 2
	}
	if err := control.NewClient(*sock, control.DefaultTimeout).Do(ctx, "POST", "/maintenance?on="+fmt.Sprint(fs.Arg(0) == "on"), nil); err != nil {
		fmt.Fprintln(stderr, "mysqlpilot maintenance:", err)
		return 1
	}
	fmt.Fprintf(stdout, "maintenance %s: automatic failover is %s\n", fs.Arg(0), map[bool]string{true: "paused", false: "active"}[fs.Arg(0) == "on"])
	return 0
}

// cmdAcceptLoss is the operator's way out when the cluster waits for a node that will not come
// back: a last primary that acknowledged writes alone, or a member of its sync set. It drops
// the sync-set record and that primary's member key, and the live members hold a normal
// election: writes that only the lost node held are gone.
func cmdAcceptLoss(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, sock := controlFlags("accept-loss", "accept-loss --yes", stderr)
	yes := fs.Bool("yes", false, "confirm: writes only the lost node holds are given up")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if !*yes || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "mysqlpilot accept-loss: the cluster fails over without the node it waits for (see `mysqlpilot status`), "+
			"and the writes only that node may hold are lost; run it again with --yes to do so")
		return 2
	}
	var res struct {
		Dropped []string `json:"dropped"`
	}
	if err := control.NewClient(*sock, control.DefaultTimeout).Do(ctx, "POST", "/accept-loss", &res); err != nil {
		fmt.Fprintln(stderr, "mysqlpilot accept-loss:", err)
		return 1
	}
	if len(res.Dropped) == 0 {
		fmt.Fprintln(stdout, "nothing to drop: the cluster waits for no lost node")
		return 0
	}
	for _, d := range res.Dropped {
		fmt.Fprintln(stdout, "dropped", d)
	}
	fmt.Fprintln(stdout, "the live members now elect the most advanced of them")
	return 0
}

func cmdSupervise(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flags("supervise", "supervise [--stop-timeout D] -- CMD [ARGS...]", stderr)
	stopTimeout := fs.Duration("stop-timeout", 10*time.Second, "time between the stop signal and SIGKILL")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return supervisor.Supervise(ctx, log, supervisor.Cmd{
		Path: fs.Arg(0), Args: fs.Args()[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}, supervisor.SuperviseOptions{StopSignal: syscall.SIGTERM, StopTimeout: *stopTimeout})
}
