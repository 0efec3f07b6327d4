package control

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mysqlpilot/mysqlpilot/internal/snapshot"
)

// BackupResponse is POST /backup's answer: the published record when the backup finished
// (or, with ?wait=false, only the id of the backup started).
type BackupResponse struct {
	ID     string           `json:"id"`
	Status string           `json:"status"` // "complete" or "started"
	Record *snapshot.Record `json:"record,omitempty"`
}

// BackupFunc takes a snapshot of the local server now, named id (Snapshotter.BackupNow under
// the node's lifetime).
type BackupFunc func(id string) (snapshot.Record, error)

// BackupHandler serves POST /backup on the control socket: it takes a snapshot of the local
// server now (backup). The backup runs under the node's lifetime, not the request's: a
// client that goes away does not abort it. By default the answer waits for the backup
// (200 with the record); ?wait=false answers at once (202 with the id). 409 when a backup runs
// already here or elsewhere; 500 with the error otherwise.
func BackupHandler(backup BackupFunc, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
			return
		}
		id := snapshot.NewID(time.Now())
		type result struct {
			rec snapshot.Record
			err error
		}
		done := make(chan result, 1)
		go func() {
			rec, err := backup(id)
			if err != nil {
				log.Error("requested snapshot failed", "snapshot", id, "err", err)
			}
			done <- result{rec, err}
		}()
		if r.URL.Query().Get("wait") == "false" {
			// Wait briefly so an immediate refusal (busy, locked) is still reported.
			select {
			case res := <-done:
				writeBackupResult(w, id, res.rec, res.err)
			case <-time.After(500 * time.Millisecond):
				writeJSON(w, http.StatusAccepted, BackupResponse{ID: id, Status: "started"})
			}
			return
		}
		select {
		case res := <-done:
			writeBackupResult(w, id, res.rec, res.err)
		case <-r.Context().Done():
		}
	}
}

func writeBackupResult(w http.ResponseWriter, id string, rec snapshot.Record, err error) {
	switch {
	case errors.Is(err, snapshot.ErrBackupRunning), errors.Is(err, snapshot.ErrLocked):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, BackupResponse{ID: id, Status: "complete", Record: &rec})
	}
}
