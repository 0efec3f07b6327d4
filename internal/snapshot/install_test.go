package snapshot

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The restored tree replaces the datadir in one swap: the datadir holds either all of the old
// files or all of the new ones, and the old ones are kept aside.
func TestInstallDatadirSwapsInOneStep(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name      string
		old       map[string]string // nil: no datadir
		wantAside bool
	}{
		{"a datadir in use before is kept aside", map[string]string{"mysql/user.frm": "old", "ibdata1": "old"}, true},
		{"an empty datadir is replaced", map[string]string{}, false},
		{"a missing datadir is created", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			datadir, src := filepath.Join(root, "data"), filepath.Join(root, "data-restore", "work", "data")
			if c.old != nil {
				if err := os.MkdirAll(datadir, 0o750); err != nil {
					t.Fatal(err)
				}
				for name, v := range c.old {
					write(filepath.Join(datadir, name), v)
				}
			}
			write(filepath.Join(src, "mysql", "user.frm"), "new")
			write(filepath.Join(src, RestoreStateFile), `{"snapshot":"s1"}`)
			aside, err := installDatadir(src, datadir, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := read(filepath.Join(datadir, "mysql", "user.frm")); got != "new" {
				t.Fatalf("datadir holds %q, want the restored file", got)
			}
			if _, err := os.Stat(filepath.Join(datadir, "ibdata1")); err == nil {
				t.Fatal("an old file is mixed into the restored datadir")
			}
			if _, err := os.Stat(src); !os.IsNotExist(err) {
				t.Fatalf("the temporary tree is still there: %v", err)
			}
			if !c.wantAside {
				if aside != "" {
					t.Fatalf("moved aside %q, want nothing", aside)
				}
				return
			}
			if want := datadir + ".old-20261205T100000Z"; aside != want {
				t.Fatalf("moved aside to %q, want %q", aside, want)
			}
			if got := read(filepath.Join(aside, "ibdata1")); got != "old" {
				t.Fatalf("the old datadir kept aside holds %q", got)
			}
		})
	}
}
