package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
)

func TestConnectErrorWrongPassword(t *testing.T) {
	const pw = "hunter2-secret"
	db, err := newDB(Conn{Flavor: MariaDB, Socket: "/run/mysqld.sock", Password: pw, PasswordSource: "MYSQL_ROOT_PASSWORD"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	denied := &mysqldrv.MySQLError{Number: 1045, Message: "Access denied for user 'root'@'localhost' (using password: YES)"}
	got := db.connectError(denied)
	want := "mysql: connect to unix:/run/mysqld.sock: wrong password for user root@localhost (check MYSQL_ROOT_PASSWORD)"
	if !strings.HasPrefix(got.Error(), want) {
		t.Errorf("got  %v\nwant prefix %s", got, want)
	}
	if !errors.Is(got, ErrAccessDenied) {
		t.Error("not ErrAccessDenied")
	}
	var me *mysqldrv.MySQLError
	if !errors.As(got, &me) || me.Number != 1045 {
		t.Error("server error lost")
	}
	if strings.Contains(got.Error(), pw) {
		t.Errorf("password in error: %v", got)
	}

	// A message echoing the password (an unusual server or proxy) is redacted too.
	echo := fmt.Errorf("handshake: %w", &mysqldrv.MySQLError{Number: 2000, Message: "bad password " + pw})
	if got := db.connectError(echo); strings.Contains(got.Error(), pw) {
		t.Errorf("password in error: %v", got)
	}
}

func TestConnectErrorHintDefault(t *testing.T) {
	db, err := newDB(Conn{Flavor: MySQL, Addr: "10.0.0.1:3306", User: "app", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := db.connectError(&mysqldrv.MySQLError{Number: 1045, Message: "Access denied for user 'app'@'10.0.0.9' (using password: YES)"})
	if !strings.Contains(got.Error(), "wrong password for user app@10.0.0.9 (check the configured password)") {
		t.Errorf("got %v", got)
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"socket missing", fmt.Errorf("dial: %w", syscall.ENOENT), true},
		{"bad conn", driver.ErrBadConn, true},
		{"shutdown in progress", &mysqldrv.MySQLError{Number: 1053}, true},
		{"too many connections", &mysqldrv.MySQLError{Number: 1040}, true},
		{"access denied", &mysqldrv.MySQLError{Number: 1045}, false},
		{"unknown database", &mysqldrv.MySQLError{Number: 1049}, false},
		{"other", errors.New("boom"), false},
	}
	for _, tc := range tests {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s: transient = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func TestOpenNoServer(t *testing.T) {
	const pw = "pw-that-must-not-leak"
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := Open(ctx, Conn{Flavor: MariaDB, Socket: sock, Password: pw})
	if err == nil {
		t.Fatal("Open succeeded without a server")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), sock) {
		t.Errorf("err = %v; want a deadline error naming the socket", err)
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("password in error: %v", err)
	}
}

func TestOpenInvalid(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Conn{Flavor: "db2", Socket: "/s"}); err == nil {
		t.Error("unknown flavor accepted")
	}
	if _, err := Open(ctx, Conn{Flavor: MariaDB}); err == nil {
		t.Error("no socket and no address accepted")
	}
}

func TestUsersValidate(t *testing.T) {
	ok := Users{RootPassword: "r", User: "app", Password: "p", Database: "appdb", ReplUser: "repl", ReplPassword: "q"}
	if err := ok.validate(MariaDB); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Users)
		want string
	}{
		{"no root password", func(u *Users) { u.RootPassword = "" }, "root password is empty"},
		{"user without password", func(u *Users) { u.Password = "" }, "user app has no password"},
		{"repl without password", func(u *Users) { u.ReplPassword = "" }, "replication user repl has no password"},
		{"same users", func(u *Users) { u.ReplUser = "app" }, "must differ"},
		{"root as app user", func(u *Users) { u.User = "root" }, "root cannot be"},
		{"bad database", func(u *Users) { u.Database = "a/b" }, "not a valid name"},
		{"NUL password", func(u *Users) { u.Password = "a\x00" }, "NUL"},
	}
	for _, tc := range tests {
		u := ok
		tc.edit(&u)
		err := u.validate(MariaDB)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "\"p\"") || strings.Contains(err.Error(), "\"q\"")) {
			t.Errorf("%s: a password in %v", tc.name, err)
		}
	}
	if err := (Users{RootPassword: "r", User: strings.Repeat("u", 33), Password: "p"}).validate(MySQL); err == nil {
		t.Error("33-character MySQL user accepted")
	}
}

func TestVerb(t *testing.T) {
	if got := verb("ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY 'x'"); got != "ALTER USER IF EXISTS" {
		t.Errorf("verb = %q", got)
	}
	if got := verb("CHANGE MASTER TO MASTER_HOST = 'h', MASTER_PASSWORD = 'x'"); got != "CHANGE MASTER TO MASTER_HOST =" {
		t.Errorf("verb = %q", got)
	}
}
