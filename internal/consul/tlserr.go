package consul

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
)

// TLSError is a TLS mismatch between this Client and the agent, which waiting does not fix: it
// names the config field to change. WaitReady returns it at once.
type TLSError struct {
	Fix string // what to change, naming the config field
	Err error  // the TLS or HTTP error
}

func (e *TLSError) Error() string { return "consul: TLS: " + e.Fix + " (" + e.Err.Error() + ")" }

func (e *TLSError) Unwrap() error { return e.Err }

// classifyTLS returns a *TLSError when err is a TLS mismatch, and nil otherwise.
func classifyTLS(err error) error {
	if err == nil {
		return nil
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	text := err.Error()
	fix := ""
	switch {
	case errors.As(err, &unknownCA):
		fix = "the agent's certificate is not signed by a CA this node trusts: set consul.caFile to the CA that signed it"
	case errors.As(err, &hostname):
		fix = "the agent's certificate is not valid for the host in consul.address: use a name or address it holds"
	case errors.As(err, &invalid):
		fix = "the agent's certificate is not valid now (expired, or not yet valid): renew it"
	case strings.Contains(text, "tls: certificate required"):
		fix = "the agent requires a client certificate: set consul.certFile and consul.keyFile"
	case strings.Contains(text, "tls: bad certificate"), strings.Contains(text, "tls: unknown certificate authority"),
		strings.Contains(text, "tls: unknown certificate"):
		fix = "the agent refused the client certificate: set consul.certFile and consul.keyFile to one signed by a CA the agent trusts (its tls ca_file)"
	case errors.As(err, &record) || strings.Contains(text, "server gave HTTP response to HTTPS client"):
		fix = "the agent answers plain HTTP on that port: use http:// in CONSUL (consul.scheme \"http\") or the agent's HTTPS port"
	default:
		if code, body := statusCode(err); code == http.StatusBadRequest && strings.Contains(body, "HTTP request to an HTTPS server") {
			fix = "the agent's port speaks HTTPS: set CONSUL=https://host:port (consul.scheme \"https\") and consul.caFile"
		}
	}
	if fix == "" {
		return nil
	}
	return &TLSError{Fix: fix, Err: err}
}
