package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func key(t testing.TB, text string) *Key {
	t.Helper()
	k, err := ParseKey(text, "test key")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	keyA = strings.Repeat("ab", 32)
	keyB = "qHFbGWb0uJlE2AJZxG31kKUNnNAW4NdPzT2nI2MoE5c="
)

func seal(t testing.TB, k *Key, plain []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, k, "ctx")
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes, so chunking does not follow the caller's writes.
	for p := plain; len(p) > 0; {
		n := min(len(p), 7919)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func open(k *Key, sealed []byte) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(sealed), k, "ctx")
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestRoundTrip(t *testing.T) {
	k := key(t, keyA)
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3 * ChunkSize, 3*ChunkSize + 12345} {
		plain := make([]byte, n)
		rand.Read(plain)
		sealed := seal(t, k, plain)
		if int64(len(sealed)) != int64(n)+Overhead(int64(n)) {
			t.Errorf("%d bytes: sealed to %d, Overhead says %d", n, len(sealed), int64(n)+Overhead(int64(n)))
		}
		got, err := open(k, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%d bytes: open = %d bytes, %v", n, len(got), err)
		}
	}
}

func TestSameInputSealsDifferently(t *testing.T) {
	k := key(t, keyA)
	a, b := seal(t, k, []byte("same")), seal(t, k, []byte("same"))
	if bytes.Equal(a, b) {
		t.Error("two streams sealed alike: the salt is not fresh")
	}
}

func TestWrongKeyFailsBeforeAnyData(t *testing.T) {
	sealed := seal(t, key(t, keyA), []byte("secret rows"))
	_, err := NewReader(bytes.NewReader(sealed), key(t, keyB), "ctx")
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("open with another key: %v, want ErrWrongKey", err)
	}
	if !strings.Contains(err.Error(), "test key") {
		t.Errorf("error %q does not name the key's source", err)
	}
}

func TestNotSealed(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("MPSEAL1\n"), []byte(strings.Repeat("x", 100))} {
		if _, err := open(key(t, keyA), in); !errors.Is(err, ErrAuth) {
			t.Errorf("open %q: %v, want ErrAuth", in, err)
		}
	}
}

// Every alteration an attacker with write access to the store can make fails: a flipped bit
// anywhere, a stream cut at any length, a chunk dropped, two chunks swapped, a chunk from
// another stream under the same key.
func TestTamperingFails(t *testing.T) {
	k := key(t, keyA)
	plain := make([]byte, 3*ChunkSize+100)
	rand.Read(plain)
	sealed := seal(t, k, plain)
	chunk := ChunkSize + tagLen
	c := func(i int) []byte { return sealed[headerLen+i*chunk : min(headerLen+(i+1)*chunk, len(sealed))] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	hdr := sealed[:headerLen]

	cases := map[string][]byte{
		"cut at a chunk boundary":     sealed[:headerLen+2*chunk],
		"cut inside the last chunk":   sealed[:len(sealed)-1],
		"cut inside a chunk":          sealed[:headerLen+chunk+100],
		"cut after the header":        sealed[:headerLen],
		"last chunk dropped":          cat(hdr, c(0), c(1), c(2)),
		"middle chunk dropped":        cat(hdr, c(0), c(2), c(3)),
		"chunks swapped":              cat(hdr, c(1), c(0), c(2), c(3)),
		"bytes appended":              cat(sealed, []byte{0}),
		"another stream's salt":       cat(seal(t, k, plain)[:headerLen], c(0), c(1), c(2), c(3)),
		"another stream's chunk":      cat(hdr, c(0), seal(t, k, plain)[headerLen+chunk:headerLen+2*chunk], c(2), c(3)),
		"full chunk marked as last":   cat(hdr, c(0)),
		"flipped bit in the salt":     flip(sealed, headerLen-1),
		"flipped bit in a chunk":      flip(sealed, headerLen+chunk+5),
		"flipped bit in a tag":        flip(sealed, headerLen+chunk-1),
		"flipped bit in last chunk":   flip(sealed, len(sealed)-20),
		"flipped bit at the very end": flip(sealed, len(sealed)-1),
	}
	for name, in := range cases {
		got, err := open(k, in)
		if !errors.Is(err, ErrAuth) {
			t.Errorf("%s: open = %d bytes, %v; want ErrAuth", name, len(got), err)
		}
	}
}

// A stream opens only under the context it was sealed with: a sealed object renamed or swapped
// in the store (a binlog put in another's place) fails on its first chunk.
func TestContextBindsTheStream(t *testing.T) {
	k := key(t, keyA)
	sealed := seal(t, k, []byte("binlog 7"))
	r, err := NewReader(bytes.NewReader(sealed), k, "binlog:3/20261205T100000Z/mysql-bin.000008")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); !errors.Is(err, ErrAuth) || len(got) != 0 {
		t.Errorf("opened under another context: %q, %v", got, err)
	}
}

