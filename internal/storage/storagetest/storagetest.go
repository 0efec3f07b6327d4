// Package storagetest is the conformance suite every storage.Store backend must pass. A backend's
// test calls Run with a function that makes a fresh, empty store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return newTestStore(t) })
//	}
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

const mib = 1 << 20

// errReaderFailed is what FailingReader returns once its budget is spent.
var errReaderFailed = errors.New("storagetest: source failed midway")

// Run runs every conformance check against stores made by newStore. newStore is called once per
// subtest with that subtest's t and must return an empty store (a fresh directory, bucket prefix
// or Manta directory); it registers its own cleanup.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		st := newStore(t)
		for _, size := range []int{0, 1, 17 * mib} {
			t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
				data := RandomBytes(uint64(size), uint64(size))
				name := fmt.Sprintf("roundtrip/%d.bin", size)
				obj := mustPut(t, st, name, data)
				if obj.Name != name || obj.Size != int64(size) {
					t.Errorf("Put returned %+v, want name %q size %d", obj, name, size)
				}
				checkContent(t, st, name, data)
				got, err := st.Stat(context.Background(), name)
				if err != nil {
					t.Fatalf("Stat(%q): %v", name, err)
				}
				if got.Name != name || got.Size != int64(size) {
					t.Errorf("Stat(%q) = %+v, want size %d", name, got, size)
				}
				if got.ModTime.IsZero() {
					t.Errorf("Stat(%q) has a zero ModTime", name)
				}
			})
		}
	})

	t.Run("Subdirectories", func(t *testing.T) {
		st := newStore(t)
		names := []string{"a/b/c/deep.bin", "a/b/sibling.bin", "a/top.bin", "flat.bin"}
		for i, n := range names {
			mustPut(t, st, n, []byte(strings.Repeat(n, i+1)))
		}
		for i, n := range names {
			checkContent(t, st, n, []byte(strings.Repeat(n, i+1)))
		}
	})

	t.Run("ListPrefixSorted", func(t *testing.T) {
		st := newStore(t)
		all := []string{
			"snap/2024-01/b", "other/1", "snap/20240", "snap/2024-02/a", "snap/2023/z",
			"snap/2024-01/a", "snapx", "snap/2024-01/sub/c",
		}
		for i, n := range all {
			mustPut(t, st, n, bytes.Repeat([]byte{'x'}, i))
		}
		sizeOf := func(n string) int64 { return int64(slices.Index(all, n)) }
		sorted := slices.Sorted(slices.Values(all))
		cases := []struct {
			prefix string
			want   []string
		}{
			{"", sorted},
			{"snap", []string{"snap/2023/z", "snap/2024-01/a", "snap/2024-01/b", "snap/2024-01/sub/c",
				"snap/2024-02/a", "snap/20240", "snapx"}},
			{"snap/", []string{"snap/2023/z", "snap/2024-01/a", "snap/2024-01/b", "snap/2024-01/sub/c",
				"snap/2024-02/a", "snap/20240"}},
			{"snap/2024", []string{"snap/2024-01/a", "snap/2024-01/b", "snap/2024-01/sub/c",
				"snap/2024-02/a", "snap/20240"}},
			{"snap/2024-01/", []string{"snap/2024-01/a", "snap/2024-01/b", "snap/2024-01/sub/c"}},
			{"snap/2024-01/a", []string{"snap/2024-01/a"}},
			{"missing/", nil},
			{"snapx/", nil},
			{"snap/2024-01/a/", nil},
		}
		for _, c := range cases {
			got, err := st.List(context.Background(), c.prefix)
			if err != nil {
				t.Errorf("List(%q): %v", c.prefix, err)
				continue
			}
			var names []string
			for _, o := range got {
				names = append(names, o.Name)
				if o.Size != sizeOf(o.Name) {
					t.Errorf("List(%q): %s has size %d, want %d", c.prefix, o.Name, o.Size, sizeOf(o.Name))
				}
			}
			if !slices.Equal(names, c.want) {
				t.Errorf("List(%q) = %q, want %q", c.prefix, names, c.want)
			}
		}
	})

	t.Run("MissingIsNotFound", func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		mustPut(t, st, "dir/present", []byte("x"))
		for _, name := range []string{"absent", "dir/absent", "nodir/absent"} {
			if _, err := st.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Stat(%q) error = %v, want ErrNotFound", name, err)
			}
			if rc, err := st.Get(ctx, name); !errors.Is(err, storage.ErrNotFound) {
				if rc != nil {
					rc.Close()
				}
				t.Errorf("Get(%q) error = %v, want ErrNotFound", name, err)
			}
			if err := st.Delete(ctx, name); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Delete(%q) error = %v, want ErrNotFound", name, err)
			}
		}
	})

	t.Run("DeleteThenGet", func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		mustPut(t, st, "del/victim", []byte("doomed"))
		mustPut(t, st, "del/keeper", []byte("stays"))
		if err := st.Delete(ctx, "del/victim"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if rc, err := st.Get(ctx, "del/victim"); !errors.Is(err, storage.ErrNotFound) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Get after Delete: error = %v, want ErrNotFound", err)
		}
		if _, err := st.Stat(ctx, "del/victim"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after Delete: error = %v, want ErrNotFound", err)
		}
		if err := st.Delete(ctx, "del/victim"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second Delete: error = %v, want ErrNotFound", err)
		}
		checkList(t, st, "", "del/keeper")
		checkContent(t, st, "del/keeper", []byte("stays"))
	})

	t.Run("FailedPutLeavesNothing", func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		// 6 MiB and a bit: past the minimum S3 part, so a multipart upload has sent a part.
		const failAt = 6*mib + 12345
		_, err := st.Put(ctx, "fail/new", FailingReader(RandomBytes(1, 8*mib), failAt))
		if err == nil {
			t.Fatal("Put with a failing reader succeeded")
		}
		if !errors.Is(err, errReaderFailed) {
			t.Errorf("Put error = %v, want it to wrap the reader's error", err)
		}
		if _, err := st.Stat(ctx, "fail/new"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after failed Put: error = %v, want ErrNotFound", err)
		}
		checkList(t, st, "")

		// A failed overwrite keeps the old object whole.
		old := RandomBytes(2, 100_000)
		mustPut(t, st, "fail/old", old)
		if _, err := st.Put(ctx, "fail/old", FailingReader(RandomBytes(3, 8*mib), failAt)); err == nil {
			t.Fatal("overwriting Put with a failing reader succeeded")
		}
		checkContent(t, st, "fail/old", old)
		checkList(t, st, "", "fail/old")
	})

	t.Run("OverwriteReplaces", func(t *testing.T) {
		st := newStore(t)
		mustPut(t, st, "ow/x", RandomBytes(4, 300_000))
		second := []byte("short second version")
		mustPut(t, st, "ow/x", second)
		checkContent(t, st, "ow/x", second)
		o, err := st.Stat(context.Background(), "ow/x")
		if err != nil || o.Size != int64(len(second)) {
			t.Errorf("Stat after overwrite = %+v, %v; want size %d", o, err, len(second))
		}
		checkList(t, st, "", "ow/x")
	})

	t.Run("CancelAbortsPut", func(t *testing.T) {
		st := newStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := st.Put(ctx, "cancel/x", &cancellingReader{cancel: cancel, after: 3 * mib})
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Put after cancel: error = %v, want context.Canceled", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Put did not return within a minute of its context being cancelled")
		}
		if _, err := st.Stat(context.Background(), "cancel/x"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after cancelled Put: error = %v, want ErrNotFound", err)
		}
		checkList(t, st, "")
	})

	t.Run("InvalidNames", func(t *testing.T) {
		st := newStore(t)
		for _, name := range []string{"", "/abs", "a//b", "../x", "a/./b", "dir/", "a/../b"} {
			if _, err := st.Put(context.Background(), name, strings.NewReader("x")); err == nil {
				t.Errorf("Put(%q) succeeded, want an error", name)
			}
		}
	})

	t.Run("String", func(t *testing.T) {
		if s := newStore(t).String(); s == "" {
			t.Error("String() is empty")
		}
	})
}

