package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
)

// BinlogInfo is the backup tool's record of where the backup stands in the source's history:
// the binary log coordinates and the GTID position of the last transaction it holds.
type BinlogInfo struct {
	File string
	Pos  uint64
	GTID string
}

// parseBinlogInfo parses the backup tool's binlog info file: "file<TAB>pos<TAB>gtid". MySQL
// prints a long GTID set over several lines (after commas); they are joined. A server without
// binary logging writes nothing, which is refused: the position is what a restore needs.
func parseBinlogInfo(f mysql.Flavor, data []byte) (BinlogInfo, error) {
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return BinlogInfo{}, fmt.Errorf("binlog info %q: want \"file position [gtid]\" (is binary logging on?)", truncate(string(data), 200))
	}
	pos, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return BinlogInfo{}, fmt.Errorf("binlog info %q: position: %w", truncate(string(data), 200), err)
	}
	info := BinlogInfo{File: fields[0], Pos: pos, GTID: strings.Join(fields[2:], "")}
	if strings.ContainsAny(info.File, "/\\") || info.File == "." || info.File == ".." {
		return BinlogInfo{}, fmt.Errorf("binlog info: file name %q", info.File)
	}
	set, err := mysql.ParseGTIDSet(f, info.GTID)
	if err != nil {
		return BinlogInfo{}, fmt.Errorf("binlog info: %w", err)
	}
	info.GTID = set.String()
	return info, nil
}

// binlogInfoFromStream returns the binlog info captured from a backup stream.
func binlogInfoFromStream(f mysql.Flavor, x *xbReader) (BinlogInfo, error) {
	for _, name := range f.BinlogInfoFiles() {
		if b, ok := x.file(name); ok {
			info, err := parseBinlogInfo(f, b)
			if err != nil {
				return BinlogInfo{}, fmt.Errorf("%s in the backup stream: %w", name, err)
			}
			return info, nil
		}
	}
	return BinlogInfo{}, fmt.Errorf("the backup stream holds none of %s (is binary logging on?)", strings.Join(f.BinlogInfoFiles(), ", "))
}

// binlogInfoFromDir reads the binlog info file of an unpacked backup.
func binlogInfoFromDir(f mysql.Flavor, dir string) (BinlogInfo, error) {
	for _, name := range f.BinlogInfoFiles() {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return BinlogInfo{}, fmt.Errorf("read %s: %w", name, err)
		}
		info, err := parseBinlogInfo(f, b)
		if err != nil {
			return BinlogInfo{}, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
		return info, nil
	}
	return BinlogInfo{}, fmt.Errorf("the unpacked backup in %s holds none of %s", dir, strings.Join(f.BinlogInfoFiles(), ", "))
}

