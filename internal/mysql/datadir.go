package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// ErrDatadirInitialized is returned by InitDatadir for a datadir that already holds a mysql/
// system schema: initializing over it could lose data.
var ErrDatadirInitialized = errors.New("datadir already initialized")

// InitOptions tune InitDatadir.
type InitOptions struct {
	// Installer overrides the tool's path (default mariadb-install-db or mysqld in PATH).
	Installer string
	// OSUser is the account the server runs as (--user); "" runs as the current user. When
	// mysqlpilot runs as root and InitDatadir creates the datadir, it hands it to this user.
	OSUser string
	// Stdout and Stderr receive the tool's output; nil discards it (stderr's tail still ends
	// up in the error of a failed run).
	Stdout, Stderr io.Writer
	// TmpDir is the bootstrap server's tmpdir (see ServerConfig.TmpDir); "" keeps the default.
	TmpDir string
}

// Initialized reports whether datadir holds a system schema (a mysql/ directory).
func Initialized(datadir string) (bool, error) {
	st, err := os.Stat(filepath.Join(datadir, "mysql"))
	switch {
	case err == nil:
		return st.IsDir(), nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("mysql: inspect datadir %s: %w", datadir, err)
	}
}

// InitDatadir creates the system schema in datadir with the flavor's tool (mariadb-install-db
// or mysqld --initialize-insecure) run through runner. The new root@localhost has no password
// and is reachable only over the socket; Bootstrap sets it. A datadir that already holds a
// mysql/ schema is refused with ErrDatadirInitialized. Other files are left to the tool
// (MySQL refuses a non-empty datadir itself).
func InitDatadir(ctx context.Context, runner supervisor.Runner, f Flavor, datadir string, o InitOptions) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("mysql: init datadir: %w", err)
	}
	if !filepath.IsAbs(datadir) {
		return fmt.Errorf("mysql: init datadir %q: not an absolute path", datadir)
	}
	done, err := Initialized(datadir)
	if err != nil {
		return err
	}
	if done {
		return fmt.Errorf("mysql: init datadir %s: %w (it has a mysql/ schema; refusing to overwrite)", datadir, ErrDatadirInitialized)
	}
	if err := ensureDatadir(datadir, o.OSUser); err != nil {
		return fmt.Errorf("mysql: init datadir %s: %w", datadir, err)
	}
	if o.TmpDir != "" {
		if err := ensureDatadir(o.TmpDir, o.OSUser); err != nil {
			return fmt.Errorf("mysql: init datadir %s: tmpdir: %w", datadir, err)
		}
	}
	cmd := f.initCommand(datadir, o)
	if err := runner.Run(ctx, cmd); err != nil {
		return fmt.Errorf("mysql: init datadir %s: %w", datadir, err)
	}
	if done, err := Initialized(datadir); err != nil {
		return err
	} else if !done {
		return fmt.Errorf("mysql: init datadir %s: %s exited 0 but made no mysql/ schema", datadir, cmd.Name)
	}
	return nil
}

// ensureDatadir creates datadir (0750) when missing and, when running as root with another
// OS user for the server, gives it to that user.
func ensureDatadir(datadir, osUser string) error {
	_, err := os.Stat(datadir)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return err
	}
	if osUser == "" || osUser == "root" || os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := OSUserIDs(osUser)
	if err != nil {
		return err
	}
	return os.Chown(datadir, uid, gid)
}

// OSUserIDs looks up an OS account's numeric user and group IDs.
func OSUserIDs(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("look up OS user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("OS user %s: %w", name, err)
	}
	return uid, gid, nil
}
