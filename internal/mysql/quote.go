package mysql

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	mysqldrv "github.com/go-sql-driver/mysql"
)

// quoteString returns s as a single-quoted SQL string literal. With backslash escapes (the
// default sql_mode) it escapes like mysql_real_escape_string; with NO_BACKSLASH_ESCAPES only
// the quote doubles. Use it only where the grammar takes no parameter (CHANGE MASTER TO,
// IDENTIFIED BY); elsewhere bind parameters.
func quoteString(s string, noBackslash bool) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if noBackslash {
			if c == '\'' {
				b.WriteString("''")
			} else {
				b.WriteByte(c)
			}
			continue
		}
		switch c {
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// quoteIdent returns name as a backquoted identifier.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// quoteGrantDB quotes a database name for GRANT ... ON `db`.*, where _ and % are wildcards
// unless escaped: GRANT on "my_db" must not also grant "myXdb".
func quoteGrantDB(name string) string {
	r := strings.NewReplacer(`\`, `\\`, "_", `\_`, "%", `\%`)
	return quoteIdent(r.Replace(name))
}

// account formats 'user'@'host'.
func account(user, host string, noBackslash bool) string {
	return quoteString(user, noBackslash) + "@" + quoteString(host, noBackslash)
}

// nativePasswordHash is mysql_native_password's stored form: "*" and the upper-case hex of
// SHA1(SHA1(password)).
func nativePasswordHash(password string) string {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

// redacted replaces secrets in error messages.
const redacted = "[redacted]"

// secretForms returns the spellings under which a secret can show up in a server error: as
// given, quoted both ways, and (MariaDB) as its stored hash.
func secretForms(secret string) []string {
	if secret == "" {
		return nil
	}
	forms := []string{secret, quoteString(secret, false), quoteString(secret, true), nativePasswordHash(secret)}
	// Errors quote statement text "near '...'": the inner part of the escaped literal too.
	for _, q := range forms[1:3] {
		forms = append(forms, q[1:len(q)-1])
	}
	return forms
}

// redactError returns err with every form of the secrets removed from its message. A server
// error stays a *mysqldrv.MySQLError (number and SQL state kept) so errors.As still works; any
// other error keeps its message only. Errors that hold no secret are returned unchanged.
func redactError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var forms []string
	for _, s := range secrets {
		forms = append(forms, secretForms(s)...)
	}
	if len(forms) == 0 {
		return err
	}
	msg, changed := redactString(err.Error(), forms)
	if !changed {
		return err
	}
	re := &redactedError{msg: msg}
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		m, _ := redactString(me.Message, forms)
		re.cause = &mysqldrv.MySQLError{Number: me.Number, SQLState: me.SQLState, Message: m}
	}
	return re
}

func redactString(s string, forms []string) (string, bool) {
	changed := false
	// Longest first, so a quoted form goes before the bare secret inside it.
	for {
		best := ""
		for _, f := range forms {
			if len(f) > len(best) && strings.Contains(s, f) {
				best = f
			}
		}
		if best == "" {
			return s, changed
		}
		s, changed = strings.ReplaceAll(s, best, redacted), true
	}
}

// scrubQuoted returns err with everything between the first and the last single quote of its
// message (and of a server error's message) replaced by '…', for errors of statements that
// carry a secret: the server echoes statement text in quotes ("near '...' at line 1",
// "String '...' is too long") and may cut it mid-password, which exact matching would miss.
// Quotes inside the echo need not pair up, so the whole span goes; what follows the last
// quote stays only when it is a known message tail (" at line 1"), else all after the first
// quote goes.
func scrubQuoted(err error) error {
	if err == nil {
		return nil
	}
	re := &redactedError{msg: scrubString(err.Error())}
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		re.cause = &mysqldrv.MySQLError{Number: me.Number, SQLState: me.SQLState, Message: scrubString(me.Message)}
	}
	return re
}

// echoTail matches what a server message says after the statement text it quotes.
var echoTail = regexp.MustCompile(`^ (at line \d+|is too long for \w+ \(should be no longer than \d+\))$`)

func scrubString(s string) string {
	i, j := strings.IndexByte(s, '\''), strings.LastIndexByte(s, '\'')
	switch {
	case i < 0:
		return s
	case j > i && echoTail.MatchString(s[j+1:]):
		return s[:i] + "'…'" + s[j+1:]
	default:
		return s[:i] + "'…"
	}
}

type redactedError struct {
	msg   string
	cause error // a redacted copy of the server error, or nil
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// optionValue formats a value for a MySQL/MariaDB option file: double-quoted, with the escape
// sequences the option file parser understands (\\ \" \n \r \t). Quoting keeps '#', spaces
// and quote characters inside the value.
func optionValue(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// checkNoNUL rejects values the server cannot take.
func checkNoNUL(field, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s contains a NUL byte", field)
	}
	return nil
}
