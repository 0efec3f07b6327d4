// Package local stores objects as files below a directory (a mounted volume such as /snapshots).
//
// A Put writes to a temporary file in the object's own directory, fsyncs it, renames it over the
// final name and fsyncs the directory, so an object is either absent, its old version or its new
// version, even across a crash. Temporary files start with ".mysqlpilot-tmp-" and are never
// listed; a failed Put removes its own, a crash may leave one behind (harmless, and the next
// Delete or Put of that name does not care). Files are created 0600 and directories 0750: a
// backup holds the whole database.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

// tmpPrefix starts the name of every temporary file; such names are reserved.
const tmpPrefix = ".mysqlpilot-tmp-"

// copyBufferSize is the size of the one buffer a Put copies through.
const copyBufferSize = 1 << 20

// Store is a storage.Store over a local directory.
type Store struct {
	dir string
	// openTemp creates the temporary file for a Put in dir; tests replace it to inject errors.
	openTemp func(dir string) (tempFile, error)
}

// tempFile is what Put needs of the temporary file (an *os.File).
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

var _ storage.Store = (*Store)(nil)

// New returns a store over dir, creating it (and its parents) when missing.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("local storage: no directory configured")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local storage %s: %w", dir, err)
	}
	s := &Store{dir: abs, openTemp: createTemp}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, s.fail("create directory", "", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, s.fail("stat directory", "", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("local storage %s: not a directory", abs)
	}
	return s, nil
}

func createTemp(dir string) (tempFile, error) { return os.CreateTemp(dir, tmpPrefix+"*") }

// String names the directory, e.g. "local:/snapshots".
func (s *Store) String() string { return "local:" + s.dir }

// Put streams r into name (see the package comment for how it stays atomic). ctx is checked
// between reads.
func (s *Store) Put(ctx context.Context, name string, r io.Reader) (storage.Object, error) {
	if err := checkName(name); err != nil {
		return storage.Object{}, fmt.Errorf("local storage %s: put: %w", s.dir, err)
	}
	path := s.path(name)
	dir := filepath.Dir(path)
	if err := s.mkdirAll(dir); err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	f, err := s.openTemp(dir)
	if err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.CopyBuffer(writerOnly{f}, storage.ContextReader(ctx, r), make([]byte, copyBufferSize))
	if err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	if err := f.Sync(); err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	if err := f.Close(); err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	if err := ctx.Err(); err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return storage.Object{}, s.fail("writing", name, err)
	}
	return storage.Object{Name: name, Size: n, ModTime: st.ModTime()}, nil
}

// Get opens name. The context only bounds the open.
func (s *Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("local storage %s: get: %w", s.dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail("reading", name, err)
	}
	f, err := os.Open(s.path(name))
	if err != nil {
		return nil, s.missing("reading", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, s.fail("reading", name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, s.fail("reading", name, fmt.Errorf("not a regular file: %w", storage.ErrNotFound))
	}
	return f, nil
}

// Stat describes name.
func (s *Store) Stat(ctx context.Context, name string) (storage.Object, error) {
	if err := checkName(name); err != nil {
		return storage.Object{}, fmt.Errorf("local storage %s: stat: %w", s.dir, err)
	}
	st, err := os.Stat(s.path(name))
	if err != nil {
		return storage.Object{}, s.missing("stat", name, err)
	}
	if !st.Mode().IsRegular() {
		return storage.Object{}, s.fail("stat", name, fmt.Errorf("not a regular file: %w", storage.ErrNotFound))
	}
	return storage.Object{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List returns the regular files whose name starts with prefix, sorted by name. Temporary files
// and anything that is not a regular file are skipped.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("local storage %s: list: %w", s.dir, err)
	}
	// Walk only the deepest directory the prefix names in full.
	root := s.dir
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		root = s.path(prefix[:i])
	}
	var out []storage.Object
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || (p == root && errors.Is(err, syscall.ENOTDIR)) {
				return nil // the prefix names nothing, or something vanished while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, storage.Object{Name: name, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, s.fail("listing", prefix, err)
	}
	// WalkDir visits in lexical order per directory, which is not the order of full names
	// ("a/b" < "a-c" but the walk yields "a-c" after descending into "a").
	slices.SortFunc(out, func(a, b storage.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete removes name and fsyncs its directory. Directories are never removed.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("local storage %s: delete: %w", s.dir, err)
	}
	path := s.path(name)
	st, err := os.Lstat(path)
	if err != nil {
		return s.missing("deleting", name, err)
	}
	if st.IsDir() {
		return s.fail("deleting", name, fmt.Errorf("is a directory: %w", storage.ErrNotFound))
	}
	if err := os.Remove(path); err != nil {
		return s.missing("deleting", name, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return s.fail("deleting", name, err)
	}
	return nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, filepath.FromSlash(name)) }

// mkdirAll creates dir and its missing parents below s.dir, fsyncing the parent of each
// directory it creates so that the new entries survive a crash.
func (s *Store) mkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if dir != s.dir {
		if err := s.mkdirAll(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// fail wraps err with the store's directory, the operation and the object, naming the usual
// operator-fixable causes (a full disk, wrong ownership, a read-only mount) in plain words.
func (s *Store) fail(op, name string, err error) error {
	what := op
	if name != "" {
		what += " " + name
	}
	switch {
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("local storage %s: disk full %s: %w", s.dir, what, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("local storage %s: permission denied %s (check the owner and mode of %s): %w", s.dir, what, s.dir, err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("local storage %s: read-only file system %s: %w", s.dir, what, err)
	default:
		return fmt.Errorf("local storage %s: %s: %w", s.dir, what, err)
	}
}

// missing wraps an error from opening an existing object for reading or removal: a missing
// file or a missing (or non-directory) parent means the object does not exist.
func (s *Store) missing(op, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		err = fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	return s.fail(op, name, err)
}

// checkName is storage.CheckName plus this backend's reserved temporary names.
func checkName(name string) error {
	if err := storage.CheckName(name); err != nil {
		return err
	}
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, tmpPrefix) {
			return fmt.Errorf("object name %q uses the reserved prefix %q", name, tmpPrefix)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// writerOnly hides an *os.File's ReadFrom so io.CopyBuffer uses the buffer it is given.
type writerOnly struct{ io.Writer }
