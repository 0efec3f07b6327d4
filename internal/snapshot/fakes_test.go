package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/supervisor"
)

// ---------------------------------------------------------------------------------------------
// xbstream writer

// xbChunk appends one chunk to b.
func xbChunk(b []byte, typ byte, path string, offset uint64, payload []byte) []byte {
	b = append(b, xbMagic...)
	b = append(b, 0, typ)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(path)))
	b = append(b, path...)
	if typ == xbTypeEOF {
		return b
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	b = binary.LittleEndian.AppendUint64(b, offset)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(payload))
	return append(b, payload...)
}

// xbFile appends a whole file: payload chunks of at most chunk bytes, then its end chunk.
func xbFile(b []byte, path string, data []byte, chunk int) []byte {
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		b = xbChunk(b, xbTypePayload, path, uint64(off), data[off:end])
	}
	return xbChunk(b, xbTypeEOF, path, 0, nil)
}

const testBinlogInfo = "mysql-bin.000042\t1234\t0-1-99\n"

// writeFakeBackup writes an xbstream of about size bytes to w: a data file of mixed
// compressible and random content, then the binlog and backup info files.
func writeFakeBackup(w io.Writer, size int64, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	page := make([]byte, 64<<10)
	var off uint64
	for written := int64(0); written < size; written += int64(len(page)) {
		clear(page)
		// Half of each page random, half zeros: compresses about 2:1, like InnoDB pages.
		for i := 0; i < len(page)/2; i += 8 {
			binary.LittleEndian.PutUint64(page[i:], rng.Uint64())
		}
		if _, err := w.Write(xbChunk(nil, xbTypePayload, "ibdata1", off, page)); err != nil {
			return err
		}
		off += uint64(len(page))
	}
	tail := xbChunk(nil, xbTypeEOF, "ibdata1", 0, nil)
	tail = xbFile(tail, "xtrabackup_binlog_info", []byte(testBinlogInfo), 1<<20)
	tail = xbFile(tail, "xtrabackup_info", []byte("tool_name = mariabackup\nserver_version = 10.11.19-MariaDB-log\n"), 1<<20)
	_, err := w.Write(tail)
	return err
}

// ---------------------------------------------------------------------------------------------
// Runner fake

// fakeTools plays mariabackup and mbstream: "--backup" writes a fake stream of size bytes (or
// what backup says), "mbstream -x" unpacks into the target directory, "--prepare" does
// nothing.
type fakeTools struct {
	size   int64
	backup func(ctx context.Context, w io.Writer) error // replaces the default backup
	mu     sync.Mutex
	ran    []string
	argv   []string // each command's arguments, space-separated
}

func (f *fakeTools) Run(ctx context.Context, c supervisor.Cmd) error {
	f.mu.Lock()
	f.ran = append(f.ran, c.Name)
	f.argv = append(f.argv, strings.Join(c.Args, " "))
	f.mu.Unlock()
	switch {
	case slices.Contains(c.Args, "--backup"):
		for _, a := range c.Args {
			if p, ok := strings.CutPrefix(a, "--defaults-extra-file="); ok {
				b, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("option file: %w", err)
				}
				if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
					return fmt.Errorf("option file mode %v", st.Mode().Perm())
				}
				if !bytes.Contains(b, []byte("password")) {
					return errors.New("no password in the option file")
				}
			}
		}
		if f.backup != nil {
			return f.backup(ctx, c.Stdout)
		}
		return writeFakeBackup(ctxWriter{ctx, c.Stdout}, f.size, 1)
	case c.Name == "mbstream":
		dir := c.Args[len(c.Args)-1]
		return fakeUnpack(c.Stdin, dir)
	case slices.Contains(c.Args, "--prepare"):
		return nil
	}
	return fmt.Errorf("fakeTools: unexpected command %s %v", c.Name, c.Args)
}

// ctxWriter fails once ctx is done, as a killed tool would stop writing.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// fakeUnpack reads an xbstream from r and writes the info files into dir (the data file's
// bytes are only checked, not stored).
func fakeUnpack(r io.Reader, dir string) error {
	x := newXBReader("xtrabackup_binlog_info", "xtrabackup_info")
	if _, err := io.Copy(x, r); err != nil {
		return err
	}
	if err := x.Close(); err != nil {
		return err
	}
	for _, n := range []string{"xtrabackup_binlog_info", "xtrabackup_info"} {
		b, _ := x.file(n)
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o640); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(dir, "mysql"), 0o750)
}

// ---------------------------------------------------------------------------------------------
// Store fake

// memStore is an in-memory storage.Store with atomic Puts and injectable faults. With
// discard set it keeps only sizes (for large streams).
type memStore struct {
	mu      sync.Mutex
	objs    map[string][]byte
	sizes   map[string]int64
	mod     map[string]time.Time
	discard bool
	failPut func(name string, written int64) error // called as data arrives
	lieSize int64                                  // added to Stat's size
	gets    atomic.Int64                           // Get calls
}

func newMemStore() *memStore {
	return &memStore{objs: map[string][]byte{}, sizes: map[string]int64{}, mod: map[string]time.Time{}}
}

func (m *memStore) Put(ctx context.Context, name string, r io.Reader) (storage.Object, error) {
	if err := storage.CheckName(name); err != nil {
		return storage.Object{}, err
	}
	var buf bytes.Buffer
	var n int64
	p := make([]byte, 256<<10)
	for {
		k, err := r.Read(p)
		if k > 0 {
			n += int64(k)
			if !m.discard {
				buf.Write(p[:k])
			}
			if m.failPut != nil {
				if ferr := m.failPut(name, n); ferr != nil {
					return storage.Object{}, ferr
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return storage.Object{}, fmt.Errorf("memstore: put %s: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return storage.Object{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[name] = buf.Bytes()
	m.sizes[name] = n
	m.mod[name] = time.Now()
	return storage.Object{Name: name, Size: n, ModTime: m.mod[name]}, nil
}

func (m *memStore) Get(_ context.Context, name string) (io.ReadCloser, error) {
	m.gets.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[name]
	if !ok {
		return nil, fmt.Errorf("memstore: %s: %w", name, storage.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(bytes.Clone(b))), nil
}

func (m *memStore) Stat(_ context.Context, name string) (storage.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.sizes[name]
	if !ok {
		return storage.Object{}, fmt.Errorf("memstore: %s: %w", name, storage.ErrNotFound)
	}
	return storage.Object{Name: name, Size: n + m.lieSize, ModTime: m.mod[name]}, nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]storage.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.Object
	for n, s := range m.sizes {
		if strings.HasPrefix(n, prefix) {
			out = append(out, storage.Object{Name: n, Size: s, ModTime: m.mod[n]})
		}
	}
	slices.SortFunc(out, func(a, b storage.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *memStore) Delete(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sizes[name]; !ok {
		return fmt.Errorf("memstore: %s: %w", name, storage.ErrNotFound)
	}
	delete(m.objs, name)
	delete(m.sizes, name)
	delete(m.mod, name)
	return nil
}

func (m *memStore) setModTime(name string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mod[name] = t
}

func (m *memStore) String() string { return "mem:" }

func (m *memStore) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n := range m.sizes {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (m *memStore) corrupt(t *testing.T, name string, at int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.objs[name]
	if len(b) == 0 {
		t.Fatalf("memstore: no object %s", name)
	}
	b[at%len(b)] ^= 0x01
}
