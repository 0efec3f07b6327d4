// Package seal encrypts a stream for storage: snapshots and archived binary logs leave the
// node sealed, so the store (a bucket, a Manta directory, a shared volume) holds nothing it
// could read or alter unnoticed.
//
// The construction is AES-256-GCM over fixed-size chunks (the STREAM construction of Hoang,
// Reyhanitabar, Rogaway and Vizár, as age and Tink use it), with only the standard library:
//
//	header  = magic "MPSEAL1\n" | key id (8 bytes) | salt (32 random bytes)
//	subkey  = HKDF-SHA256(key, salt, "mysqlpilot seal v1 stream key" | 0 | context)
//	chunk i = AES-256-GCM(subkey, nonce = i as 11 bytes big-endian | last flag, plaintext_i)
//
// Every chunk but the last holds ChunkSize bytes of plaintext; the last holds fewer (possibly
// none) and has the last flag set, so a stream cut at any point, chunks reordered, dropped or
// altered, or a header from another stream all fail authentication. A fresh salt per stream
// gives each stream its own subkey, so the counter nonces never repeat under one key. The key
// id (an HMAC of a fixed label under the key) tells a wrong key from a corrupt stream before
// any chunk is read, without revealing anything of the key. The context names what the stream
// is (a snapshot's id, an archived binlog's server, time and file): a stream opens only under
// the context it was sealed with, so sealed objects swapped or renamed in the store fail.
//
// Why not age (filippo.io/age)? Its asymmetric recipients pay off when the writer must not be
// able to read; here every node both takes snapshots and restores them (bootstrap, re-seed),
// so every node holds the secret anyway, and a symmetric key in one file is simpler to
// provision and rotate. AES-GCM with AES-NI also costs less CPU than ChaCha20 on the two
// cores a node shares with mysqld and the compressor.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Algorithm names the construction in snapshot records.
const Algorithm = "aes-256-gcm-stream-v1"

// ChunkSize is the plaintext size of every chunk but the last.
const ChunkSize = 64 << 10

const (
	magic     = "MPSEAL1\n"
	idLen     = 8
	saltLen   = 32
	headerLen = len(magic) + idLen + saltLen
	tagLen    = 16
	nonceLen  = 12
	keyLen    = 32
)

// ErrAuth is wrapped by every error of a stream that fails authentication: altered, cut
// short, reordered, or sealed under another key.
var ErrAuth = errors.New("sealed stream fails authentication (tampered, truncated or corrupt)")

// ErrWrongKey is wrapped by the error of a stream sealed under a key other than the one given.
var ErrWrongKey = errors.New("sealed with another key")

// Key is a 256-bit secret key with its public id and where it came from.
type Key struct {
	k      [keyLen]byte
	id     string
	source string
}

// ID is the key's public identifier (16 hex digits), recorded beside what it sealed.
func (k *Key) ID() string { return k.id }

// Source says where the key came from (a config field, a file), for error messages.
func (k *Key) Source() string { return k.source }

// String and GoString never show the key (nor does %v or %#v of a Key or *Key).
func (k Key) String() string { return "key " + k.id + " from " + k.source }

// GoString is String.
func (k Key) GoString() string { return k.String() }

// ParseKey reads a key: 32 bytes written as 64 hex digits or as standard base64 (44
// characters, e.g. `openssl rand -base64 32` or `mysqlpilot keygen`), surrounding white space
// ignored. source names where the text came from; errors name it and never quote the text.
func ParseKey(text, source string) (*Key, error) {
	s := strings.TrimSpace(text)
	var raw []byte
	if b, err := hex.DecodeString(s); err == nil && len(b) == keyLen {
		raw = b
	} else if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == keyLen {
		raw = b
	}
	if raw == nil {
		return nil, fmt.Errorf("%s: not a 256-bit key (want 32 random bytes as base64 or 64 hex digits, e.g. `mysqlpilot keygen`; %d characters given)", source, len(s))
	}
	k := &Key{source: source}
	copy(k.k[:], raw)
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("mysqlpilot seal key id"))
	k.id = hex.EncodeToString(m.Sum(nil)[:idLen])
	return k, nil
}

