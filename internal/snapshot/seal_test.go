package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/seal"
)

func testKey(t *testing.T, text string) *seal.Key {
	t.Helper()
	k, err := seal.ParseKey(text, "snapshot.encrypt.keyFile /run/secrets/snapshot-key")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	sealKeyA = strings.Repeat("5a", 32)
	sealKeyB = strings.Repeat("a5", 32)
)

func sealedBackupToMem(t *testing.T, compress string, key *seal.Key) (*memStore, Record) {
	t.Helper()
	store := newMemStore()
	o := testOptions(t, &fakeTools{size: 2 << 20}, store)
	o.Compress, o.Key = compress, key
	rec, err := Backup(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return store, rec
}

// A sealed snapshot records its algorithm and key id (never the key), its object holds no
// plaintext, its sha256 is the ciphertext's, and it restores with its key.
func TestSealedSnapshot_RoundTrip(t *testing.T) {
	k := testKey(t, sealKeyA)
	for _, compress := range []string{CompressZstd, CompressLZ4, CompressNone} {
		t.Run(compress, func(t *testing.T) {
			store, rec := sealedBackupToMem(t, compress, k)
			if rec.Encrypt != seal.Algorithm || rec.KeyID != k.ID() || !strings.HasSuffix(rec.Path, ".sealed") {
				t.Fatalf("record: encrypt %q key %q path %q", rec.Encrypt, rec.KeyID, rec.Path)
			}
			if err := rec.Validate(); err != nil {
				t.Fatal(err)
			}
			if id, ok := snapshotObjectID("", rec.Path); !ok || id != rec.ID {
				t.Errorf("snapshotObjectID(%s) = %s, %v: pruning would not know it", rec.Path, id, ok)
			}
			obj := store.objs[rec.Path]
			if !bytes.HasPrefix(obj, []byte("MPSEAL1\n")) || bytes.Contains(obj, []byte("xtrabackup_binlog_info")) {
				t.Error("the stored object is not sealed: its plaintext shows")
			}
			if err := readBack(context.Background(), store, rec.Path, rec.Size, rec.SHA256); err != nil {
				t.Errorf("the record's size and sha256 are not the stored ciphertext's: %v", err)
			}
			o := restoreOpts(t, store, rec, filepath.Join(t.TempDir(), "data"))
			o.Key = k
			res, err := Restore(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.GTID != "0-1-99" {
				t.Errorf("restored GTID %q", res.GTID)
			}
		})
	}
}

// A sealed snapshot without its key is refused before anything is downloaded or run, naming
// what to configure; a key other than the record's likewise.
func TestSealedSnapshot_WrongOrMissingKeyFailsFirst(t *testing.T) {
	store, rec := sealedBackupToMem(t, CompressZstd, testKey(t, sealKeyA))
	for name, c := range map[string]struct {
		key  *seal.Key
		want []string
	}{
		"missing key": {nil, []string{"encrypted with key id " + rec.KeyID, "snapshot.encrypt.keyFile"}},
		"wrong key":   {testKey(t, sealKeyB), []string{"key id " + rec.KeyID, "/run/secrets/snapshot-key", testKey(t, sealKeyB).ID()}},
	} {
		t.Run(name, func(t *testing.T) {
			datadir := filepath.Join(t.TempDir(), "data")
			o := restoreOpts(t, store, rec, datadir)
			o.Key = c.key
			gets := store.gets.Load()
			_, err := Restore(context.Background(), o)
			if err == nil {
				t.Fatal("restored")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if store.gets.Load() != gets || len(o.Runner.(*fakeTools).ran) != 0 {
				t.Error("the object was downloaded or a tool ran before the key was checked")
			}
			if _, err := os.Stat(datadir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("datadir touched: %v", err)
			}
		})
	}
	// A record that lies about the key (a manifest edited in the store) fails on the stream's
	// own header, before the unpack tool gets a byte of plaintext.
	lying := rec
	lying.KeyID = testKey(t, sealKeyB).ID()
	o := restoreOpts(t, store, lying, filepath.Join(t.TempDir(), "data"))
	o.Key = testKey(t, sealKeyB)
	if _, err := Restore(context.Background(), o); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("record naming another key: %v, want ErrWrongKey", err)
	}
}

// A tampered chunk fails authentication: the snapshot is refused as corrupt and never prepared.
func TestSealedSnapshot_TamperedChunkRefused(t *testing.T) {
	k := testKey(t, sealKeyA)
	for _, at := range []int{60, 200 << 10, -1} {
		store, rec := sealedBackupToMem(t, CompressNone, k)
		if at < 0 {
			at = int(rec.Size) - 1
		}
		store.corrupt(t, rec.Path, at)
		datadir := filepath.Join(t.TempDir(), "data")
		o := restoreOpts(t, store, rec, datadir)
		o.Key = k
		_, err := Restore(context.Background(), o)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "does not open") {
			t.Fatalf("byte %d flipped: %v, want ErrCorrupt naming the chunk that does not open", at, err)
		}
		for _, r := range o.Runner.(*fakeTools).ran {
			if strings.Contains(r, "prepare") {
				t.Error("a tampered snapshot was prepared")
			}
		}
		if _, err := os.Stat(datadir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("datadir touched: %v", err)
		}
	}
}

// Archived binlogs are sealed the same way, bound to their server, time and file; one
// downloaded without the key fails naming what to configure, one put in another's place fails
// to open, and an unsealed one is refused while a key is set (unless allowed).
func TestSealedBinlog_RoundTrip(t *testing.T) {
	file := []byte(binlogMagic)
	file = append(file, binlogEvent(1000, 15, 256)...)
	file = append(file, binlogEvent(1001, 2, 5000)...)
	file = append(file, binlogEvent(1005, binlogRotateEvent, 47)...)
	path := filepath.Join(t.TempDir(), "mysql-bin.000007")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	k := testKey(t, sealKeyA)
	ctx := context.Background()
	created := time.Unix(1000, 0)
	for _, compress := range []string{CompressZstd, CompressLZ4, CompressNone} {
		store := newMemStore()
		name := sealedName(BinlogObjectName("", 3, created, "mysql-bin.000007", compress), k)
		if _, err := uploadBinlog(ctx, store, name, path, compress, k, binlogContext(3, created, "mysql-bin.000007")); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(store.objs[name], file[:200]) || !bytes.HasPrefix(store.objs[name], []byte("MPSEAL1\n")) {
			t.Errorf("%s: the archived binlog is not sealed", compress)
		}
		b, ok := parseBinlogObject("", name)
		if !ok || !b.Sealed || b.Compress != compress || b.File != "mysql-bin.000007" {
			t.Fatalf("parseBinlogObject(%s) = %+v, %v", name, b, ok)
		}
		out := filepath.Join(t.TempDir(), compress)
		if _, err := downloadBinlog(ctx, store, k, false, b, out); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, file) {
			t.Errorf("%s: downloaded binlog differs", compress)
		}
		_, err := downloadBinlog(ctx, store, nil, false, b, out+"-nokey")
		if err == nil || !strings.Contains(err.Error(), "is encrypted: set snapshot.encrypt.keyFile") {
			t.Errorf("%s: download without the key: %v", compress, err)
		}
		// Copied in place of the next file: it opens under that file's name no longer.
		moved := sealedName(BinlogObjectName("", 3, created.Add(time.Minute), "mysql-bin.000008", compress), k)
		store.objs[moved] = store.objs[name]
		mb, _ := parseBinlogObject("", moved)
		if _, err := downloadBinlog(ctx, store, k, false, mb, out+"-moved"); !errors.Is(err, seal.ErrAuth) {
			t.Errorf("%s: a sealed binlog renamed to another file: %v, want ErrAuth", compress, err)
		}
		// An unsealed binlog planted beside the sealed archive.
		plain := BinlogObjectName("", 3, created, "mysql-bin.000009", compress)
		if _, err := uploadBinlog(ctx, store, plain, path, compress, nil, ""); err != nil {
			t.Fatal(err)
		}
		pb, _ := parseBinlogObject("", plain)
		if _, err := downloadBinlog(ctx, store, k, false, pb, out+"-plain"); err == nil || !strings.Contains(err.Error(), "is not sealed, and snapshot.encrypt is set") {
			t.Errorf("%s: an unsealed binlog with a key set: %v, want a refusal", compress, err)
		}
		if _, err := downloadBinlog(ctx, store, k, true, pb, out+"-allowed"); err != nil {
			t.Errorf("%s: an unsealed binlog with allowUnsealed: %v", compress, err)
		}
	}
}

