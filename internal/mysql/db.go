package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
)

// Conn says how to reach a server.
type Conn struct {
	Flavor Flavor
	// Socket is the unix socket path; used when set. Otherwise Addr ("host:port") over TCP.
	Socket string
	Addr   string
	// User defaults to root.
	User     string
	Password string
	// PasswordSource names where the password came from (say "MYSQL_ROOT_PASSWORD"); an
	// access-denied error points there.
	PasswordSource string
	// Timeout bounds connecting (default 5s); IOTimeout each network read or write of a
	// statement (default 30s). Contexts bound whole operations.
	Timeout   time.Duration
	IOTimeout time.Duration
	// MaxOpen caps the pool (default 6: health checks, a fence that must kill while another
	// statement waits, and the watchdog heartbeat run at once).
	MaxOpen int
	// Logger receives the driver's and this package's messages; nil discards them.
	Logger *slog.Logger
}

// Defaults for Conn.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultIOTimeout      = 30 * time.Second
	DefaultMaxOpen        = 6
)

// ErrAccessDenied is wrapped by errors of a login the server refused (wrong user or password).
var ErrAccessDenied = errors.New("access denied")

// DB is a small pool of connections to one server, owned by mysqlpilot. The pool records the
// connection id of each of its connections, so KillClientConnections spares them.
type DB struct {
	flavor   Flavor
	pool     *sql.DB
	own      *connIDs
	log      *slog.Logger
	endpoint string // "unix:/path" or "tcp:host:port", for messages
	user     string
	source   string
	password string // only to redact it from errors
}

// Open builds the pool and waits, until ctx ends, for the server to accept a login
// (WaitReady). Bound ctx: a server that does not come up makes Open fail when ctx does.
func Open(ctx context.Context, c Conn) (*DB, error) {
	db, err := newDB(c)
	if err != nil {
		return nil, err
	}
	if err := db.WaitReady(ctx); err != nil {
		_ = db.pool.Close()
		return nil, err
	}
	return db, nil
}

func newDB(c Conn) (*DB, error) {
	if err := c.Flavor.Validate(); err != nil {
		return nil, fmt.Errorf("mysql: open: %w", err)
	}
	if c.User == "" {
		c.User = "root"
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultConnectTimeout
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.MaxOpen <= 0 {
		c.MaxOpen = DefaultMaxOpen
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := mysqldrv.NewConfig()
	cfg.User, cfg.Passwd = c.User, c.Password
	var endpoint string
	switch {
	case c.Socket != "":
		cfg.Net, cfg.Addr, endpoint = "unix", c.Socket, "unix:"+c.Socket
	case c.Addr != "":
		cfg.Net, cfg.Addr, endpoint = "tcp", c.Addr, "tcp:"+c.Addr
	default:
		return nil, errors.New("mysql: open: neither socket nor address given")
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = c.Timeout, c.IOTimeout, c.IOTimeout
	cfg.InterpolateParams = false
	cfg.MultiStatements = false
	cfg.ConnectionAttributes = "program_name:mysqlpilot"
	cfg.Logger = driverLogger{c.Logger}
	base, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: open %s: %w", endpoint, redactError(err, c.Password))
	}
	own := &connIDs{ids: map[uint64]int{}}
	pool := sql.OpenDB(&trackingConnector{base: base, own: own})
	pool.SetMaxOpenConns(c.MaxOpen)
	pool.SetMaxIdleConns(min(2, c.MaxOpen))
	pool.SetConnMaxLifetime(10 * time.Minute)
	pool.SetConnMaxIdleTime(time.Minute)
	return &DB{flavor: c.Flavor, pool: pool, own: own, log: c.Logger, endpoint: endpoint,
		user: c.User, source: c.PasswordSource, password: c.Password}, nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.pool.Close() }

// Flavor is the server family this DB was opened for.
func (db *DB) Flavor() Flavor { return db.flavor }

// SQL returns the underlying pool for queries this package does not cover. Its connections
// count as mysqlpilot's own (KillClientConnections spares them); do not change session
// variables on them without restoring them.
func (db *DB) SQL() *sql.DB { return db.pool }

// WaitReady pings until the server accepts a login or ctx ends. Errors that waiting cannot
// cure (wrong password, unknown database) return at once.
func (db *DB) WaitReady(ctx context.Context) error {
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
		err := db.pool.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if !transient(err) {
			return db.connectError(err)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("mysql: wait for %s to accept logins: %w (last error: %w)", db.endpoint, ctx.Err(), db.connectError(last))
		case <-t.C:
		}
	}
}

// connectError explains a failed login without the password.
func (db *DB) connectError(err error) error {
	err = redactError(err, db.password)
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698) {
		hint := "check the configured password"
		if db.source != "" {
			hint = "check " + db.source
		}
		who := db.user
		if i := strings.Index(me.Message, "'"+db.user+"'@"); i >= 0 {
			// "Access denied for user 'root'@'localhost' (using password: YES)"
			rest := me.Message[i:]
			if j := strings.Index(rest, " "); j > 0 {
				who = strings.ReplaceAll(rest[:j], "'", "")
			}
		}
		return fmt.Errorf("mysql: connect to %s: wrong password for user %s (%s): %w: %w", db.endpoint, who, hint, ErrAccessDenied, err)
	}
	return fmt.Errorf("mysql: connect to %s as %s: %w", db.endpoint, db.user, err)
}