// NewKeyText returns a new random key as base64 text, for ParseKey.
func NewKeyText() string {
	var b [keyLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

func (k *Key) aead(salt []byte, context string) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, k.k[:], salt, "mysqlpilot seal v1 stream key\x00"+context, keyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func nonce(dst *[nonceLen]byte, i uint64, last bool) {
	clear(dst[:])
	binary.BigEndian.PutUint64(dst[3:11], i)
	if last {
		dst[11] = 1
	}
}

// Writer seals what is written to it onto an underlying writer. Close writes the last chunk;
// a stream not closed does not open.
type Writer struct {
	w    io.Writer
	hdr  []byte // the header, until it is written with the first chunk
	aead cipher.AEAD
	buf  []byte // plaintext of the current chunk, then its ciphertext in place
	n    int    // plaintext bytes in buf
	i    uint64
	err  error
	nb   [nonceLen]byte
}

// NewWriter returns a Writer sealing under k, for context, onto w. Nothing reaches w before
// the first chunk (or Close), so w may be a pipe whose reader starts later.
func NewWriter(w io.Writer, k *Key, context string) (*Writer, error) {
	hdr := make([]byte, headerLen)
	copy(hdr, magic)
	id, _ := hex.DecodeString(k.id)
	copy(hdr[len(magic):], id)
	salt := hdr[len(magic)+idLen:]
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	a, err := k.aead(salt, context)
	if err != nil {
		return nil, err
	}
	return &Writer{w: w, hdr: hdr, aead: a, buf: make([]byte, ChunkSize+tagLen)}, nil
}

// Write buffers p and seals every full chunk. A chunk is sealed only once a byte after it is
// written, so the last chunk is always shorter than ChunkSize.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	done := 0
	for len(p) > 0 {
		if w.n == ChunkSize {
			if err := w.flush(false); err != nil {
				return done, err
			}
		}
		c := copy(w.buf[w.n:ChunkSize], p)
		w.n += c
		p = p[c:]
		done += c
	}
	return done, nil
}

func (w *Writer) flush(last bool) error {
	if w.hdr != nil {
		if _, err := w.w.Write(w.hdr); err != nil {
			w.err = err
			return err
		}
		w.hdr = nil
	}
	nonce(&w.nb, w.i, last)
	out := w.aead.Seal(w.buf[:0], w.nb[:], w.buf[:w.n], nil)
	if _, err := w.w.Write(out); err != nil {
		w.err = err
		return err
	}
	w.i++
	w.n = 0
	return nil
}

// Close seals the last chunk (the bytes left, fewer than ChunkSize, possibly none). It does
// not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.n == ChunkSize {
		if err := w.flush(false); err != nil {
			return err
		}
	}
	if err := w.flush(true); err != nil {
		return err
	}
	w.err = errors.New("seal: write after Close")
	return nil
}

// Reader opens a sealed stream.
type Reader struct {
	r    io.Reader
	aead cipher.AEAD
	buf  []byte
	out  []byte // opened plaintext not yet returned
	i    uint64
	done bool
	err  error
	nb   [nonceLen]byte
}

// NewReader reads the header from r and checks that it was sealed under k: a stream that is
// not sealed, or sealed under another key, fails here, before any of its data is returned; one
// sealed for another context fails on its first chunk.
func NewReader(r io.Reader, k *Key, context string) (*Reader, error) {
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("the stream is too short for a sealed header: %w", ErrAuth)
		}
		return nil, err
	}
	if string(hdr[:len(magic)]) != magic {
		return nil, fmt.Errorf("the stream is not sealed by mysqlpilot (no %q header): %w", strings.TrimSpace(magic), ErrAuth)
	}
	if id := hex.EncodeToString(hdr[len(magic) : len(magic)+idLen]); id != k.id {
		return nil, fmt.Errorf("sealed under key id %s; the %s has id %s: %w", id, k.source, k.id, ErrWrongKey)
	}
	a, err := k.aead(hdr[len(magic)+idLen:], context)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, aead: a, buf: make([]byte, ChunkSize+tagLen)}, nil
}

// Read returns opened plaintext. Every byte it returns has been authenticated; io.EOF comes
// only after the last chunk opened, so a stream cut short never ends cleanly.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.next()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *Reader) next() {
	n, err := io.ReadFull(r.r, r.buf)
	last := false
	switch {
	case err == nil:
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		last = true
		if n < tagLen {
			r.err = fmt.Errorf("the stream ends after chunk %d without its last chunk (truncated): %w", r.i, ErrAuth)
			return
		}
	default:
		r.err = err
		return
	}
	nonce(&r.nb, r.i, last)
	out, oerr := r.aead.Open(r.buf[:0], r.nb[:], r.buf[:n], nil)
	if oerr != nil {
		r.err = fmt.Errorf("chunk %d (at byte %d of the sealed stream) does not open: %w", r.i, int64(headerLen)+int64(r.i)*int64(ChunkSize+tagLen), ErrAuth)
		return
	}
	r.out = out
	r.i++
	r.done = last
}

// Overhead is the number of bytes sealing adds to n bytes of plaintext.
func Overhead(n int64) int64 { return int64(headerLen) + (n/ChunkSize+1)*tagLen }