// backupInfoValue returns key's value in the backup tool's "key = value" info file captured
// from the stream, or "".
func backupInfoValue(f mysql.Flavor, x *xbReader, key string) string {
	for _, name := range f.BackupInfoFiles() {
		b, ok := x.file(name)
		if !ok {
			continue
		}
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Binary log files start with the magic "\xfebin" and hold events with a 19-byte header:
// timestamp (4, LE), type (1), server id (4), event size (4), next position (4), flags (2).
const (
	binlogMagic       = "\xfebin"
	binlogEventHeader = 19
	binlogRotateEvent = 4
	binlogMaxEvent    = 1 << 30 // max_allowed_packet's ceiling; larger means garbage
	// MariaDB's GTID event starts its body with the sequence number (8, LE) and the domain
	// id (4, LE); the server id is the header's.
	mariadbGTIDEvent = 162
	mariadbGTIDBody  = 12
)

// binlogCreated reads when the server opened a binary log file: the timestamp of its first
// event (the format description, written when the file is created).
func binlogCreated(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	var b [len(binlogMagic) + 4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return time.Time{}, fmt.Errorf("binlog %s: read header: %w", path, err)
	}
	if string(b[:4]) != binlogMagic {
		return time.Time{}, fmt.Errorf("binlog %s: not a binary log (magic %q)", path, b[:4])
	}
	return time.Unix(int64(binary.LittleEndian.Uint32(b[4:])), 0).UTC(), nil
}

// binlogScanner follows a binary log file as an io.Writer, event header by event header,
// without buffering events: it checks the framing and records the first and last event's
// time and whether the file ends with a rotate event (a closed file).
type binlogScanner struct {
	hdr     []byte
	body    []byte // the start of a MariaDB GTID event's body, being collected
	want    int    // body bytes still to collect
	server  uint32 // the GTID event's server id
	skip    uint64 // event bytes still to skip
	magic   int    // magic bytes seen
	events  int64
	first   time.Time
	last    time.Time
	lastTyp byte
	// gtids holds, per MariaDB replication domain, the last GTID seen (in file order).
	gtids map[uint32]mysql.MariaDBGTID
	err   error
}

func (s *binlogScanner) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		if s.magic < len(binlogMagic) {
			k := min(len(p), len(binlogMagic)-s.magic)
			if string(p[:k]) != binlogMagic[s.magic:s.magic+k] {
				s.err = errors.New("binlog: bad magic: not a binary log")
				return 0, s.err
			}
			s.magic += k
			p = p[k:]
			continue
		}
		if s.want > 0 {
			k := min(len(p), s.want)
			s.body = append(s.body, p[:k]...)
			s.want -= k
			s.skip -= uint64(k)
			p = p[k:]
			if s.want == 0 {
				g := mysql.MariaDBGTID{Seq: binary.LittleEndian.Uint64(s.body[0:8]),
					Domain: binary.LittleEndian.Uint32(s.body[8:12]), Server: s.server}
				if s.gtids == nil {
					s.gtids = map[uint32]mysql.MariaDBGTID{}
				}
				s.gtids[g.Domain] = g
			}
			continue
		}
		if s.skip > 0 {
			k := min(uint64(len(p)), s.skip)
			s.skip -= k
			p = p[k:]
			continue
		}
		k := min(len(p), binlogEventHeader-len(s.hdr))
		s.hdr = append(s.hdr, p[:k]...)
		p = p[k:]
		if len(s.hdr) < binlogEventHeader {
			continue
		}
		size := binary.LittleEndian.Uint32(s.hdr[9:13])
		if size < binlogEventHeader || size > binlogMaxEvent {
			s.err = fmt.Errorf("binlog: event %d has size %d", s.events, size)
			return 0, s.err
		}
		t := time.Unix(int64(binary.LittleEndian.Uint32(s.hdr[0:4])), 0).UTC()
		if s.events == 0 {
			s.first = t
		}
		s.last, s.lastTyp = t, s.hdr[4]
		s.events++
		s.skip = uint64(size) - binlogEventHeader
		if s.hdr[4] == mariadbGTIDEvent && s.skip >= mariadbGTIDBody {
			s.want, s.body = mariadbGTIDBody, s.body[:0]
			s.server = binary.LittleEndian.Uint32(s.hdr[5:9])
		}
		s.hdr = s.hdr[:0]
	}
	return n, nil
}

// lastGTIDs returns, as a MariaDB GTID position, the last transaction of each domain seen
// ("" when none).
func (s *binlogScanner) lastGTIDs() string {
	parts := make([]string, 0, len(s.gtids))
	for _, g := range s.gtids {
		parts = append(parts, g.String())
	}
	return strings.Join(parts, ",")
}

// closed reports a complete file (whole events only) and when it was closed: its last
// event, normally a rotate event (the server moved on to the next file) or a stop event (a
// clean shutdown), or any event for a file a crashed server left. The callers read only files
// the server has moved past (never the active one), so a file that ends between events is
// whole.
func (s *binlogScanner) closed() (time.Time, error) {
	switch {
	case s.err != nil:
		return time.Time{}, s.err
	case s.magic < len(binlogMagic) || s.events == 0:
		return time.Time{}, errors.New("binlog: no events")
	case len(s.hdr) != 0 || s.skip != 0:
		return time.Time{}, errors.New("binlog: file ends inside an event (truncated)")
	}
	return s.last, nil
}