// transient reports errors that go away by waiting: the server is starting, restarting or
// briefly out of connections.
func transient(err error) bool {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1129, // host blocked (flush hosts)
			1927, // connection killed
			2002, 2003, 2006, 2013:
			return true
		}
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysqldrv.ErrInvalidConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// ---------------------------------------------------------------------------------------------
// Own connections

// connIDs is the set of server connection ids our pool holds right now.
type connIDs struct {
	mu  sync.Mutex
	ids map[uint64]int
}

func (s *connIDs) add(id uint64) {
	s.mu.Lock()
	s.ids[id]++
	s.mu.Unlock()
}

func (s *connIDs) remove(id uint64) {
	s.mu.Lock()
	if s.ids[id]--; s.ids[id] <= 0 {
		delete(s.ids, id)
	}
	s.mu.Unlock()
}

func (s *connIDs) has(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}

// trackingConnector asks every new connection for its CONNECTION_ID() and records it until the
// connection closes. Ids are removed on close, so after a server restart (ids start over) a
// stale id cannot shield a client's connection.
type trackingConnector struct {
	base driver.Connector
	own  *connIDs
}

func (t *trackingConnector) Driver() driver.Driver { return t.base.Driver() }

func (t *trackingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := t.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	tc, err := newTrackedConn(ctx, c, t.own)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return tc, nil
}

// trackedConn forwards everything to the driver's connection (which implements all the
// optional interfaces below) and forgets its id on Close.
type trackedConn struct {
	driver.Conn
	id   uint64
	own  *connIDs
	once sync.Once

	beginTx  driver.ConnBeginTx
	prepare  driver.ConnPrepareContext
	execer   driver.ExecerContext
	queryer  driver.QueryerContext
	pinger   driver.Pinger
	resetter driver.SessionResetter
	validtr  driver.Validator
	checker  driver.NamedValueChecker
}

func newTrackedConn(ctx context.Context, c driver.Conn, own *connIDs) (*trackedConn, error) {
	tc := &trackedConn{Conn: c, own: own}
	var ok [8]bool
	tc.beginTx, ok[0] = c.(driver.ConnBeginTx)
	tc.prepare, ok[1] = c.(driver.ConnPrepareContext)
	tc.execer, ok[2] = c.(driver.ExecerContext)
	tc.queryer, ok[3] = c.(driver.QueryerContext)
	tc.pinger, ok[4] = c.(driver.Pinger)
	tc.resetter, ok[5] = c.(driver.SessionResetter)
	tc.validtr, ok[6] = c.(driver.Validator)
	tc.checker, ok[7] = c.(driver.NamedValueChecker)
	for _, b := range ok {
		if !b {
			return nil, fmt.Errorf("mysql: driver connection %T lacks an interface mysqlpilot needs", c)
		}
	}
	rows, err := tc.queryer.QueryContext(ctx, "SELECT CONNECTION_ID()", nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		return nil, fmt.Errorf("mysql: read CONNECTION_ID(): %w", err)
	}
	switch x := v[0].(type) {
	case int64:
		tc.id = uint64(x)
	case uint64:
		tc.id = x
	case []byte:
		if _, err := fmt.Sscan(string(x), &tc.id); err != nil {
			return nil, fmt.Errorf("mysql: read CONNECTION_ID(): %w", err)
		}
	default:
		return nil, fmt.Errorf("mysql: read CONNECTION_ID(): unexpected %T", x)
	}
	own.add(tc.id)
	return tc, nil
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.own.remove(c.id) })
	return c.Conn.Close()
}

func (c *trackedConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return c.beginTx.BeginTx(ctx, o)
}

func (c *trackedConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.prepare.PrepareContext(ctx, q)
}