// The reader never hands out a byte of a chunk that did not authenticate.
func TestReaderReturnsOnlyAuthenticatedBytes(t *testing.T) {
	k := key(t, keyA)
	plain := make([]byte, 2*ChunkSize+10)
	sealed := flip(seal(t, k, plain), headerLen+ChunkSize+tagLen+3) // in chunk 1
	r, err := NewReader(bytes.NewReader(sealed), k, "ctx")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrAuth) || len(got) != ChunkSize {
		t.Errorf("read %d bytes, %v; want chunk 0 only (%d) and ErrAuth", len(got), err, ChunkSize)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}

func TestParseKey(t *testing.T) {
	a, b := key(t, keyA), key(t, " "+strings.ToUpper(keyA)+"\n")
	if a.ID() != b.ID() || len(a.ID()) != 16 {
		t.Errorf("ids %q %q: the same key in hex of either case must have one 16-digit id", a.ID(), b.ID())
	}
	if key(t, keyB).ID() == a.ID() {
		t.Error("two keys share an id")
	}
	if _, err := ParseKey(NewKeyText(), "generated"); err != nil {
		t.Errorf("NewKeyText does not parse: %v", err)
	}
	for _, bad := range []string{"", "hunter2-not-a-key", strings.Repeat("ab", 31), keyB[:40]} {
		_, err := ParseKey(bad, "snapshot.encrypt.keyFile /run/secrets/k")
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "snapshot.encrypt.keyFile") || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("ParseKey(%q) = %q: must name the source and never quote the text", bad, err)
		}
	}
	for _, s := range []string{a.String(), fmt.Sprintf("%v %+v %#v %s", a, a, a, *a), fmt.Sprintf("%v %#v", *a, *a)} {
		if strings.Contains(strings.ToLower(s), keyA[:8]) || strings.Contains(s, "0xab") || !strings.Contains(s, a.ID()) {
			t.Errorf("formatted key %q shows its bytes or lacks its id", s)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	k := key(b, keyA)
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	b.SetBytes(int64(len(buf)))
	w, _ := NewWriter(io.Discard, k, "ctx")
	for b.Loop() {
		w.Write(buf)
	}
	w.Close()
}

func BenchmarkOpen(b *testing.B) {
	k := key(b, keyA)
	plain := make([]byte, 16<<20)
	sealed := seal(b, k, plain)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		r, _ := NewReader(bytes.NewReader(sealed), k, "ctx")
		io.Copy(io.Discard, r)
	}
}

// Nothing reaches the underlying writer before data does: a pipe whose reader starts later
// (the store's upload) must not block NewWriter.
func TestNewWriterWritesNothingYet(t *testing.T) {
	var out bytes.Buffer
	if _, err := NewWriter(&out, key(t, keyA), "ctx"); err != nil || out.Len() != 0 {
		t.Errorf("NewWriter wrote %d bytes, %v", out.Len(), err)
	}
}
