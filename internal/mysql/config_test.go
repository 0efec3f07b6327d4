package mysql

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestServerConfigGolden(t *testing.T) {
	base := ServerConfig{
		Datadir:    "/var/lib/mysql",
		Port:       3306,
		ServerID:   42,
		ReportHost: "10.0.0.5",
	}
	tests := []struct {
		name string
		edit func(*ServerConfig)
	}{
		{"mariadb", func(c *ServerConfig) { c.Flavor = MariaDB }},
		{"mysql", func(c *ServerConfig) { c.Flavor = MySQL }},
		{"mariadb-semisync-extra", func(c *ServerConfig) {
			c.Flavor = MariaDB
			c.SemiSync = &SemiSyncConfig{Timeout: 10 * time.Second}
			c.Socket = "/run/my sql/mysqld.sock"
			c.BindAddress = "127.0.0.1"
			c.MaxConnections = 300
			c.ErrorLog = "/var/log/mysql/error.log"
			c.TmpDir = "/var/lib/mysql.tmp"
			c.Extra = []string{"innodb_log_file_size = 16M", "skip-symbolic-links"}
		}},
		{"mariadb-semisync-truncate", func(c *ServerConfig) {
			c.Flavor = MariaDB
			c.SemiSync = &SemiSyncConfig{Timeout: time.Hour, TruncateUnacknowledged: true}
		}},
		{"mariadb-tls", func(c *ServerConfig) {
			c.Flavor = MariaDB
			c.TLS = &ServerTLS{CA: "/var/lib/mysql.tls/ca.pem", Cert: "/var/lib/mysql.tls/server.pem", Key: "/var/lib/mysql.tls/server-key.pem"}
		}},
		{"mysql-tls-require-secure-transport", func(c *ServerConfig) {
			c.Flavor = MySQL
			c.TLS = &ServerTLS{CA: "/tls/ca.pem", Cert: "/tls/server.pem", Key: "/tls/server-key.pem", RequireSecureTransport: true}
		}},
		{"mysql-semisync", func(c *ServerConfig) {
			c.Flavor = MySQL
			c.SemiSync = &SemiSyncConfig{Timeout: time.Hour}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			got, err := c.Render()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "server-"+tc.name+".cnf", got)
		})
	}
}

// TestServerConfigSafety checks the settings the safety rules depend on, independent of the
// golden files' layout.
func TestServerConfigSafety(t *testing.T) {
	for _, f := range []Flavor{MariaDB, MySQL} {
		out, err := ServerConfig{Flavor: f, Datadir: "/d", Port: 1, ServerID: 1}.Render()
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		want := []string{"read_only = ON", "event_scheduler = ON", "binlog_format = ROW", "log-bin = mysql-bin",
			"relay-log = relay-bin", "skip-name-resolve = ON", "sync_binlog = 1", "server-id = 1"}
		switch f {
		case MariaDB:
			want = append(want, "gtid_strict_mode = ON", "log_slave_updates = ON", "skip_slave_start = ON")
		case MySQL:
			want = append(want, "super_read_only = ON", "gtid_mode = ON", "enforce_gtid_consistency = ON",
				"log_replica_updates = ON", "skip_replica_start = ON")
		}
		for _, w := range want {
			if !strings.Contains(s, "\n"+w+"\n") {
				t.Errorf("%s config lacks %q", f, w)
			}
		}
		if strings.Contains(strings.ToLower(s), "password") {
			t.Errorf("%s config mentions a password", f)
		}
	}
}