// RandomBytes returns n pseudo-random bytes, the same for the same seed.
func RandomBytes(seed, n uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// FailingReader returns a reader that yields data up to n bytes, then fails with an error
// (not io.EOF): a source that dies halfway through, like a crashed backup tool.
func FailingReader(data []byte, n int) io.Reader {
	return &failingReader{data: data[:min(n, len(data))]}
}

type failingReader struct{ data []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errReaderFailed
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// cancellingReader yields zeros without end and cancels its context after some bytes.
type cancellingReader struct {
	cancel func()
	after  int
	n      int
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	clear(p)
	c.n += len(p)
	if c.n >= c.after {
		c.cancel()
	}
	return len(p), nil
}

// onlyReader hides every method but Read, so backends cannot learn the size in advance.
type onlyReader struct{ io.Reader }

func mustPut(t *testing.T, st storage.Store, name string, data []byte) storage.Object {
	t.Helper()
	obj, err := st.Put(context.Background(), name, onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", name, len(data), err)
	}
	return obj
}

func checkContent(t *testing.T, st storage.Store, name string, want []byte) {
	t.Helper()
	rc, err := st.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("Get(%q): reading: %v", name, err)
	}
	if wantSum := sha256.Sum256(want); n != int64(len(want)) || !bytes.Equal(h.Sum(nil), wantSum[:]) {
		t.Fatalf("Get(%q): got %d bytes sha256 %x, want %d bytes sha256 %x", name, n, h.Sum(nil), len(want), wantSum)
	}
}

func checkList(t *testing.T, st storage.Store, prefix string, want ...string) {
	t.Helper()
	got, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	var names []string
	for _, o := range got {
		names = append(names, o.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("List(%q) = %q, want %q", prefix, names, want)
	}
}
