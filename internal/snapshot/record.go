// Package snapshot takes hot backups of a MariaDB/MySQL server and restores them: the backup
// tool's xbstream output is compressed, hashed and streamed to object storage in one pipe with
// bounded memory, closed binary logs are archived beside the snapshots, old ones are pruned,
// and a datadir can be restored from a snapshot alone (replica bootstrap) or from a snapshot
// plus archived binlogs up to a point in time.
//
// Object layout in a storage.Store (Prefix is optional and ends in "/"):
//
//	<prefix>snapshots/<id>.xbstream.zst   the backup stream (".xbstream.lz4" with lz4,
//	                                      ".xbstream" when not compressed)
//	<prefix>snapshots/<id>.json           its Record, written after the stream is verified
//	<prefix>binlogs/<server id>/<created>-<file>[.zst|.lz4]
//	                                      a closed binary log; <created> is the time the server
//	                                      opened the file (its first event), so that names of
//	                                      successive incarnations of a datadir never collide
//	                                      and sort in the order the files were written
//
// Safety rules (DESIGN.md section 3): a snapshot is recorded only when its object is complete
// and verified (Backup returns a Record only then; the caller publishes it), and a restore is
// sound or fails (the checksum is verified before anything touches the datadir, the GTID
// position comes from the backup's own binlog info file, an existing datadir is moved aside,
// never deleted).
//
// Every external tool runs through a supervisor.Runner: in production the supervisor reaps
// every child, so os/exec must not be used here.
package snapshot

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/seal"
)

// Compression names (snapshot.compress). Each object says its own (a snapshot's record, a
// binlog's name suffix), so a restore reads whatever mix a cluster wrote over time.
const (
	CompressZstd = "zstd"
	CompressLZ4  = "lz4"
	CompressNone = "none"
)

// compressExt is the object name suffix of each compression.
var compressExt = map[string]string{CompressZstd: ".zst", CompressLZ4: ".lz4", CompressNone: ""}

// checkCompress reports a compression name this version does not know.
func checkCompress(c string) error {
	if _, ok := compressExt[c]; !ok {
		return fmt.Errorf("compression %q (want zstd, lz4 or none)", c)
	}
	return nil
}

// Record describes one complete, verified snapshot. It holds no secret: it is stored in Consul
// and beside the object.
type Record struct {
	// ID is sortable by time: "20261125T160531.042Z-3fa2c1" (UTC start time to the
	// millisecond, random suffix).
	ID string `json:"id"`
	// Backend is the kind of store ("local", "s3", "manta"); Store names it with its location,
	// as storage.Store.String does (no secrets).
	Backend string `json:"backend"`
	Store   string `json:"store"`
	// Path is the object's name in the store.
	Path string `json:"path"`
	// Size and SHA256 (hex) describe the stored object, compressed.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// RawSize is the length of the backup tool's stream before compression.
	RawSize int64 `json:"raw_size"`
	// Compress is "zstd", "lz4" or "none".
	Compress string `json:"compress"`
	// Encrypt names the encryption (seal.Algorithm) and KeyID the key's public id when the
	// object is sealed; both empty when it is not.
	Encrypt string `json:"encrypt,omitempty"`
	KeyID   string `json:"key_id,omitempty"`
	// GTID is the position the restore sets (gtid_slave_pos on MariaDB, gtid_purged on MySQL):
	// the backup tool's own record of the last transaction in the backup.
	GTID string `json:"gtid"`
	// BinlogFile and BinlogPos are the source's binary log coordinates of the backup.
	BinlogFile string `json:"binlog_file"`
	BinlogPos  uint64 `json:"binlog_pos"`
	// BinlogCreated is when the source opened BinlogFile (zero when unknown); with ServerID
	// it names the archived binlog a point-in-time restore starts from.
	BinlogCreated time.Time `json:"binlog_created,omitzero"`
	// Flavor ("mariadb" or "mysql"), ServerVersion and ServerID describe the source server;
	// Node is the mysqlpilot node that took the snapshot.
	Flavor        string `json:"flavor"`
	ServerVersion string `json:"server_version"`
	ServerID      uint32 `json:"server_id"`
	Node          string `json:"node,omitempty"`
	// Created is when the backup started; Completed when its object was verified. The
	// backup's consistency point lies between them.
	Created   time.Time `json:"created"`
	Completed time.Time `json:"completed"`
	// VerifiedAt is when a restore drill (verify.go) last finished on this snapshot, zero
	// when none has; VerifyError is why it failed, "" when it passed. A drilling replica
	// writes both into the catalog's records (Catalog.SetVerified), never into the manifest
	// stored beside the object.
	VerifiedAt  time.Time `json:"verifiedAt,omitzero"`
	VerifyError string    `json:"verifyError,omitempty"`
}