func TestServerConfigInvalid(t *testing.T) {
	ok := ServerConfig{Flavor: MariaDB, Datadir: "/d", Port: 3306, ServerID: 1}
	tests := []struct {
		name string
		edit func(*ServerConfig)
		want string
	}{
		{"no flavor", func(c *ServerConfig) { c.Flavor = "" }, "unknown flavor"},
		{"relative datadir", func(c *ServerConfig) { c.Datadir = "data" }, "absolute"},
		{"port", func(c *ServerConfig) { c.Port = 70000 }, "port 70000"},
		{"server id", func(c *ServerConfig) { c.ServerID = 0 }, "server id"},
		{"socket too long", func(c *ServerConfig) { c.Socket = "/" + strings.Repeat("s", 120) }, "longer than a unix socket"},
		{"newline in datadir", func(c *ServerConfig) { c.Datadir = "/d\n[client]" }, "line break"},
		{"extra injects a group", func(c *ServerConfig) { c.Extra = []string{"[client]"} }, "extra option"},
		{"extra with newline", func(c *ServerConfig) { c.Extra = []string{"a=1\nb=2"} }, "extra option"},
		{"log basename with slash", func(c *ServerConfig) { c.BinlogBasename = "../bin" }, "plain file name"},
		{"semi-sync without timeout", func(c *ServerConfig) { c.SemiSync = &SemiSyncConfig{} }, "semi-sync timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := c.Render()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render() error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestWriteServerConfigMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my.cnf")
	if err := WriteServerConfig(path, ServerConfig{Flavor: MariaDB, Datadir: "/d", Port: 3306, ServerID: 1}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode = %v, %v; want 0644", st.Mode().Perm(), err)
	}
	if err := WriteServerConfig(path, ServerConfig{Flavor: MariaDB}); err == nil {
		t.Fatal("invalid config written")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestServerArgs(t *testing.T) {
	if got := ServerArgs("/etc/mysqlpilot/my.cnf", "mysql"); !slices.Equal(got, []string{"--defaults-file=/etc/mysqlpilot/my.cnf", "--user=mysql"}) {
		t.Errorf("ServerArgs = %q", got)
	}
	if got := ServerArgs("/my.cnf", ""); !slices.Equal(got, []string{"--defaults-file=/my.cnf"}) {
		t.Errorf("ServerArgs without user = %q", got)
	}
}

func TestWriteClientOptionFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client.cnf")
	err := WriteClientOptionFile(path, ClientOptions{User: "root", Password: `p"w\#x y`, Socket: "/run/mysqld.sock", Port: 3306})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	data, _ := os.ReadFile(path)
	want := "[client]\nuser = \"root\"\npassword = \"p\\\"w\\\\#x y\"\nsocket = \"/run/mysqld.sock\"\nport = 3306\n"
	if string(data) != want {
		t.Errorf("client option file:\n%s\nwant:\n%s", data, want)
	}
	if err := WriteClientOptionFile(path, ClientOptions{Password: "a\x00b"}); err == nil || strings.Contains(err.Error(), "a\x00b") {
		t.Errorf("NUL password: err = %v", err)
	}
}

// fakeRunner records commands and creates the mysql/ schema like the real tool.
type fakeRunner struct {
	cmds []supervisor.Cmd
	err  error
	mk   bool
}

func (r *fakeRunner) Run(_ context.Context, c supervisor.Cmd) error {
	r.cmds = append(r.cmds, c)
	if r.err != nil {
		return r.err
	}
	if r.mk {
		for _, a := range c.Args {
			if d, ok := strings.CutPrefix(a, "--datadir="); ok {
				return os.MkdirAll(filepath.Join(d, "mysql"), 0o750)
			}
		}
	}
	return nil
}

func TestInitDatadir(t *testing.T) {
	ctx := context.Background()
	t.Run("fresh datadir is created and initialized", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		r := &fakeRunner{mk: true}
		if err := InitDatadir(ctx, r, MariaDB, dir, InitOptions{}); err != nil {
			t.Fatal(err)
		}
		if len(r.cmds) != 1 || r.cmds[0].Path != "mariadb-install-db" {
			t.Fatalf("commands: %+v", r.cmds)
		}
	})
	t.Run("populated datadir is refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "mysql"), 0o750); err != nil {
			t.Fatal(err)
		}
		r := &fakeRunner{}
		err := InitDatadir(ctx, r, MariaDB, dir, InitOptions{})
		if !errors.Is(err, ErrDatadirInitialized) || len(r.cmds) != 0 {
			t.Fatalf("err = %v, commands %d; want ErrDatadirInitialized and no command", err, len(r.cmds))
		}
	})
	t.Run("tool failure is reported", func(t *testing.T) {
		r := &fakeRunner{err: errors.New("exit status 1")}
		if err := InitDatadir(ctx, r, MySQL, t.TempDir(), InitOptions{}); err == nil || !strings.Contains(err.Error(), "exit status 1") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("tool that makes nothing is an error", func(t *testing.T) {
		if err := InitDatadir(ctx, &fakeRunner{}, MariaDB, t.TempDir(), InitOptions{}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("relative path", func(t *testing.T) {
		if err := InitDatadir(ctx, &fakeRunner{}, MariaDB, "data", InitOptions{}); err == nil {
			t.Fatal("no error")
		}
	})
}
