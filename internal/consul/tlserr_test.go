package consul

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

func TestClassifyTLS(t *testing.T) {
	urlErr := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://127.0.0.1:8501/v1/status/leader", Err: err}
	}
	tests := []struct {
		name string
		err  error
		want string // in the fix; "" for not a TLS mismatch
	}{
		{"unknown CA", urlErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), "set consul.caFile"},
		{"wrong host", urlErr(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "consul"}), "not valid for the host in consul.address"},
		{"expired", urlErr(x509.CertificateInvalidError{Reason: x509.Expired}), "not valid now"},
		{"client certificate required", urlErr(&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}), "set consul.certFile and consul.keyFile"},
		{"client certificate refused", urlErr(&net.OpError{Op: "remote error", Err: errors.New("tls: unknown certificate authority")}), "refused the client certificate"},
		{"https to a plain port", urlErr(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), "answers plain HTTP"},
		{"http to an https port", fmt.Errorf("leader: %w", api.StatusError{Code: 400, Body: "Client sent an HTTP request to an HTTPS server."}), "CONSUL=https://"},
		{"connection refused", urlErr(&net.OpError{Op: "dial", Err: errors.New("connection refused")}), ""},
		{"another 400", api.StatusError{Code: 400, Body: "bad request"}, ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classifyTLS(tt.err)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("classifyTLS = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !permanent(err) || !errors.Is(err, tt.err) {
				t.Fatalf("classifyTLS = %v, want a permanent *TLSError saying %q and wrapping the cause", err, tt.want)
			}
		})
	}
}
