package mysql

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlavor(t *testing.T) {
	for in, want := range map[string]Flavor{"mariadb": MariaDB, "MariaDB": MariaDB, " mysql ": MySQL} {
		if got, err := ParseFlavor(in); err != nil || got != want {
			t.Errorf("ParseFlavor(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// Percona Server is flavor "mysql", as mysql.flavor's validation says.
	for _, in := range []string{"postgres", "percona"} {
		if _, err := ParseFlavor(in); err == nil {
			t.Errorf("ParseFlavor(%s) succeeded", in)
		}
	}
	if err := Flavor("").Validate(); err == nil {
		t.Error("empty flavor validates")
	}
}

// TestFlavorSQL pins every statement that differs between the flavors. MySQL cannot run here;
// these strings were checked against the MySQL 8.0/8.4 reference manual.
func TestFlavorSQL(t *testing.T) {
	tests := []struct {
		name           string
		got            func(Flavor) []string
		mariadb, mysql []string
	}{
		{"read only on", func(f Flavor) []string { return f.readOnlyOnSQL() },
			[]string{"SET GLOBAL read_only = ON"},
			[]string{"SET GLOBAL super_read_only = ON"}},
		{"read only off", func(f Flavor) []string { return f.readOnlyOffSQL() },
			[]string{"SET GLOBAL read_only = OFF"},
			[]string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}},
		{"reload TLS certificates", func(f Flavor) []string { return []string{f.ReloadTLS()} },
			[]string{"FLUSH SSL"},
			[]string{"ALTER INSTANCE RELOAD TLS"}},
		{"read only query", func(f Flavor) []string { return []string{f.readOnlyQuery(), f.superReadOnlyQuery()} },
			[]string{"SELECT @@GLOBAL.read_only", ""},
			[]string{"SELECT @@GLOBAL.read_only", "SELECT @@GLOBAL.super_read_only"}},
		{"executed GTIDs", func(f Flavor) []string { return []string{f.gtidExecutedQuery(), f.gtidAppliedQuery()} },
			[]string{"SELECT CONCAT_WS(',', NULLIF(@@GLOBAL.gtid_binlog_state, ''), NULLIF(@@GLOBAL.gtid_slave_pos, ''))", "SELECT @@GLOBAL.gtid_slave_pos"},
			[]string{"SELECT @@GLOBAL.gtid_executed", "SELECT @@GLOBAL.gtid_executed"}},
		{"replica control", func(f Flavor) []string {
			return []string{f.startReplicaSQL(), f.stopReplicaSQL(), f.stopIOThreadSQL(), f.startIOThreadSQL(),
				f.startSQLThreadSQL(), f.resetReplicaSQL(), f.replicaStatusSQL()}
		},
			[]string{"START SLAVE", "STOP SLAVE", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD",
				"START SLAVE SQL_THREAD", "RESET SLAVE ALL", "SHOW SLAVE STATUS"},
			[]string{"START REPLICA", "STOP REPLICA", "STOP REPLICA IO_THREAD", "START REPLICA IO_THREAD",
				"START REPLICA SQL_THREAD", "RESET REPLICA ALL", "SHOW REPLICA STATUS"}},
		{"before change primary", func(f Flavor) []string { return f.preChangePrimarySQL() },
			[]string{"SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"},
			nil},
		{"wait for GTIDs", func(f Flavor) []string { return []string{f.waitGTIDQuery(), f.relayDrainedState()} },
			[]string{"SELECT MASTER_GTID_WAIT(?, ?)", "Slave has read all relay log; waiting for more updates"},
			[]string{"SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)", "Replica has read all relay log; waiting for more updates"}},
		{"GTID position restore on 8.0", func(f Flavor) []string { return f.setGTIDPositionSQL("8.0.36") },
			[]string{"RESET MASTER", "SET GLOBAL gtid_binlog_state = ?", "SET GLOBAL gtid_slave_pos = ?"},
			[]string{"RESET MASTER", "SET GLOBAL gtid_purged = ?"}},
		{"GTID position restore on 8.4", func(f Flavor) []string { return f.setGTIDPositionSQL("8.4.3-percona") },
			[]string{"RESET MASTER", "SET GLOBAL gtid_binlog_state = ?", "SET GLOBAL gtid_slave_pos = ?"},
			[]string{"RESET BINARY LOGS AND GTIDS", "SET GLOBAL gtid_purged = ?"}},
		{"semi-sync primary", func(f Flavor) []string { return f.semiSyncSQL(true, 1500*time.Millisecond) },
			[]string{"SET GLOBAL rpl_semi_sync_master_timeout = 1500", "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
				"SET GLOBAL rpl_semi_sync_slave_enabled = OFF", "SET GLOBAL rpl_semi_sync_master_enabled = ON"},
			[]string{"SET GLOBAL rpl_semi_sync_source_timeout = 1500", "SET GLOBAL rpl_semi_sync_source_wait_point = AFTER_SYNC",
				"SET GLOBAL rpl_semi_sync_replica_enabled = OFF", "SET GLOBAL rpl_semi_sync_source_enabled = ON"}},
		{"semi-sync replica", func(f Flavor) []string { return f.semiSyncSQL(false, 0) },
			[]string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL rpl_semi_sync_slave_enabled = ON"},
			[]string{"SET GLOBAL rpl_semi_sync_source_enabled = OFF", "SET GLOBAL rpl_semi_sync_replica_enabled = ON"}},
		{"semi-sync off", func(f Flavor) []string { return f.semiSyncOffSQL() },
			[]string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL rpl_semi_sync_slave_enabled = OFF"},
			[]string{"SET GLOBAL rpl_semi_sync_source_enabled = OFF", "SET GLOBAL rpl_semi_sync_replica_enabled = OFF"}},
		{"semi-sync plugins", func(f Flavor) []string {
			var s []string
			for _, p := range f.semiSyncPluginsSQL() {
				s = append(s, p[1])
			}
			return s
		},
			nil,
			[]string{"INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'",
				"INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'"}},
		{"binaries", func(f Flavor) []string { return []string{f.ServerBinary(), f.BackupTool()} },
			[]string{"mariadbd", "mariabackup"},
			[]string{"mysqld", "xtrabackup"}},
		{"watchdog fence", func(f Flavor) []string { return []string{f.watchdogFenceSQL()} },
			[]string{"SET GLOBAL read_only = ON"},
			[]string{"SET GLOBAL super_read_only = ON"}},
		{"replication grant", func(f Flavor) []string { return []string{f.replicationPrivileges()} },
			[]string{"REPLICATION SLAVE"}, []string{"REPLICATION SLAVE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for f, want := range map[Flavor][]string{MariaDB: tc.mariadb, MySQL: tc.mysql} {
				if got := tc.got(f); !slices.Equal(got, want) {
					t.Errorf("%s:\n got %q\nwant %q", f, got, want)
				}
			}
		})
	}
}

func TestChangePrimarySQL(t *testing.T) {
	p := Primary{Host: "10.0.0.5", Port: 3306, User: "repl", Password: `pa'ss\word`}
	o := ChangePrimaryOptions{ConnectRetry: 5 * time.Second, RetryCount: 86400, HeartbeatPeriod: 2500 * time.Millisecond}
	tests := []struct {
		name        string
		flavor      Flavor
		o           ChangePrimaryOptions
		noBackslash bool
		want        string
	}{
		{"mariadb", MariaDB, o, false,
			`CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 'pa\'ss\\word', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 5, MASTER_HEARTBEAT_PERIOD = 2.500, MASTER_SSL = 0`},
		{"mariadb no backslash escapes, ssl, default heartbeat", MariaDB, ChangePrimaryOptions{ConnectRetry: 1500 * time.Millisecond, SSL: true}, true,
			`CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 'pa''ss\word', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 2, MASTER_SSL = 1, MASTER_SSL_VERIFY_SERVER_CERT = 0`},
		{"mariadb tls verified against the CA", MariaDB, ChangePrimaryOptions{ConnectRetry: time.Second, SSL: true, SSLCA: "/var/lib/mysql/data.tls/ca'.pem"}, false,
			`CHANGE MASTER TO MASTER_HOST = '10.0.0.5', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 'pa\'ss\\word', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_SSL = 1, MASTER_SSL_CA = '/var/lib/mysql/data.tls/ca\'.pem', MASTER_SSL_VERIFY_SERVER_CERT = 1`},
		{"mysql", MySQL, o, false,
			`CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.5', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = 'pa\'ss\\word', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 5, SOURCE_RETRY_COUNT = 86400, SOURCE_HEARTBEAT_PERIOD = 2.500, SOURCE_SSL = 0, GET_SOURCE_PUBLIC_KEY = 1`},
		{"mysql ssl", MySQL, ChangePrimaryOptions{ConnectRetry: time.Second, RetryCount: 3, SSL: true}, false,
			`CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.5', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = 'pa\'ss\\word', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, SOURCE_RETRY_COUNT = 3, SOURCE_SSL = 1, SOURCE_SSL_VERIFY_SERVER_CERT = 0`},
		{"mysql tls verified against the CA", MySQL, ChangePrimaryOptions{ConnectRetry: time.Second, RetryCount: 3, SSL: true, SSLCA: "/d.tls/ca.pem"}, false,
			`CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.5', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = 'pa\'ss\\word', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, SOURCE_RETRY_COUNT = 3, SOURCE_SSL = 1, SOURCE_SSL_CA = '/d.tls/ca.pem', SOURCE_SSL_VERIFY_SERVER_CERT = 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.flavor.changePrimarySQL(p, tc.o, tc.noBackslash); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestIdentifiedBy(t *testing.T) {
	// MariaDB: PASSWORD('password') is *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19.
	if got, want := MariaDB.identifiedBy("password", false), "IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'"; got != want {
		t.Errorf("MariaDB: got %s, want %s", got, want)
	}
	if got, want := MySQL.identifiedBy("it's", false), `IDENTIFIED BY 'it\'s'`; got != want {
		t.Errorf("MySQL: got %s, want %s", got, want)
	}
	if got, want := MySQL.identifiedBy("it's", true), `IDENTIFIED BY 'it''s'`; got != want {
		t.Errorf("MySQL no backslash escapes: got %s, want %s", got, want)
	}
}

func TestWatchdogSQL(t *testing.T) {
	for _, f := range []Flavor{MariaDB, MySQL} {
		stmts := f.watchdogSQL()
		if len(stmts) != 4 || !strings.HasPrefix(stmts[2], "CREATE EVENT IF NOT EXISTS mysqlpilot.fence_on_stale_heartbeat ON SCHEDULE EVERY 1 SECOND") ||
			!strings.HasPrefix(stmts[3], "ALTER EVENT mysqlpilot.fence_on_stale_heartbeat ON SCHEDULE EVERY 1 SECOND") {
			t.Fatalf("%s: unexpected statements %q", f, stmts)
		}
		body := stmts[2][strings.Index(stmts[2], " DO "):]
		if body != stmts[3][strings.Index(stmts[3], " DO "):] {
			t.Errorf("%s: CREATE and ALTER bodies differ", f)
		}
		for _, want := range []string{"@@GLOBAL.read_only = 0", "deadline < UTC_TIMESTAMP(3)", "WHERE id = 1", f.watchdogFenceSQL() + ";"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: event body lacks %q: %s", f, want, body)
			}
		}
	}
}

func TestInitCommand(t *testing.T) {
	c := MariaDB.initCommand("/var/lib/mysql", InitOptions{OSUser: "mysql"})
	if c.Path != "mariadb-install-db" || !slices.Equal(c.Args, []string{"--no-defaults", "--datadir=/var/lib/mysql",
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", "--user=mysql"}) {
		t.Errorf("MariaDB init: %s %q", c.Path, c.Args)
	}
	c = MySQL.initCommand("/var/lib/mysql", InitOptions{Installer: "/opt/mysql/bin/mysqld"})
	if c.Path != "/opt/mysql/bin/mysqld" || !slices.Equal(c.Args, []string{"--no-defaults", "--initialize-insecure", "--datadir=/var/lib/mysql"}) {
		t.Errorf("MySQL init: %s %q", c.Path, c.Args)
	}
}

func TestIsSystemThread(t *testing.T) {
	tests := []struct {
		user, cmd string
		want      bool
	}{
		{"event_scheduler", "Daemon", true},
		{"system user", "Slave_IO", true},
		{"system user", "Connect", true}, // MySQL replica threads
		{"repl", "Binlog Dump", true},
		{"repl", "Binlog Dump GTID", true},
		{"app", "Query", false},
		{"app", "Sleep", false},
		{"root", "Sleep", false},
		{"unauthenticated user", "Connect", false},
	}
	for _, tc := range tests {
		for _, f := range []Flavor{MariaDB, MySQL} {
			if got := f.isSystemThread(tc.user, tc.cmd); got != tc.want {
				t.Errorf("%s.isSystemThread(%q, %q) = %t, want %t", f, tc.user, tc.cmd, got, tc.want)
			}
		}
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		v            string
		major, minor int
		want         bool
	}{
		{"8.4.3", 8, 2, true},
		{"8.2.0", 8, 2, true},
		{"8.0.36-28", 8, 2, false},
		{"10.11.19-MariaDB-0+deb12u1-log", 10, 6, true},
		{"9.1.0", 8, 2, true},
		{"garbage", 8, 0, false},
	}
	for _, tc := range tests {
		if got := versionAtLeast(tc.v, tc.major, tc.minor); got != tc.want {
			t.Errorf("versionAtLeast(%q, %d, %d) = %t", tc.v, tc.major, tc.minor, got)
		}
	}
}

func TestReplSSLType(t *testing.T) {
	for _, f := range []Flavor{MariaDB, MySQL} {
		if typ, req := f.replSSLType(true); typ != "ANY" || req != "REQUIRE SSL" {
			t.Errorf("%s on: %q %q", f, typ, req)
		}
		if typ, req := f.replSSLType(false); typ != "" || req != "REQUIRE NONE" {
			t.Errorf("%s off: %q %q", f, typ, req)
		}
	}
}

// A backup's commit block at its end lasts until the redo-log copier looks again: the
// backup asks it to look every 20 ms, not every second (see BackupArgs).
func TestBackupArgsShortLogCopyInterval(t *testing.T) {
	for _, f := range []Flavor{MariaDB, MySQL} {
		args := f.BackupArgs("/run/opt.cnf", "/tmp/bk")
		if args[0] != "--defaults-extra-file=/run/opt.cnf" || !slices.Contains(args, "--log-copy-interval=20") {
			t.Errorf("%s: %v", f, args)
		}
	}
}
