package manta

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/mysqlpilot/mysqlpilot/internal/storage"
)

// Error is an error answer from Manta: the HTTP status and the {"code","message"} JSON body.
// errors.Is(err, storage.ErrNotFound) holds for ResourceNotFound, DirectoryDoesNotExist and a
// bodiless 404 (the answer to HEAD).
type Error struct {
	StatusCode int
	Code       string // Manta's code without an "Error" suffix, e.g. "ResourceNotFound"; "" when the body had none
	Message    string
	RequestID  string // x-request-id, for Manta's operators
}

// Error formats e as "Code: message (HTTP 404, request id ...)", adding a hint for
// authentication failures.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString(http.StatusText(e.StatusCode))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	fmt.Fprintf(&b, " (HTTP %d", e.StatusCode)
	if e.RequestID != "" {
		b.WriteString(", request id " + e.RequestID)
	}
	b.WriteString(")")
	if e.IsAuth() {
		b.WriteString("; check the Manta user, subuser and key id, that the public key is registered with the account, and the clock")
	}
	return b.String()
}

// Is makes errors.Is(err, storage.ErrNotFound) work for a missing object or directory.
func (e *Error) Is(target error) bool {
	if target != storage.ErrNotFound {
		return false
	}
	switch e.Code {
	case "ResourceNotFound", "DirectoryDoesNotExist":
		return true
	case "":
		return e.StatusCode == http.StatusNotFound
	}
	return false
}

// IsAuth reports whether Manta refused the request's credentials (as opposed to the operation).
func (e *Error) IsAuth() bool {
	switch e.Code {
	case "AuthorizationRequired", "AuthorizationSchemeNotAllowed", "InvalidSignature", "InvalidKeyId",
		"KeyDoesNotExist", "InvalidAlgorithm", "AccountDoesNotExist", "UserDoesNotExist", "InvalidHeader",
		"InvalidCredentials", "AccountBlocked":
		return true
	case "":
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

// Temporary reports whether retrying the same request later may succeed (503 and friends).
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusServiceUnavailable || e.StatusCode == http.StatusBadGateway ||
		e.StatusCode == http.StatusGatewayTimeout || e.Code == "ThrottledError" || e.Code == "ServiceUnavailable"
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// decodeError builds an *Error from a failed response and closes its body.
func decodeError(resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var j struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &j) == nil && j.Code != "" {
		e.Code = strings.TrimSuffix(j.Code, "Error")
		if e.Code == "" || j.Code == "InternalError" || j.Code == "ThrottledError" {
			e.Code = j.Code
		}
		e.Message = j.Message
	} else if s := strings.TrimSpace(string(body)); s != "" && len(s) < 200 {
		e.Message = s
	}
	return e
}