func (c *trackedConn) ExecContext(ctx context.Context, q string, a []driver.NamedValue) (driver.Result, error) {
	return c.execer.ExecContext(ctx, q, a)
}

func (c *trackedConn) QueryContext(ctx context.Context, q string, a []driver.NamedValue) (driver.Rows, error) {
	return c.queryer.QueryContext(ctx, q, a)
}

func (c *trackedConn) Ping(ctx context.Context) error         { return c.pinger.Ping(ctx) }
func (c *trackedConn) ResetSession(ctx context.Context) error { return c.resetter.ResetSession(ctx) }
func (c *trackedConn) IsValid() bool                          { return c.validtr.IsValid() }
func (c *trackedConn) CheckNamedValue(v *driver.NamedValue) error {
	return c.checker.CheckNamedValue(v)
}

// driverLogger sends the driver's messages ("closing bad idle connection") to slog.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) {
	d.l.Debug(strings.TrimSpace(fmt.Sprint(v...)), "component", "mysql-driver")
}

// ---------------------------------------------------------------------------------------------
// Statement helpers

// exec runs statements in order on any pooled connection.
func (db *DB) exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if _, err := db.pool.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// queryString reads one string column of one row ("" for NULL).
func queryString(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string, args ...any) (string, error) {
	var v sql.NullString
	if err := q.QueryRowContext(ctx, query, args...).Scan(&v); err != nil {
		return "", err
	}
	return v.String, nil
}

// adminOpts say how withConn prepares its connection.
type adminOpts struct {
	// noBinlog sets sql_log_bin=0 for fn: the writes stay on this server.
	noBinlog bool
	// superWritable lifts MySQL's super_read_only for fn if it is on (read_only stays on, so
	// applications remain blocked) and restores it after. No effect on MariaDB, whose root
	// writes through read_only.
	superWritable bool
}

// withConn runs fn on one dedicated pooled connection prepared per o, restoring the session
// (and super_read_only) afterwards. A connection whose session cannot be restored is
// discarded rather than returned to the pool with sql_log_bin=0.
func (db *DB) withConn(ctx context.Context, o adminOpts, fn func(c *sql.Conn, noBackslash bool) error) (err error) {
	c, err := db.pool.Conn(ctx)
	if err != nil {
		return err
	}
	discard := false
	defer func() {
		if discard {
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = c.Close()
	}()
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	}
	mode, err := queryString(ctx, c, "SELECT @@SESSION.sql_mode")
	if err != nil {
		return err
	}
	noBackslash := strings.Contains(strings.ToUpper(mode), "NO_BACKSLASH_ESCAPES")
	if o.noBinlog {
		if _, err := c.ExecContext(ctx, "SET SESSION sql_log_bin = 0"); err != nil {
			discard = true
			return fmt.Errorf("SET SESSION sql_log_bin = 0: %w", err)
		}
		defer func() {
			cctx, cancel := cleanup()
			defer cancel()
			if _, rerr := c.ExecContext(cctx, "SET SESSION sql_log_bin = 1"); rerr != nil {
				discard = true
			}
		}()
	}
	if o.superWritable && db.flavor.superReadOnlyQuery() != "" {
		v, err := queryString(ctx, c, db.flavor.superReadOnlyQuery())
		if err != nil {
			return err
		}
		if v == "1" {
			if _, err := c.ExecContext(ctx, superReadOnlyOffSQL); err != nil {
				return fmt.Errorf("%s: %w", superReadOnlyOffSQL, err)
			}
			defer func() {
				cctx, cancel := cleanup()
				defer cancel()
				if _, rerr := c.ExecContext(cctx, superReadOnlyOnSQL); rerr != nil {
					db.log.Error("could not restore super_read_only; fence again", "err", rerr)
					err = errors.Join(err, fmt.Errorf("restore super_read_only: %w", rerr))
				}
			}()
		}
	}
	return fn(c, noBackslash)
}

// Version returns the server's version string, e.g. "10.11.19-MariaDB-0+deb12u1".
func (db *DB) Version(ctx context.Context) (string, error) {
	v, err := queryString(ctx, db.pool, "SELECT VERSION()")
	if err != nil {
		return "", fmt.Errorf("mysql: read version: %w", err)
	}
	return v, nil
}

// ServerID returns @@server_id.
func (db *DB) ServerID(ctx context.Context) (uint32, error) {
	var id uint32
	if err := db.pool.QueryRowContext(ctx, "SELECT @@GLOBAL.server_id").Scan(&id); err != nil {
		return 0, fmt.Errorf("mysql: read server_id: %w", err)
	}
	return id, nil
}
