// Package storage is the one interface mysqlpilot needs of object storage, with three backends
// below it: local (a directory), s3 and manta.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) by Get, Stat and Delete for a missing object.
var ErrNotFound = errors.New("object not found")

// Object describes a stored object.
type Object struct {
	Name    string // full name, relative to the backend's root/prefix, "/"-separated
	Size    int64
	ModTime time.Time
}

// Store is an object store. Names are "/"-separated paths relative to the backend's root; a
// backend creates whatever directories it needs.
type Store interface {
	// Put streams r to name. The size is not known in advance; memory stays bounded.
	// An object becomes visible under name only when complete: a failed Put leaves nothing
	// under name (it may leave a temporary object that a later Put or Delete removes).
	Put(ctx context.Context, name string, r io.Reader) (Object, error)
	// Get opens name for reading.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// Stat describes name.
	Stat(ctx context.Context, name string) (Object, error)
	// List returns every object whose name starts with prefix, sorted by name.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes name. Deleting a missing object returns ErrNotFound.
	Delete(ctx context.Context, name string) error
	// String names the backend and its location for logs, with no secret in it ("s3://bucket/prefix").
	String() string
}
