package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// CheckName reports whether name is a valid object name: a relative, "/"-separated path with
// no empty, "." or ".." segment, no trailing "/", no NUL and no backslash. Every backend accepts
// exactly these names, so a snapshot written to one can be copied to another.
func CheckName(name string) error {
	if name == "" {
		return errors.New("empty object name")
	}
	if strings.HasSuffix(name, "/") {
		return fmt.Errorf("object name %q ends with /", name)
	}
	return checkSegments(name)
}

// CheckPrefix reports whether prefix is a valid List prefix: empty, or a CheckName-valid name
// optionally followed by "/".
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkSegments(strings.TrimSuffix(prefix, "/"))
}

func checkSegments(name string) error {
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("object name %q is absolute; names are relative to the store's root", name)
	}
	if strings.ContainsAny(name, "\x00\\") {
		return fmt.Errorf("object name %q contains a NUL or a backslash", name)
	}
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "":
			return fmt.Errorf("object name %q has an empty segment", name)
		case ".", "..":
			return fmt.Errorf("object name %q has a %q segment", name, seg)
		}
	}
	return nil
}

// ContextReader returns a reader that reads from r until ctx is done, then fails with ctx's
// error. Backends wrap a Put's reader with it so that cancelling ctx aborts the upload between
// two reads even when the transport would keep reading. A Read already blocked in r is not
// interrupted.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
