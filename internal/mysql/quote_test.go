package mysql

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
)

func TestQuoteString(t *testing.T) {
	tests := []struct {
		in, backslash, noBackslash string
	}{
		{"plain", `'plain'`, `'plain'`},
		{"it's", `'it\'s'`, `'it''s'`},
		{`back\slash`, `'back\\slash'`, `'back\slash'`},
		{"nul\x00 nl\n cr\r ^Z\x1a \"q\"", `'nul\0 nl\n cr\r ^Z\Z \"q\"'`, "'nul\x00 nl\n cr\r ^Z\x1a \"q\"'"},
		{"", `''`, `''`},
	}
	for _, tc := range tests {
		if got := quoteString(tc.in, false); got != tc.backslash {
			t.Errorf("quoteString(%q, false) = %s, want %s", tc.in, got, tc.backslash)
		}
		if got := quoteString(tc.in, true); got != tc.noBackslash {
			t.Errorf("quoteString(%q, true) = %s, want %s", tc.in, got, tc.noBackslash)
		}
	}
}

func TestQuoteIdentAndGrantDB(t *testing.T) {
	if got := quoteIdent("we`ird"); got != "`we``ird`" {
		t.Errorf("quoteIdent = %s", got)
	}
	if got := quoteGrantDB(`my_db%`); got != "`my\\_db\\%`" {
		t.Errorf("quoteGrantDB = %s", got)
	}
}

func TestRedactError(t *testing.T) {
	const pw = `s3cr'et`
	server := &mysqldrv.MySQLError{Number: 1064, SQLState: [5]byte{'4', '2', '0', '0', '0'},
		Message: `You have an error in your SQL syntax; check the manual near 's3cr\'et', MASTER_USE_GTID = sl' at line 1`}
	err := redactError(fmt.Errorf("CHANGE MASTER TO: %w", server), pw)
	if strings.Contains(err.Error(), "s3cr") {
		t.Fatalf("secret survived: %v", err)
	}
	if !strings.Contains(err.Error(), redacted) {
		t.Errorf("no redaction marker in %v", err)
	}
	var me *mysqldrv.MySQLError
	if !errors.As(err, &me) || me.Number != 1064 || strings.Contains(me.Message, "s3cr") {
		t.Errorf("server error not kept (redacted) for errors.As: %#v", me)
	}

	hash := nativePasswordHash(pw)
	err = redactError(errors.New("bad: IDENTIFIED BY PASSWORD '"+hash+"'"), pw)
	if strings.Contains(err.Error(), hash) {
		t.Errorf("password hash survived: %v", err)
	}

	plain := errors.New("connection refused")
	if got := redactError(plain, pw); got != plain {
		t.Errorf("an error without secrets was rewrapped: %v", got)
	}
	if redactError(nil, pw) != nil {
		t.Error("nil error became non-nil")
	}
	if got := redactError(plain, ""); got != plain {
		t.Error("empty secret changed the error")
	}
}

func TestOptionValue(t *testing.T) {
	if got, want := optionValue("a \"b\" #c\\d\n\te"), `"a \"b\" #c\\d\n\te"`; got != want {
		t.Errorf("optionValue = %s, want %s", got, want)
	}
}

func TestScrubQuoted(t *testing.T) {
	server := &mysqldrv.MySQLError{Number: 1470, Message: "String 'averyveryverylongpasswordthatgotcu...' is too long for MASTER_PASSWORD"}
	err := scrubQuoted(fmt.Errorf("CHANGE MASTER TO: %w", server))
	want := "CHANGE MASTER TO: Error 1470: String '…"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	var me *mysqldrv.MySQLError
	if !errors.As(err, &me) || me.Number != 1470 || strings.Contains(me.Message, "avery") {
		t.Errorf("server error: %#v", me)
	}
	for in, want := range map[string]string{
		"near 'MASTER_PASSWORD = 'ab\\'c', MASTER_USE_GTID' at line 1":                       "near '…' at line 1",
		"String 'abcdefgh...' is too long for MASTER_PASSWORD (should be no longer than 32)": "String '…' is too long for MASTER_PASSWORD (should be no longer than 32)",
		"near 'MASTER_PASSWORD = 'ab''c', MASTER_USE_GTID' at line 1":                        "near '…' at line 1",
		"near 'MASTER_PASSWORD = 'abc":                                                       "near '…",
		"cut 'abc":                                                                           "cut '…",
		"no quotes":                                                                          "no quotes",
	} {
		if got := scrubString(in); got != want {
			t.Errorf("scrubString(%q) = %q, want %q", in, got, want)
		}
	}
	if scrubQuoted(nil) != nil {
		t.Error("nil became non-nil")
	}
}