// Verified says whether the snapshot passed a restore drill.
func (r Record) Verified() bool { return !r.VerifiedAt.IsZero() && r.VerifyError == "" }

// FailedDrill says whether the snapshot failed a restore drill.
func (r Record) FailedDrill() bool { return r.VerifyError != "" }

// Validate reports a record that cannot describe a restorable snapshot.
func (r Record) Validate() error {
	var errs []error
	if err := CheckID(r.ID); err != nil {
		errs = append(errs, err)
	}
	if r.Path == "" {
		errs = append(errs, errors.New("no path"))
	}
	if len(r.SHA256) != 64 {
		errs = append(errs, fmt.Errorf("sha256 %q is not 64 hex digits", r.SHA256))
	} else if _, err := hex.DecodeString(r.SHA256); err != nil {
		errs = append(errs, fmt.Errorf("sha256 %q is not hex", r.SHA256))
	}
	if r.Size <= 0 {
		errs = append(errs, fmt.Errorf("size %d", r.Size))
	}
	if err := checkCompress(r.Compress); err != nil {
		errs = append(errs, err)
	}
	switch r.Encrypt {
	case "":
	case seal.Algorithm:
		if len(r.KeyID) != 16 {
			errs = append(errs, fmt.Errorf("key id %q is not 16 hex digits", r.KeyID))
		}
	default:
		errs = append(errs, fmt.Errorf("encryption %q (this version knows %s)", r.Encrypt, seal.Algorithm))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snapshot record %s: %w", r.ID, err)
	}
	return nil
}

// idTimeLayout is the time part of an ID: UTC, millisecond resolution, fixed width, so IDs
// sort as text in time order (two backups a second apart must not sort by their suffixes).
const idTimeLayout = "20060102T150405.000Z"

// secondsLayout names files by a time of one-second resolution (binlogs, moved-aside
// datadirs).
const secondsLayout = "20060102T150405Z"

// NewID returns a snapshot ID for a backup started at t: its UTC time and six random hex
// digits, so that IDs sort by time and two nodes starting in the same millisecond do not
// clash.
func NewID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return t.UTC().Format(idTimeLayout) + "-" + hex.EncodeToString(b[:])
}

// IDTime returns the start time encoded in a snapshot ID.
func IDTime(id string) (time.Time, error) {
	if err := CheckID(id); err != nil {
		return time.Time{}, err
	}
	return time.Parse(idTimeLayout, id[:len(idTimeLayout)])
}

// CheckID reports an ID that NewID could not have made. IDs become object names and Consul
// keys, so nothing else is accepted.
func CheckID(id string) error {
	ts, suffix, ok := strings.Cut(id, "-")
	if !ok || len(ts) != len(idTimeLayout) || len(suffix) != 6 {
		return fmt.Errorf("snapshot id %q: want YYYYMMDDTHHMMSS.mmmZ-xxxxxx", id)
	}
	if _, err := time.Parse(idTimeLayout, ts); err != nil {
		return fmt.Errorf("snapshot id %q: %w", id, err)
	}
	if _, err := hex.DecodeString(suffix); err != nil {
		return fmt.Errorf("snapshot id %q: suffix is not hex", id)
	}
	return nil
}

