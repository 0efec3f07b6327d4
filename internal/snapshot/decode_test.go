package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Decode gives back the backup tool's stream, whatever the compression, and refuses an object
// that does not match its record.
func TestDecode_GivesTheToolsStreamAndChecksTheObject(t *testing.T) {
	for _, compress := range []string{CompressZstd, CompressLZ4, CompressNone} {
		t.Run(compress, func(t *testing.T) {
			store, rec := backupToMem(t, compress)
			var out bytes.Buffer
			n, err := Decode(context.Background(), store, rec, nil, false, &out)
			if err != nil {
				t.Fatal(err)
			}
			if n != rec.RawSize || int64(out.Len()) != rec.RawSize {
				t.Errorf("decoded %d bytes (buffer %d), the record's raw size is %d", n, out.Len(), rec.RawSize)
			}
			dir := t.TempDir()
			if err := fakeUnpack(&out, dir); err != nil {
				t.Fatalf("the decoded stream does not unpack: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "xtrabackup_binlog_info")); string(b) != testBinlogInfo {
				t.Errorf("binlog info %q", b)
			}

			store.corrupt(t, rec.Path, int(rec.Size)-1)
			if _, err := Decode(context.Background(), store, rec, nil, false, &bytes.Buffer{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("corrupt object: err = %v, want ErrCorrupt", err)
			}
		})
	}
}
