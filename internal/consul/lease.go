package consul

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Sessions is what a Lease needs of Consul; *Client implements it (tests fake it).
type Sessions interface {
	CreateSession(ctx context.Context, o SessionOptions) (string, error)
	RenewSession(ctx context.Context, id string) error
	DestroySession(ctx context.Context, id string) error
	Acquire(ctx context.Context, key, session string, value []byte) (bool, error)
	Release(ctx context.Context, key, session string, value []byte) (bool, error)
}

var _ Sessions = (*Client)(nil)

// Lease is a session that holds locks: the one helper behind mysqlpilot's two locks.
//
// Its holder renews it in one of two ways. The leader lock's lease is renewed from inside the
// HA loop (Renew, through ha.Cluster.RenewSession), because the loop fences on its own
// deadline and must see every renewal's outcome. The backup lock has no loop of its own: its
// lease renews itself for as long as the backup runs (KeepAlive).
type Lease struct {
	s   Sessions
	ID  string
	ttl time.Duration
}

// NewLease creates the session described by o (CreateSession refuses a TTL outside
// MinSessionTTL..MaxSessionTTL, so KeepAlive always has a TTL to divide).
func NewLease(ctx context.Context, s Sessions, o SessionOptions) (*Lease, error) {
	id, err := s.CreateSession(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Lease{s: s, ID: id, ttl: o.TTL}, nil
}

// Renew resets the lease's TTL; an error wrapping ErrSessionGone means the lease (and every
// lock it held) is gone.
func (l *Lease) Renew(ctx context.Context) error { return l.s.RenewSession(ctx, l.ID) }

// Acquire takes key for this lease, writing value, unless another session holds it.
func (l *Lease) Acquire(ctx context.Context, key string, value []byte) (bool, error) {
	return l.s.Acquire(ctx, key, l.ID, value)
}

// Release lets go of key, writing value (nil keeps the key's value as it is).
func (l *Lease) Release(ctx context.Context, key string, value []byte) (bool, error) {
	return l.s.Release(ctx, key, l.ID, value)
}

// Destroy ends the lease at once; its locks are released.
func (l *Lease) Destroy(ctx context.Context) error { return l.s.DestroySession(ctx, l.ID) }

// KeepAlive renews the lease every third of its TTL until stop is called; stop waits for the
// renewals to end and is safe to call more than once. onFail hears each failed renewal; after
// one that wraps ErrSessionGone the renewals end, since the lease is gone for good.
func (l *Lease) KeepAlive(onFail func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := l.Renew(ctx); err != nil {
					onFail(err)
					if errors.Is(err, ErrSessionGone) {
						return
					}
				}
			}
		}
	}()
	return sync.OnceFunc(func() { cancel(); <-done })
}
