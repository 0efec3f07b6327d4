package config

import "testing"

func TestOSUser(t *testing.T) {
	if got := (MySQLConfig{Exec: []string{"mariadbd", "--user=mysql", "--x"}}).OSUser(); got != "mysql" {
		t.Errorf("OSUser = %q", got)
	}
	if got := (MySQLConfig{Exec: []string{"mariadbd"}}).OSUser(); got != "" {
		t.Errorf("OSUser = %q", got)
	}
	if got := (MySQLConfig{}).OSUser(); got != "" {
		t.Errorf("OSUser of no command = %q", got)
	}
}
