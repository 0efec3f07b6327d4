package supervisor

import (
	"strings"
	"sync"
	"time"
)

// gracePeriod is how long a cancelled command gets between SIGTERM and SIGKILL.
const gracePeriod = 10 * time.Second

// tailBuffer keeps the last tailMax bytes written to it: enough of stderr to explain a failure.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 2048

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
