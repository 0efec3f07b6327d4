package snapshot

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mysqlpilot/mysqlpilot/internal/seal"
)

// Every compression round-trips through the encoder and decoder, sealed and not, on data that
// spans several compressor blocks (zstd's window, lz4's 1 MiB blocks), and shrinks pages of
// text and free space.
func TestEncoderDecoder_RoundTrip(t *testing.T) {
	data := innodbLike(5<<20 + 12345)
	k := testKey(t, sealKeyA)
	for _, compress := range []string{CompressZstd, CompressLZ4, CompressNone} {
		for _, key := range []*seal.Key{nil, k} {
			name := compress
			if key != nil {
				name += "+sealed"
			}
			t.Run(name, func(t *testing.T) {
				var stored bytes.Buffer
				enc, err := newEncoder(&stored, compress, key, "test")
				if err != nil {
					t.Fatal(err)
				}
				for p := data; len(p) > 0; p = p[min(len(p), 100_000):] {
					if _, err := enc.Write(p[:min(len(p), 100_000)]); err != nil {
						t.Fatal(err)
					}
				}
				if err := enc.Close(); err != nil {
					t.Fatal(err)
				}
				// The pages are a quarter zeros; lz4, without entropy coding, gains nothing on
				// the random hex text, zstd about half of it.
				if compress != CompressNone && stored.Len() > len(data)*9/10 {
					t.Errorf("%d bytes stored for %d: not compressed", stored.Len(), len(data))
				}
				r, release, err := newDecoder(bytes.NewReader(stored.Bytes()), "test object", compress, key != nil, key, "test", false)
				if err != nil {
					t.Fatal(err)
				}
				defer release()
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("round trip: %d bytes back, want %d, equal=false", len(got), len(data))
				}
			})
		}
	}
}

// A compressed object damaged so that it decodes to other bytes fails its decompressor
// (beside the sha256 a restore checks first): lz4's content checksum, zstd's CRC. Some flips
// change nothing (a match offset moved within a run of zeros copies the same zeros): those
// decode to the original and pass, as they should.
func TestDecoder_DamagedObjectFails(t *testing.T) {
	data := innodbLike(2 << 20)
	for _, compress := range []string{CompressZstd, CompressLZ4} {
		var stored bytes.Buffer
		enc, _ := newEncoder(&stored, compress, nil, "")
		enc.Write(data)
		enc.Close()
		caught := 0
		for at := 100; at < stored.Len(); at += stored.Len() / 50 {
			b := bytes.Clone(stored.Bytes())
			b[at] ^= 0x40
			r, release, err := newDecoder(bytes.NewReader(b), "test object", compress, false, nil, "", false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			release()
			switch {
			case err != nil:
				caught++
			case !bytes.Equal(got, data):
				t.Errorf("%s, byte %d flipped: decoded to other bytes without an error", compress, at)
			}
		}
		if caught == 0 {
			t.Errorf("%s: no flipped byte was caught", compress)
		}
	}
}

// An unknown compression is refused by name, on both sides.
func TestEncoderDecoder_UnknownCompression(t *testing.T) {
	if _, err := newEncoder(io.Discard, "brotli", nil, ""); err == nil || !strings.Contains(err.Error(), `"brotli"`) {
		t.Errorf("newEncoder(brotli) = %v", err)
	}
	if _, _, err := newDecoder(strings.NewReader(""), "snapshot x", "brotli", false, nil, "", false); err == nil || !strings.Contains(err.Error(), "want zstd, lz4 or none") {
		t.Errorf("newDecoder(brotli) = %v", err)
	}
}

// A cluster whose snapshot.compress changed over time holds binlogs of every kind; each is
// read by what its own name says.
func TestArchivedBinlogs_MixedCompression(t *testing.T) {
	var file []byte
	file = append(file, []byte(binlogMagic)...)
	file = append(file, binlogEvent(1000, 15, 256)...)
	file = append(file, binlogEvent(1005, binlogRotateEvent, 47)...)
	path := filepath.Join(t.TempDir(), "mysql-bin.000001")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := newMemStore()
	created := time.Unix(1000, 0)
	for i, compress := range []string{CompressZstd, CompressLZ4, CompressNone} {
		name := BinlogObjectName("", 3, created.Add(time.Duration(i)*time.Minute), "mysql-bin.000001", compress)
		if _, err := uploadBinlog(ctx, store, name, path, compress, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	for name := range store.objs {
		b, ok := parseBinlogObject("", name)
		if !ok {
			t.Fatalf("parseBinlogObject(%s) failed", name)
		}
		out := filepath.Join(t.TempDir(), "out")
		if _, err := downloadBinlog(ctx, store, nil, false, b, out); err != nil {
			t.Fatalf("%s (%s): %v", name, b.Compress, err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, file) {
			t.Errorf("%s: downloaded binlog differs", name)
		}
	}
}

// The parallel zstd writer writes its frames in order, hands the first write error back from
// Write or Close and never hangs on it; an empty stream is a valid one.
func TestParallelZstd_ErrorsAndEmpty(t *testing.T) {
	data := innodbLike(9 << 20)
	for _, failAt := range []int{0, 1, 3} {
		w := &failingWriter{after: failAt}
		z, err := newParallelZstd(w)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := z.Write(data)
		cerr := z.Close()
		if werr == nil && cerr == nil {
			t.Errorf("writer failing after %d frames: no error", failAt)
		}
	}
	var empty bytes.Buffer
	z, _ := newParallelZstd(&empty)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	r, release, err := newDecoder(bytes.NewReader(empty.Bytes()), "empty", CompressZstd, false, nil, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got, err := io.ReadAll(r); err != nil || len(got) != 0 {
		t.Errorf("empty stream: %d bytes, %v", len(got), err)
	}
}

type failingWriter struct{ after, n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n == f.after {
		return 0, io.ErrClosedPipe
	}
	f.n++
	return len(p), nil
}

// BenchmarkZstdStreamVsFrames compares klauspost's stream encoder (what snapshots used before
// the parallel frames) with newParallelZstd, same level, window and goroutines, in 32 KiB
// writes as the supervisor makes them. Run it with -count to interleave the two on a shared
// machine (bench/results/throughput-2026-12-05.md).
func BenchmarkZstdStreamVsFrames(b *testing.B) {
	data := innodbLike(64 << 20)
	for _, c := range []struct {
		name string
		mk   func(io.Writer) (io.WriteCloser, error)
	}{
		{"stream", func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderConcurrency(zstdConcurrency),
				zstd.WithWindowSize(zstdWindow), zstd.WithEncoderCRC(true))
		}},
		{"frames", func(w io.Writer) (io.WriteCloser, error) { return newParallelZstd(w) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			cpu0 := cpuTime()
			for b.Loop() {
				z, err := c.mk(io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				for p := data; len(p) > 0; p = p[min(len(p), 32<<10):] {
					z.Write(p[:min(len(p), 32<<10)])
				}
				z.Close()
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/(float64(b.N)*float64(len(data))/(1<<30)), "cpu-s/GiB")
		})
	}
}
