package local

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/storagetest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t) })
}

func TestFailedPutLeavesNoTempFile(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), "a/b", storagetest.FailingReader(make([]byte, 1000), 500)); err == nil {
		t.Fatal("Put succeeded")
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestTempFilesAreNeverListed(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), "d/real", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of a Put leaves behind.
	if err := os.WriteFile(filepath.Join(s.dir, "d", tmpPrefix+"123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Name != "d/real" {
		t.Errorf("List = %+v, want only d/real", objs)
	}
	if _, err := s.Put(context.Background(), "d/"+tmpPrefix+"x", strings.NewReader("x")); err == nil {
		t.Error("Put of a reserved temporary name succeeded")
	}
}

// enospcFile is a temporary file on a disk that fills up after limit bytes.
type enospcFile struct {
	*os.File
	limit int
}

func (f *enospcFile) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.File.Write(p[:f.limit])
		f.limit = 0
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.limit -= len(p)
	return f.File.Write(p)
}

func TestDiskFullIsNamed(t *testing.T) {
	s := newStore(t)
	var tmp string
	s.openTemp = func(dir string) (tempFile, error) {
		f, err := os.CreateTemp(dir, tmpPrefix+"*")
		if err != nil {
			return nil, err
		}
		tmp = f.Name()
		return &enospcFile{File: f, limit: 4096}, nil
	}
	_, err := s.Put(context.Background(), "full/x", bytes.NewReader(make([]byte, 1<<20)))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put error = %v, want ENOSPC", err)
	}
	want := "local storage " + s.dir + ": disk full writing full/x: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Put error = %q, want it to start with %q", err, want)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary file %s still there after a failed Put (stat: %v)", tmp, err)
	}
	if _, err := s.Stat(context.Background(), "full/x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after failed Put: %v, want ErrNotFound", err)
	}
}

func TestPermissionDeniedIsNamed(t *testing.T) {
	s := newStore(t)
	s.openTemp = func(dir string) (tempFile, error) {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, tmpPrefix+"1"), Err: syscall.EACCES}
	}
	_, err := s.Put(context.Background(), "x", strings.NewReader("data"))
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Put error = %v, want a permission error", err)
	}
	if !strings.Contains(err.Error(), "permission denied writing x (check the owner and mode of "+s.dir+")") {
		t.Errorf("Put error = %q does not name the problem", err)
	}
}

func TestPermissionDeniedOnRealDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory modes")
	}
	s := newStore(t)
	if err := os.Chmod(s.dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(s.dir, 0o700) })
	_, err := s.Put(context.Background(), "x", strings.NewReader("data"))
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Put error = %v, want a permission error", err)
	}
}

func TestNewRejectsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(f); err == nil {
		t.Error("New on a regular file succeeded")
	}
}

func TestDeleteLeavesDirectories(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), "d/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(context.Background(), "d"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete of a directory: %v, want ErrNotFound", err)
	}
	if err := s.Delete(context.Background(), "d/x"); err != nil {
		t.Fatal(err)
	}
}

func TestFileMode(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), "m/x", strings.NewReader("secret rows")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(s.dir, "m", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("object mode = %v, want 0600", st.Mode().Perm())
	}
}
