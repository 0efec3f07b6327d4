package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Client talks to a node's control socket (the CLI side).
type Client struct {
	http *http.Client
}

// DefaultTimeout bounds a request that is not a backup (status, switchover, maintenance).
const DefaultTimeout = 30 * time.Second

// NewClient dials the socket at path; a request takes at most timeout (0: no limit but its
// context's, for a backup that may take hours).
func NewClient(path string, timeout time.Duration) *Client {
	return &Client{http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Do sends a request and decodes the JSON answer into out; a non-2xx answer is an error
// carrying the server's message.
func (c *Client) Do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://mysqlpilot"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return fmt.Errorf("control socket: %w (is mysqlpilot running in this container?)", ne)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status // a body without a message: say at least what failed
		}
		return errors.New(e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
