package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

func testOptions(t *testing.T, tools *fakeTools, store storage.Store) BackupOptions {
	return BackupOptions{
		Runner: tools, Flavor: mysql.MariaDB, Socket: "/nonexistent.sock", Password: "s3cret pw",
		Store: store, Backend: "mem", Node: "n1", TempDir: t.TempDir(),
		Log: slog.New(slog.DiscardHandler),
		queryFacts: func(context.Context) (serverFacts, error) {
			return serverFacts{version: "10.11.19-MariaDB", serverID: 7}, nil
		},
	}
}

// ---------------------------------------------------------------------------------------------
// Names and records

func TestNewID_SortsByTimeAndParses(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 16, 5, 31, 0, time.UTC)
	a, b := NewID(t0), NewID(t0.Add(time.Second))
	if !(a < b) {
		t.Errorf("ids %s and %s do not sort by time", a, b)
	}
	if !strings.HasPrefix(a, "20261125T160531.000Z-") || len(a) != 27 {
		t.Errorf("id %q: want 20261125T160531.000Z-xxxxxx", a)
	}
	// Later in the same second sorts later, whatever the random suffixes.
	for range 50 {
		if x, y := NewID(t0.Add(100*time.Millisecond)), NewID(t0.Add(900*time.Millisecond)); !(x < y) {
			t.Fatalf("ids %s and %s of the same second do not sort by time", x, y)
		}
	}
	if err := CheckID(a); err != nil {
		t.Error(err)
	}
	if got, err := IDTime(a); err != nil || !got.Equal(t0) {
		t.Errorf("IDTime(%s) = %v, %v", a, got, err)
	}
	if NewID(t0) == a {
		t.Error("two ids in the same second are equal")
	}
	local := time.Date(2026, 11, 25, 17, 5, 31, 0, time.FixedZone("CET", 3600))
	if got := NewID(local); !strings.HasPrefix(got, "20261125T160531.000Z") {
		t.Errorf("id of a non-UTC time is %s, want UTC", got)
	}
}

func TestCheckID_Rejects(t *testing.T) {
	for _, id := range []string{"", "latest", "20261125T160531.000Z", "20261125T160531.000Z-", "20261125T160531.000Z-xyzxyz",
		"20261125T160531.000Z-abc", "../../etc/passwd", "20261325T160531.000Z-abcdef", "20261125T160531.000Z-abcdef/x",
		"20261125T160531Z-abcdef"} {
		if err := CheckID(id); err == nil {
			t.Errorf("CheckID(%q) accepted it", id)
		}
	}
}

func TestObjectNames(t *testing.T) {
	id := "20261125T160531.042Z-abcdef"
	if got := ObjectName("", id, CompressZstd); got != "snapshots/20261125T160531.042Z-abcdef.xbstream.zst" {
		t.Errorf("ObjectName = %s", got)
	}
	if got := ObjectName("c1/", id, CompressNone); got != "c1/snapshots/20261125T160531.042Z-abcdef.xbstream" {
		t.Errorf("ObjectName = %s", got)
	}
	if got := ManifestName("c1/", id); got != "c1/snapshots/20261125T160531.042Z-abcdef.json" {
		t.Errorf("ManifestName = %s", got)
	}
	if got := ObjectName("", id, CompressLZ4); got != "snapshots/20261125T160531.042Z-abcdef.xbstream.lz4" {
		t.Errorf("ObjectName = %s", got)
	}
	for _, n := range []string{ObjectName("c1/", id, CompressZstd), ObjectName("c1/", id, CompressLZ4), ObjectName("c1/", id, CompressNone), ManifestName("c1/", id)} {
		if got, ok := snapshotObjectID("c1/", n); !ok || got != id {
			t.Errorf("snapshotObjectID(%s) = %s, %v", n, got, ok)
		}
	}
	if _, ok := snapshotObjectID("c1/", "c1/snapshots/notes.txt"); ok {
		t.Error("snapshotObjectID accepted a foreign object")
	}
	created := time.Date(2026, 11, 25, 16, 9, 2, 0, time.UTC)
	name := BinlogObjectName("c1/", 3, created, "mysql-bin.000042", CompressZstd)
	if name != "c1/binlogs/3/20261125T160902Z-mysql-bin.000042.zst" {
		t.Errorf("BinlogObjectName = %s", name)
	}
	b, ok := parseBinlogObject("c1/", name)
	if !ok || b.ServerID != 3 || !b.Created.Equal(created) || b.File != "mysql-bin.000042" || b.Compress != CompressZstd {
		t.Errorf("parseBinlogObject(%s) = %+v, %v", name, b, ok)
	}
	for c, want := range map[string]string{CompressLZ4: ".lz4", CompressNone: ""} {
		n := BinlogObjectName("c1/", 3, created, "mysql-bin.000042", c)
		if n != "c1/binlogs/3/20261125T160902Z-mysql-bin.000042"+want {
			t.Errorf("BinlogObjectName(%s) = %s", c, n)
		}
		if b, ok := parseBinlogObject("c1/", n); !ok || b.File != "mysql-bin.000042" || b.Compress != c {
			t.Errorf("parseBinlogObject(%s) = %+v, %v", n, b, ok)
		}
	}
	for _, bad := range []string{"c1/binlogs/x/20261125T160902Z-f", "c1/binlogs/3/garbage", "c1/snapshots/a", "c1/binlogs/03/20261125T160902Z-f"} {
		if _, ok := parseBinlogObject("c1/", bad); ok {
			t.Errorf("parseBinlogObject accepted %s", bad)
		}
	}
	for _, n := range []string{ObjectName("", NewID(time.Now()), CompressZstd), name} {
		if err := storage.CheckName(n); err != nil {
			t.Errorf("%s is not a valid object name: %v", n, err)
		}
	}
}