// Names of objects in the store.
const (
	snapshotsDir = "snapshots/"
	binlogsDir   = "binlogs/"
	streamExt    = ".xbstream"
	sealedExt    = ".sealed"
	manifestExt  = ".json"
)

// ObjectName is the name of a snapshot's stream object.
func ObjectName(prefix, id, compress string) string {
	return prefix + snapshotsDir + id + streamExt + compressExt[compress]
}

// sealedName is name with the suffix of a sealed object when key is not nil.
func sealedName(name string, key *seal.Key) string {
	if key != nil {
		return name + sealedExt
	}
	return name
}

// ManifestName is the name of the JSON record stored beside a snapshot's stream.
func ManifestName(prefix, id string) string { return prefix + snapshotsDir + id + manifestExt }

// snapshotObjectID returns the snapshot ID a name in the snapshots directory belongs to.
func snapshotObjectID(prefix, name string) (string, bool) {
	base, ok := strings.CutPrefix(name, prefix+snapshotsDir)
	if !ok {
		return "", false
	}
	base = strings.TrimSuffix(base, sealedExt)
	for _, ext := range []string{streamExt + compressExt[CompressZstd], streamExt + compressExt[CompressLZ4], streamExt, manifestExt} {
		if id, ok := strings.CutSuffix(base, ext); ok && CheckID(id) == nil {
			return id, true
		}
	}
	return "", false
}

// binlogCreatedLayout is the time part of an archived binlog's name.
const binlogCreatedLayout = secondsLayout

// BinlogObjectName is the archive name of binary log file, opened by server serverID at
// created.
func BinlogObjectName(prefix string, serverID uint32, created time.Time, file, compress string) string {
	return fmt.Sprintf("%s%s%d/%s-%s%s", prefix, binlogsDir, serverID, created.UTC().Format(binlogCreatedLayout), file, compressExt[compress])
}

// ArchivedBinlog is one binary log in the archive, as parsed from its object name.
type ArchivedBinlog struct {
	Object   string    // object name in the store
	ServerID uint32    // server that wrote it
	Created  time.Time // when the server opened it
	File     string    // its name on the server, e.g. "mysql-bin.000042"
	Compress string    // "zstd", "lz4" or "none", from the name's suffix
	Sealed   bool      // encrypted (name ends in .sealed)
	Size     int64     // stored size
	ModTime  time.Time // when the store received it (after the file was closed)
}

// parseBinlogObject parses a name made by BinlogObjectName.
func parseBinlogObject(prefix, name string) (ArchivedBinlog, bool) {
	rest, ok := strings.CutPrefix(name, prefix+binlogsDir)
	if !ok {
		return ArchivedBinlog{}, false
	}
	sid, base, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(base, "/") {
		return ArchivedBinlog{}, false
	}
	var id uint32
	if _, err := fmt.Sscanf(sid, "%d", &id); err != nil || fmt.Sprint(id) != sid {
		return ArchivedBinlog{}, false
	}
	ts, file, ok := strings.Cut(base, "-")
	if !ok || file == "" {
		return ArchivedBinlog{}, false
	}
	created, err := time.Parse(binlogCreatedLayout, ts)
	if err != nil {
		return ArchivedBinlog{}, false
	}
	b := ArchivedBinlog{Object: name, ServerID: id, Created: created, File: file, Compress: CompressNone}
	if f, ok := strings.CutSuffix(b.File, sealedExt); ok {
		b.File, b.Sealed = f, true
	}
	for _, c := range []string{CompressZstd, CompressLZ4} {
		if f, ok := strings.CutSuffix(b.File, compressExt[c]); ok {
			b.File, b.Compress = f, c
			break
		}
	}
	return b, true
}

// binlogSeq returns the numeric extension of a binary log file name ("mysql-bin.000042": 42)
// and its basename.
func binlogSeq(file string) (base string, seq uint64, ok bool) {
	i := strings.LastIndexByte(file, '.')
	if i <= 0 || i == len(file)-1 {
		return "", 0, false
	}
	var n uint64
	for _, c := range file[i+1:] {
		if c < '0' || c > '9' {
			return "", 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return file[:i], n, true
}