// With a key set, an unsealed snapshot is refused before anything is downloaded (a manifest
// edited to drop "encrypt" and point at a planted stream), unless allowUnsealed.
func TestUnsealedSnapshotRefusedWithAKey(t *testing.T) {
	store, rec := backupToMem(t, CompressZstd)
	o := restoreOpts(t, store, rec, filepath.Join(t.TempDir(), "data"))
	o.Key = testKey(t, sealKeyA)
	_, err := Restore(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "snapshot "+rec.ID+" is not sealed, and snapshot.encrypt is set") || store.gets.Load() != 0 {
		t.Fatalf("restore of an unsealed snapshot with a key: %v (%d gets)", err, store.gets.Load())
	}
	o.AllowUnsealed = true
	if _, err := Restore(context.Background(), o); err != nil {
		t.Errorf("with allowUnsealed: %v", err)
	}
}

// A binlog archived twice, before and after snapshot.encrypt was turned on, is replayed once,
// from the copy this node should trust: the sealed one when it has a key.
func TestPlanBinlogs_SameFileArchivedTwice(t *testing.T) {
	store := newMemStore()
	k := testKey(t, sealKeyA)
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	put := func(name string) {
		if _, err := store.Put(context.Background(), name, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	put(BinlogObjectName("", 3, t0, "mysql-bin.000001", CompressZstd))
	put(BinlogObjectName("", 3, t0.Add(time.Minute), "mysql-bin.000002", CompressZstd))
	put(sealedName(BinlogObjectName("", 3, t0.Add(time.Minute), "mysql-bin.000002", CompressZstd), k))
	put(sealedName(BinlogObjectName("", 3, t0.Add(2*time.Minute), "mysql-bin.000003", CompressZstd), k))
	for _, key := range []*seal.Key{k, nil} {
		plan, err := planBinlogs(context.Background(), PITROptions{Store: store, Key: key}, Record{ServerID: 3, BinlogFile: "mysql-bin.000001", BinlogCreated: t0})
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, b := range plan {
			files = append(files, fmt.Sprintf("%s sealed=%v", b.File, b.Sealed))
		}
		want := fmt.Sprintf("mysql-bin.000001 sealed=false,mysql-bin.000002 sealed=%v,mysql-bin.000003 sealed=true", key != nil)
		if strings.Join(files, ",") != want {
			t.Errorf("key %v: plan %v, want %s", key != nil, files, want)
		}
	}
}

// BenchmarkPipeline measures the backup pipeline's stages after the tool (compress, seal,
// sha256) on 64 MiB of InnoDB-like pages (rows of hex text, page headers, free space), so
// `make bench` can set the cost of sealing beside compression: MB/s are of the raw stream.
func BenchmarkPipeline(b *testing.B) {
	data := innodbLike(64 << 20)
	key, _ := seal.ParseKey(strings.Repeat("5a", 32), "bench")
	for _, c := range []struct {
		name     string
		compress string
		key      *seal.Key
	}{
		{"zstd", CompressZstd, nil}, {"zstd+sealed", CompressZstd, key},
		{"lz4", CompressLZ4, nil}, {"lz4+sealed", CompressLZ4, key},
		{"none", CompressNone, nil}, {"none+sealed", CompressNone, key},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			cpu0 := cpuTime()
			for b.Loop() {
				hc := newHashCounter(io.Discard)
				enc, err := newEncoder(hc, c.compress, c.key, "bench")
				if err != nil {
					b.Fatal(err)
				}
				// 32 KiB writes, as the supervisor's copy of the tool's stdout makes them.
				for p := data; len(p) > 0; p = p[min(len(p), 32<<10):] {
					enc.Write(p[:min(len(p), 32<<10)])
				}
				enc.Close()
				hc.sum()
			}
			// CPU seconds per GiB of raw stream, all goroutines: what the stages take from the
			// cores mysqld shares, and steadier than MB/s on a loaded machine.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/(float64(b.N)*float64(len(data))/(1<<30)), "cpu-s/GiB")
		})
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// innodbLike returns n bytes shaped like InnoDB pages of the bench's rows: 16 KiB pages,
// three quarters rows of random hex text, the rest zeros.
func innodbLike(n int) []byte {
	out := make([]byte, n)
	rnd := make([]byte, 16)
	for page := 0; page < n; page += 16 << 10 {
		end := min(page+12<<10, n)
		for i := page; i < end; i += 32 {
			rand.Read(rnd)
			hex.Encode(out[i:min(i+32, end)], rnd[:min(16, (end-i)/2)])
		}
	}
	return out
}