func TestCompareBinlogNames(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"mysql-bin.000009", "mysql-bin.000010", -1},
		{"mysql-bin.999999", "mysql-bin.1000000", -1},
		{"mysql-bin.000010", "mysql-bin.000010", 0},
		{"a-bin.000002", "b-bin.000001", -1},
	}
	for _, c := range cases {
		if got := compareBinlogNames(c.a, c.b); got != c.want {
			t.Errorf("compareBinlogNames(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestRecord_JSONFieldsAndNoSecrets(t *testing.T) {
	rec := Record{ID: "20261125T160531.000Z-abcdef", Backend: "s3", Store: "s3://b/p", Path: "snapshots/x.xbstream.zst",
		Size: 10, SHA256: strings.Repeat("ab", 32), RawSize: 20, Compress: CompressZstd, GTID: "0-1-5",
		BinlogFile: "mysql-bin.000001", BinlogPos: 4, Flavor: "mariadb", ServerVersion: "10.11", ServerID: 1,
		Created: time.Date(2026, 11, 25, 16, 5, 31, 0, time.UTC), Completed: time.Date(2026, 11, 25, 16, 6, 0, 0, time.UTC)}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id"`, `"backend"`, `"path"`, `"size"`, `"sha256"`, `"gtid"`, `"binlog_file"`, `"binlog_pos"`,
		`"flavor"`, `"server_version"`, `"created"`, `"compress"`, `"server_id"`, `"completed"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("record JSON lacks %s: %s", key, b)
		}
	}
	if bytes.Contains(b, []byte("binlog_created")) {
		t.Errorf("a zero binlog_created is written: %s", b)
	}
	if bytes.Contains(bytes.ToLower(b), []byte("password")) || bytes.Contains(bytes.ToLower(b), []byte("secret")) {
		t.Errorf("record JSON mentions a secret: %s", b)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back != rec {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if err := rec.Validate(); err != nil {
		t.Error(err)
	}
	bad := rec
	bad.SHA256, bad.Compress, bad.Size = "xyz", "brotli", 0
	err = bad.Validate()
	for _, want := range []string{"sha256", "compression", "size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of a bad record = %v, want it to mention %s", err, want)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Metadata

func TestParseBinlogInfo(t *testing.T) {
	cases := []struct {
		name    string
		flavor  mysql.Flavor
		in      string
		want    BinlogInfo
		wantErr string
	}{
		{"mariadb", mysql.MariaDB, "mysql-bin.000001\t790\t0-1-3\n", BinlogInfo{"mysql-bin.000001", 790, "0-1-3"}, ""},
		{"mariadb two domains", mysql.MariaDB, "mysql-bin.000002\t4\t0-1-3,1-2-9\n", BinlogInfo{"mysql-bin.000002", 4, "0-1-3,1-2-9"}, ""},
		{"mariadb no gtid yet", mysql.MariaDB, "mysql-bin.000001\t329\n", BinlogInfo{"mysql-bin.000001", 329, ""}, ""},
		{"mysql multi-line set", mysql.MySQL, "binlog.000003\t197\t3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2\n",
			BinlogInfo{"binlog.000003", 197, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-2"}, ""},
		{"empty (binlog off)", mysql.MariaDB, "", BinlogInfo{}, "is binary logging on"},
		{"bad position", mysql.MariaDB, "mysql-bin.000001\tx\t0-1-3", BinlogInfo{}, "position"},
		{"bad gtid", mysql.MariaDB, "mysql-bin.000001\t4\tnot-a-gtid", BinlogInfo{}, "GTID"},
		{"path in file name", mysql.MariaDB, "../x\t4\t0-1-1", BinlogInfo{}, "file name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseBinlogInfo(c.flavor, []byte(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// binlogEvent builds one binlog event of size bytes stamped ts.
func binlogEvent(ts uint32, typ byte, size int) []byte {
	e := make([]byte, size)
	binary.LittleEndian.PutUint32(e[0:], ts)
	e[4] = typ
	binary.LittleEndian.PutUint32(e[5:], 1)
	binary.LittleEndian.PutUint32(e[9:], uint32(size))
	return e
}

// tinyEvent is an event header claiming a size below the header's own.
func tinyEvent() []byte {
	e := binlogEvent(1, 15, binlogEventHeader)
	binary.LittleEndian.PutUint32(e[9:], 3)
	return e
}

func TestBinlogScanner(t *testing.T) {
	file := []byte(binlogMagic)
	file = append(file, binlogEvent(1000, 15, 256)...)
	for _, seq := range []uint64{41, 42} {
		g := binlogEvent(1001, mariadbGTIDEvent, 42)
		binary.LittleEndian.PutUint32(g[5:], 3)    // server 3
		binary.LittleEndian.PutUint64(g[19:], seq) // sequence number
		binary.LittleEndian.PutUint32(g[27:], 0)   // domain 0
		file = append(file, g...)
		file = append(file, binlogEvent(1001, 2, 100)...)
	}
	file = append(file, binlogEvent(1005, binlogRotateEvent, 47)...)
	// Fed one byte at a time: framing must not depend on write boundaries.
	s := &binlogScanner{}
	for i := range file {
		if _, err := s.Write(file[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	closed, err := s.closed()
	if err != nil || closed.Unix() != 1005 || s.first.Unix() != 1000 || s.events != 6 {
		t.Fatalf("closed %v, %v; first %v; %d events", closed, err, s.first, s.events)
	}
	if got := s.lastGTIDs(); got != "0-3-42" {
		t.Errorf("last GTIDs %q, want 0-3-42", got)
	}
	for name, bad := range map[string][]byte{
		"truncated":   file[:len(file)-10],
		"not binlog":  append([]byte("GIF8"), file[4:]...),
		"tiny event":  append([]byte(binlogMagic), tinyEvent()...),
		"only magic:": []byte(binlogMagic),
	} {
		s := &binlogScanner{}
		_, werr := s.Write(bad)
		if _, err := s.closed(); err == nil && werr == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A clean shutdown ends the file with a stop event, a crash after any whole event: both
	// are whole files the server has moved past (bug: archiving stopped at such a file).
	for name, f := range map[string][]byte{
		"stop event": append(append([]byte(nil), file[:len(file)-47]...), binlogEvent(1006, 3, 30)...),
		"crash":      file[:len(file)-47],
	} {
		s := &binlogScanner{}
		if _, err := s.Write(f); err != nil {
			t.Fatal(err)
		}
		if _, err := s.closed(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), "mysql-bin.000001")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := binlogCreated(path); err != nil || c.Unix() != 1000 {
		t.Errorf("binlogCreated = %v, %v", c, err)
	}
}

// ---------------------------------------------------------------------------------------------
// xbstream

func TestXBReader_ParsesWhateverTheWriteBoundaries(t *testing.T) {
	var s []byte
	s = xbFile(s, "ibdata1", bytes.Repeat([]byte("page"), 3000), 1000)
	s = xbChunk(s, xbTypeEOF, "mysql/empty.CSV", 0, nil) // an empty file is its end chunk alone
	s = xbFile(s, "xtrabackup_binlog_info", []byte(testBinlogInfo), 7)
	for _, step := range []int{1, 3, 17, 4096, len(s)} {
		x := newXBReader("xtrabackup_binlog_info", "mysql/empty.CSV")
		for i := 0; i < len(s); i += step {
			if _, err := x.Write(s[i:min(i+step, len(s))]); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if err := x.Close(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if b, ok := x.file("xtrabackup_binlog_info"); !ok || string(b) != testBinlogInfo {
			t.Fatalf("step %d: captured %q, %v", step, b, ok)
		}
		if b, ok := x.file("mysql/empty.CSV"); !ok || len(b) != 0 {
			t.Fatalf("step %d: empty file captured as %q, %v", step, b, ok)
		}
		if x.files != 3 {
			t.Fatalf("step %d: %d files", step, x.files)
		}
	}
}

func TestXBReader_RejectsBrokenStreams(t *testing.T) {
	good := xbFile(nil, "ibdata1", bytes.Repeat([]byte{1, 2, 3}, 1000), 512)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	unknown := xbChunk(nil, 'Z', "x", 0, []byte("abc"))
	ignorable := bytes.Clone(unknown)
	ignorable[8] = xbFlagIgnorable
	cases := map[string]struct {
		stream []byte
		want   string
	}{
		"truncated inside a chunk": {good[:len(good)-5], "truncated"},
		"file never ended":         {good[:len(good)-len(xbChunk(nil, xbTypeEOF, "ibdata1", 0, nil))], "unfinished"},
		"payload bit flip":         {flipped, "checksum mismatch"},
		"garbage":                  {[]byte("this is not an xbstream at all"), "magic"},
		"unknown chunk type":       {append(bytes.Clone(good), unknown...), "unknown chunk type"},
		"empty":                    {nil, "no file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			x := newXBReader()
			_, err := x.Write(c.stream)
			if err == nil {
				err = x.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	t.Run("ignorable unknown chunk", func(t *testing.T) {
		x := newXBReader()
		s := append(append(bytes.Clone(good), ignorable...), xbChunk(nil, xbTypeEOF, "x", 0, nil)...)
		if _, err := x.Write(s); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// ---------------------------------------------------------------------------------------------
// Backup pipeline

func TestBackup_StreamsVerifiesAndRecords(t *testing.T) {
	store := newMemStore()
	tools := &fakeTools{size: 4 << 20}
	o := testOptions(t, tools, store)
	rec, err := Backup(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rec.GTID != "0-1-99" || rec.BinlogFile != "mysql-bin.000042" || rec.BinlogPos != 1234 || rec.ServerID != 7 ||
		rec.ServerVersion != "10.11.19-MariaDB-log" || rec.Compress != CompressZstd || rec.Node != "n1" || rec.Backend != "mem" {
		t.Errorf("record: %+v", rec)
	}
	if rec.Size <= 0 || rec.Size >= rec.RawSize {
		t.Errorf("size %d, raw %d: not compressed", rec.Size, rec.RawSize)
	}
	if err := rec.Validate(); err != nil {
		t.Error(err)
	}
	if got := store.names(); len(got) != 2 || got[0] != ManifestName("", rec.ID) || got[1] != rec.Path {
		t.Errorf("store holds %v, want the stream and its manifest", got)
	}
	if err := readBack(context.Background(), store, rec.Path, rec.Size, rec.SHA256); err != nil {
		t.Error(err)
	}
	recs, err := ListManifests(context.Background(), store, "")
	if err != nil || len(recs) != 1 || recs[0] != rec {
		t.Errorf("manifests = %+v, %v", recs, err)
	}
	// The option file's directory is gone.
	if entries, _ := os.ReadDir(o.TempDir); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestBackup_FailuresPublishNothing(t *testing.T) {
	errDisk := errors.New("disk on fire")
	cases := []struct {
		name  string
		setup func(*fakeTools, *memStore, *BackupOptions)
		want  string
	}{
		{"tool exits non-zero midway", func(f *fakeTools, _ *memStore, _ *BackupOptions) {
			f.backup = func(ctx context.Context, w io.Writer) error {
				_, _ = w.Write(xbChunk(nil, xbTypePayload, "ibdata1", 0, make([]byte, 1<<20)))
				return errors.New("mariabackup: exit status 1: InnoDB: redo log overwritten")
			}
		}, "redo log overwritten"},
		{"tool exits 0 with a truncated stream", func(f *fakeTools, _ *memStore, _ *BackupOptions) {
			f.backup = func(ctx context.Context, w io.Writer) error {
				s := xbFile(nil, "ibdata1", make([]byte, 1<<20), 64<<10)
				_, err := w.Write(s[:len(s)-100])
				return err
			}
		}, "stream is not whole"},
		{"no binlog info in the stream", func(f *fakeTools, _ *memStore, _ *BackupOptions) {
			f.backup = func(ctx context.Context, w io.Writer) error {
				_, err := w.Write(xbFile(nil, "ibdata1", make([]byte, 1<<20), 64<<10))
				return err
			}
		}, "binary logging"},
		{"store fails midway", func(_ *fakeTools, m *memStore, _ *BackupOptions) {
			m.failPut = func(name string, n int64) error {
				if n > 256<<10 {
					return errDisk
				}
				return nil
			}
		}, "disk on fire"},
		{"store keeps fewer bytes than sent", func(_ *fakeTools, m *memStore, _ *BackupOptions) { m.lieSize = -1 }, "truncated upload"},
		{"server unreachable", func(_ *fakeTools, _ *memStore, o *BackupOptions) {
			o.queryFacts = func(context.Context) (serverFacts, error) { return serverFacts{}, errors.New("connection refused") }
		}, "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := newMemStore()
			tools := &fakeTools{size: 4 << 20}
			o := testOptions(t, tools, store)
			c.setup(tools, store, &o)
			rec, err := Backup(context.Background(), o)
			if err == nil {
				t.Fatalf("Backup succeeded: %+v", rec)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "snapshot: backup") {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), o.Password) {
				t.Errorf("error holds the password: %v", err)
			}
			if rec != (Record{}) {
				t.Errorf("a failed backup returned a record: %+v", rec)
			}
			if got := store.names(); len(got) != 0 {
				t.Errorf("store holds %v after a failed backup", got)
			}
		})
	}
}

func TestBackup_StoreFailureStopsTheTool(t *testing.T) {
	store := newMemStore()
	store.failPut = func(string, int64) error { return errors.New("connection reset") }
	stopped := make(chan struct{})
	tools := &fakeTools{backup: func(ctx context.Context, w io.Writer) error {
		defer close(stopped)
		// A tool that would stream forever: it must be stopped by a write error or ctx.
		chunk := xbChunk(nil, xbTypePayload, "ibdata1", 0, make([]byte, 64<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}}
	_, err := Backup(context.Background(), testOptions(t, tools, store))
	if err == nil || !strings.Contains(err.Error(), "connection reset") || !strings.Contains(err.Error(), "upload") {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the tool still runs after Backup returned")
	}
}

// TestBackup_MemoryBounded streams 256 MiB through the pipe and checks the heap stays small:
// nothing buffers the backup.
func TestBackup_MemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 256 MiB")
	}
	const size = 256 << 20
	store := newMemStore()
	store.discard = true
	tools := &fakeTools{size: size}
	runtime.GC()
	base := heapBytes()
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	rec, err := Backup(context.Background(), testOptions(t, tools, store))
	close(done)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if rec.RawSize < size {
		t.Fatalf("raw size %d < %d", rec.RawSize, size)
	}
	growth := int64(peak.Load()) - int64(base)
	t.Logf("streamed %d MiB (stored %d MiB); heap grew by at most %.1f MiB", rec.RawSize>>20, rec.Size>>20, float64(growth)/(1<<20))
	if growth > 48<<20 {
		t.Errorf("heap grew by %.1f MiB streaming %d MiB: the pipe buffers", float64(growth)/(1<<20), size>>20)
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// ---------------------------------------------------------------------------------------------
// Restore pipeline

func backupToMem(t *testing.T, compress string) (*memStore, Record) {
	t.Helper()
	store := newMemStore()
	o := testOptions(t, &fakeTools{size: 2 << 20}, store)
	o.Compress = compress
	rec, err := Backup(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return store, rec
}

func restoreOpts(t *testing.T, store storage.Store, rec Record, datadir string) RestoreOptions {
	return RestoreOptions{Runner: &fakeTools{}, Flavor: mysql.MariaDB, Store: store, Record: rec,
		Datadir: datadir, TempDir: filepath.Join(t.TempDir(), "scratch"), Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}
}

func TestRestore_VerifiesThenInstalls(t *testing.T) {
	for _, compress := range []string{CompressZstd, CompressLZ4, CompressNone} {
		t.Run(compress, func(t *testing.T) {
			store, rec := backupToMem(t, compress)
			datadir := filepath.Join(t.TempDir(), "data")
			if err := os.MkdirAll(datadir, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(datadir, "old"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			o := restoreOpts(t, store, rec, datadir)
			res, err := Restore(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.GTID != "0-1-99" || res.BinlogFile != "mysql-bin.000042" || res.BinlogPos != 1234 {
				t.Errorf("result %+v", res)
			}
			if res.MovedAside != datadir+".old-20261125T120000Z" {
				t.Errorf("moved aside to %q", res.MovedAside)
			}
			if _, err := os.Stat(filepath.Join(res.MovedAside, "old")); err != nil {
				t.Errorf("the old datadir's file is gone: %v", err)
			}
			if ok, _ := mysql.Initialized(datadir); !ok {
				t.Error("the restored datadir has no mysql/")
			}
			if entries, _ := os.ReadDir(o.TempDir); len(entries) != 0 {
				t.Errorf("scratch space not cleaned: %v", entries)
			}
			ran := o.Runner.(*fakeTools).ran
			if len(ran) != 2 || ran[0] != "mbstream" || !strings.Contains(ran[1], "--prepare") {
				t.Errorf("tools ran: %v", ran)
			}
			if argv := o.Runner.(*fakeTools).argv; len(argv) != 2 || !strings.Contains(argv[1], "--use-memory=") {
				t.Errorf("prepare not sized from the memory limit: %q", argv)
			}
		})
	}
}

// RestoreOptions.UseMemory reaches the prepare step as --use-memory; negative leaves the
// tool's default.
func TestRestore_PrepareMemory(t *testing.T) {
	store, rec := backupToMem(t, CompressLZ4)
	for _, c := range []struct {
		useMemory int64
		want      string
	}{{256 << 20, "--use-memory=268435456"}, {-1, ""}} {
		o := restoreOpts(t, store, rec, filepath.Join(t.TempDir(), "data"))
		o.UseMemory = c.useMemory
		if _, err := Restore(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		argv := o.Runner.(*fakeTools).argv
		prepare := argv[len(argv)-1]
		if !strings.Contains(prepare, "--prepare") || strings.Contains(prepare, "--use-memory") != (c.want != "") || !strings.Contains(prepare, c.want) {
			t.Errorf("UseMemory %d: prepare ran with %q, want %q", c.useMemory, prepare, c.want)
		}
	}
}

func TestRestore_CorruptObjectRefusedBeforeTouchingTheDatadir(t *testing.T) {
	for _, compress := range []string{CompressZstd, CompressLZ4, CompressNone} {
		for _, where := range []int{100, 1 << 20, -1} {
			store, rec := backupToMem(t, compress)
			at := where
			if at < 0 {
				at = int(rec.Size) - 1 // the very last byte
			}
			store.corrupt(t, rec.Path, at)
			datadir := filepath.Join(t.TempDir(), "data")
			o := restoreOpts(t, store, rec, datadir)
			_, err := Restore(context.Background(), o)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s, byte %d flipped: err = %v, want ErrCorrupt", compress, at, err)
			}
			if !strings.Contains(err.Error(), "snapshot "+rec.ID+" is corrupt: sha256 mismatch") {
				t.Errorf("error does not say why: %v", err)
			}
			if _, err := os.Stat(datadir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("datadir touched by a refused restore: %v", err)
			}
			for _, r := range o.Runner.(*fakeTools).ran {
				if strings.Contains(r, "prepare") {
					t.Errorf("a corrupt snapshot was prepared")
				}
			}
		}
	}
}

func TestRestore_RefusesWhatItCannotTrust(t *testing.T) {
	store, rec := backupToMem(t, CompressZstd)
	cases := []struct {
		name string
		mod  func(*RestoreOptions)
		want string
	}{
		{"record GTID differs from the backup's", func(o *RestoreOptions) { o.Record.GTID = "0-1-98" }, "position is uncertain"},
		{"other flavor", func(o *RestoreOptions) { o.Record.Flavor = "mysql" }, "taken from a mysql server"},
		{"relative datadir", func(o *RestoreOptions) { o.Datadir = "data" }, "absolute"},
		{"temp dir inside datadir", func(o *RestoreOptions) { o.TempDir = filepath.Join(o.Datadir, "tmp") }, "contain each other"},
		{"missing object", func(o *RestoreOptions) { o.Record.Path = "snapshots/nope.xbstream.zst" }, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			datadir := filepath.Join(t.TempDir(), "data")
			o := restoreOpts(t, store, rec, datadir)
			o.Record.Flavor = "mariadb"
			c.mod(&o)
			_, err := Restore(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if _, err := os.Stat(datadir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("datadir touched: %v", err)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// Prune

type listCatalog struct {
	StoreCatalog
	recs    []Record
	deleted []string
}

func (c *listCatalog) List(context.Context) ([]Record, error) { return c.recs, nil }
func (c *listCatalog) Delete(_ context.Context, id string) error {
	c.deleted = append(c.deleted, id)
	return nil
}

func TestPrune_KeepsNewestAndTheirBinlogs(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	put := func(name string) {
		if _, err := store.Put(ctx, name, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	at := func(h int) time.Time { return time.Date(2026, 11, 25, h, 0, 0, 0, time.UTC) }
	var recs []Record
	for i, h := range []int{1, 5, 9} {
		id := NewID(at(h))
		rec := Record{ID: id, Path: ObjectName("", id, CompressZstd), ServerID: 1, BinlogFile: "mysql-bin.00000" + string(rune('1'+2*i)),
			BinlogCreated: at(h).Add(-time.Minute), Created: at(h), Completed: at(h).Add(time.Minute)}
		recs = append(recs, rec)
		put(rec.Path)
		put(ManifestName("", id))
	}
	orphan := ObjectName("", NewID(at(0)), CompressZstd)
	put(orphan)
	newer := ObjectName("", NewID(at(10)), CompressZstd) // an upload not yet published: kept
	put(newer)
	// Server 1: files 1..6, each opened an hour apart, file 3 at 04:59 (rec 2's), 5 at 08:59.
	for n := 1; n <= 6; n++ {
		created := at(2*n - 1).Add(-time.Minute)
		put(BinlogObjectName("", 1, created, "mysql-bin.00000"+string(rune('0'+n)), CompressZstd))
	}
	// Server 2 (an earlier primary): by upload time, one file is needed and one is not.
	old2 := BinlogObjectName("", 2, at(0), "mysql-bin.000007", CompressZstd)
	put(old2)
	store.setModTime(old2, at(1))
	new2 := BinlogObjectName("", 2, at(6), "mysql-bin.000008", CompressZstd)
	put(new2)
	store.setModTime(new2, at(7))
	cat := &listCatalog{recs: recs}
	res, err := Prune(ctx, store, cat, 2, PruneOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.deleted) != 1 || cat.deleted[0] != recs[0].ID {
		t.Errorf("catalog deletions %v, want %s", cat.deleted, recs[0].ID)
	}
	names := strings.Join(store.names(), "\n")
	for _, gone := range []string{recs[0].Path, ManifestName("", recs[0].ID), orphan, "mysql-bin.000001", "mysql-bin.000002", old2} {
		if strings.Contains(names, gone) {
			t.Errorf("%s survived the prune:\n%s", gone, names)
		}
	}
	for _, kept := range []string{recs[1].Path, recs[2].Path, newer, "mysql-bin.000003", "mysql-bin.000006", new2} {
		if !strings.Contains(names, kept) {
			t.Errorf("%s was pruned:\n%s", kept, names)
		}
	}
	if len(res.Snapshots) != 1 {
		t.Errorf("result %+v", res)
	}
}
