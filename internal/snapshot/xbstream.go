package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
)

// The xbstream format (mariabackup/xtrabackup --stream=xbstream) is a sequence of chunks:
//
//	magic "XBSTCK01" | flags (1) | type (1) | path length (4, LE) | path
//	type 'E' (end of file): nothing more
//	type 'S' (sparse, Percona 8.0): sparse map entries (4, LE)
//	payload length (8, LE) | payload offset (8, LE) | CRC-32 of the payload (4, LE)
//	[sparse map: entries x (skip 4, length 4)] | payload
//
// Every file is sent as payload chunks and closed by an 'E' chunk. Unknown chunk types with
// the "ignorable" flag have the payload layout.

const (
	xbMagic          = "XBSTCK01"
	xbFlagIgnorable  = 0x01
	xbTypePayload    = 'P'
	xbTypeSparse     = 'S'
	xbTypeEOF        = 'E'
	xbMaxPath        = 4096     // FN_REFLEN-ish; longer means garbage
	xbMaxCapture     = 1 << 20  // bytes kept of a captured (small, metadata) file
	xbMaxSparseEntry = 16 << 20 // sparse map entries per chunk
)

// xbState is where in a chunk the reader is.
type xbState int

const (
	xbHead    xbState = iota // magic, flags, type, path length
	xbPath                   // path
	xbSparseN                // sparse map entry count
	xbPayHead                // payload length, offset, checksum
	xbSparse                 // sparse map
	xbPayload                // payload
)

// xbReader follows an xbstream as an io.Writer, without buffering payloads: it checks the
// framing and every payload's CRC-32, tracks which files are open, and keeps the contents of
// a few small files it was asked for (the binlog info). Close tells whether the stream ended
// cleanly: on a chunk boundary with every file closed.
type xbReader struct {
	want map[string]bool   // paths to capture
	got  map[string][]byte // captured contents

	state    xbState
	need     int    // bytes still needed for the current fixed-size part
	buf      []byte // the current fixed-size part
	flags    byte
	typ      byte
	path     string
	sparseN  uint32
	remain   uint64 // payload bytes still to come
	offset   uint64 // payload offset in its file
	sum      uint32 // expected CRC-32
	crc      uint32 // running CRC-32
	capture  bool
	open     map[string]bool
	chunks   int64
	files    int
	written  int64
	err      error
	finished bool
}

func newXBReader(want ...string) *xbReader {
	x := &xbReader{want: map[string]bool{}, got: map[string][]byte{}, open: map[string]bool{}}
	for _, w := range want {
		x.want[w] = true
	}
	x.expect(xbHead, len(xbMagic)+1+1+4)
	return x
}

func (x *xbReader) expect(s xbState, n int) {
	x.state, x.need, x.buf = s, n, x.buf[:0]
}

// Write consumes the next bytes of the stream. Once the stream is malformed every Write fails
// with the same error.
func (x *xbReader) Write(p []byte) (int, error) {
	if x.err != nil {
		return 0, x.err
	}
	n := len(p)
	for len(p) > 0 {
		if x.state == xbPayload {
			k := min(uint64(len(p)), x.remain)
			x.payload(p[:k])
			p = p[k:]
			x.remain -= k
			if x.remain == 0 {
				if err := x.endPayload(); err != nil {
					return 0, x.fail(err)
				}
			}
			continue
		}
		k := min(len(p), x.need)
		x.buf = append(x.buf, p[:k]...)
		p = p[k:]
		x.need -= k
		if x.need > 0 {
			continue
		}
		if err := x.step(); err != nil {
			return 0, x.fail(err)
		}
	}
	x.written += int64(n)
	return n, nil
}

func (x *xbReader) fail(err error) error {
	x.err = fmt.Errorf("xbstream at byte %d (chunk %d, %q): %w", x.written, x.chunks, x.path, err)
	return x.err
}

