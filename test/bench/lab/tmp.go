package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// IsolateTmp keeps this program's MariaDB processes out of the machine's shared /tmp.
//
// Every mariadbd deletes the "#sql*" files in its tmpdir when it starts (its own leftover
// temporary tables, it assumes), and its tmpdir defaults to $TMPDIR or /tmp. Several servers
// sharing one tmpdir on one host therefore delete each other's temporary tables: seen here as
// mariadb-install-db failing ("Could not remove temporary table '/tmp/#sql-temptable-...',
// error: 2", "Unknown table 'mysql.tmp_user_sys'") and as mariadbd crashing with signal 11 in
// ha_maria::drop_table. mysqlpilot initializes a datadir with `mariadb-install-db
// --no-defaults` and no --tmpdir, so concurrent nodes on one host (the harness, other
// engineers' tests on this machine) collide.
//
// IsolateTmp points TMPDIR at a private directory, and puts first in PATH a
// mariadb-install-db wrapper that gives each run a tmpdir of its own. Each node's mariadbd gets
// --tmpdir through OwnTmpdir. The returned func removes the directory.
func IsolateTmp() (func(), error) {
	real, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mpbench-env-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "bin")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{bin, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	script := fmt.Sprintf("#!/bin/sh\n# mpbench: a tmpdir of its own for each datadir initialization (see lab.IsolateTmp)\nTMPDIR=$(mktemp -d %q/installdb.XXXXXX) || exit 1\nexport TMPDIR\nexec %q \"$@\"\n", tmp, real)
	if err := os.WriteFile(filepath.Join(bin, "mariadb-install-db"), []byte(script), 0o755); err != nil {
		return nil, err
	}
	_ = os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	_ = os.Setenv("TMPDIR", tmp)
	return func() { _ = os.RemoveAll(dir) }, nil
}
