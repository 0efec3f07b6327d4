// Package mysql is everything mysqlpilot does to a MySQL or MariaDB server: the option file,
// datadir initialization, a pooled admin connection, accounts, read-only fencing, replication
// with GTIDs, semi-sync, and the in-server watchdog that fences a primary whose supervisor
// froze.
//
// The two server families differ in statements and variables; all of those differences live
// in flavor.go, behind Flavor. GTID sets of both notations are in gtid.go.
//
// Secrets: passwords reach the server inside statements that cannot take parameters
// (IDENTIFIED BY, CHANGE MASTER TO), so they are quoted here and every error of such a
// statement is redacted before it leaves the package; on MariaDB, accounts get a precomputed
// hash instead of the clear password. Client tools get passwords through option files
// written 0600 (WriteClientOptionFile), never argv.
package mysql