// step handles a complete fixed-size part.
func (x *xbReader) step() error {
	b := x.buf
	switch x.state {
	case xbHead:
		if string(b[:8]) != xbMagic {
			return fmt.Errorf("bad chunk magic %q", b[:8])
		}
		x.flags, x.typ = b[8], b[9]
		switch x.typ {
		case xbTypePayload, xbTypeSparse, xbTypeEOF:
		default:
			if x.flags&xbFlagIgnorable == 0 {
				return fmt.Errorf("unknown chunk type %q", x.typ)
			}
		}
		pl := binary.LittleEndian.Uint32(b[10:14])
		if pl == 0 || pl > xbMaxPath {
			return fmt.Errorf("path length %d", pl)
		}
		x.expect(xbPath, int(pl))
	case xbPath:
		x.path = string(b)
		x.chunks++
		if x.typ == xbTypeEOF {
			// An empty file is sent as its end chunk alone.
			delete(x.open, x.path)
			if x.want[x.path] && x.got[x.path] == nil {
				x.got[x.path] = []byte{}
			}
			x.files++
			x.expect(xbHead, len(xbMagic)+1+1+4)
			return nil
		}
		if x.typ == xbTypeSparse {
			x.expect(xbSparseN, 4)
			return nil
		}
		x.sparseN = 0
		x.expect(xbPayHead, 20)
	case xbSparseN:
		x.sparseN = binary.LittleEndian.Uint32(b)
		if x.sparseN > xbMaxSparseEntry {
			return fmt.Errorf("sparse map of %d entries", x.sparseN)
		}
		x.expect(xbPayHead, 20)
	case xbPayHead:
		x.remain = binary.LittleEndian.Uint64(b[0:8])
		x.offset = binary.LittleEndian.Uint64(b[8:16])
		x.sum = binary.LittleEndian.Uint32(b[16:20])
		x.crc = 0
		x.open[x.path] = true
		x.capture = x.want[x.path]
		if x.sparseN > 0 {
			x.expect(xbSparse, int(x.sparseN)*8)
			return nil
		}
		return x.startPayload()
	case xbSparse:
		return x.startPayload()
	}
	return nil
}

func (x *xbReader) startPayload() error {
	if x.capture && x.offset+x.remain > xbMaxCapture {
		return fmt.Errorf("metadata file larger than %d bytes", xbMaxCapture)
	}
	x.state = xbPayload
	if x.remain == 0 {
		return x.endPayload()
	}
	return nil
}

func (x *xbReader) payload(p []byte) {
	x.crc = crc32.Update(x.crc, crc32.IEEETable, p)
	if x.capture {
		cur := x.got[x.path]
		end := int(x.offset) + len(p)
		if len(cur) < end {
			cur = append(cur, make([]byte, end-len(cur))...)
		}
		copy(cur[int(x.offset):], p)
		x.got[x.path] = cur
		x.offset += uint64(len(p))
	}
}

func (x *xbReader) endPayload() error {
	if x.crc != x.sum {
		return fmt.Errorf("payload checksum mismatch (crc32 %08x, chunk says %08x)", x.crc, x.sum)
	}
	x.expect(xbHead, len(xbMagic)+1+1+4)
	return nil
}

// Close reports whether the stream ended cleanly.
func (x *xbReader) Close() error {
	if x.err != nil {
		return x.err
	}
	if x.state != xbHead || len(x.buf) != 0 {
		return x.fail(errors.New("stream ends inside a chunk (truncated)"))
	}
	if len(x.open) > 0 {
		open := slices.Sorted(maps.Keys(x.open))
		return x.fail(fmt.Errorf("stream ends with %d files unfinished (first %q): truncated", len(open), open[0]))
	}
	if x.files == 0 {
		return x.fail(errors.New("stream holds no file"))
	}
	x.finished = true
	return nil
}

// file returns the captured contents of path and whether it was in the stream.
func (x *xbReader) file(path string) ([]byte, bool) {
	b, ok := x.got[path]
	return bytes.Clone(b), ok
}
