package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/mysql"
)

// RestoreStateFile is the file in a restored datadir that says where it came from.
const RestoreStateFile = "mysqlpilot_restore.json"

// RestoreState is what a datadir remembers of its restore: the snapshot, the GTID position to
// set, and whether it was set. It makes a restore sound across a crash (a datadir restored but
// never finished gets its position at the next start, instead of replicating from nothing)
// and stops re-seed loops (a node never re-seeds twice from the same snapshot).
type RestoreState struct {
	Snapshot string    `json:"snapshot"`
	GTID     string    `json:"gtid"`
	Restored time.Time `json:"restored"`
	Finished bool      `json:"finished"`
}

// ReadRestoreState returns the datadir's restore state, or nil when it was never restored.
func ReadRestoreState(datadir string) (*RestoreState, error) {
	p := filepath.Join(datadir, RestoreStateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: restore state: %w", err)
	}
	var s RestoreState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot: restore state %s: %w (remove the file only if the server's GTID position is known to be set)", p, err)
	}
	return &s, nil
}

// WriteRestoreState replaces the datadir's restore state atomically (temporary file, fsync,
// rename).
func WriteRestoreState(datadir string, s RestoreState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	p := filepath.Join(datadir, RestoreStateFile)
	err = mysql.WriteFileAtomic(p, b, 0o600)
	if err == nil {
		err = syncDir(datadir) // the rename itself survives a power loss
	}
	if err != nil {
		return fmt.Errorf("snapshot: write restore state %s: %w", p, err)
	}
	return nil
}
