// Package certs makes the TLS material of mysql.tls.mode "auto": a cluster CA created once by
// the first node that needs it, kept in Consul with its private key sealed (AES-256-GCM under
// a key derived with PBKDF2-SHA256 from the replication password every node already has), and
// one server certificate per node, signed by that CA, written into a private directory beside
// the datadir for mysqld to use. The CA key is decrypted only in memory, only by a node that
// must issue itself a certificate, and never written to disk, logged or stored in clear.
//
// The package imports only the standard library; the Consul key is behind Store
// (implemented by internal/cluster).
package certs

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Validity and renewal of the certificates.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore: a node re-issues its certificate at start when less than this is left.
	RenewBefore = 30 * 24 * time.Hour
	// backdate covers clocks a little behind the issuer's.
	backdate = time.Hour
)

// Sealing parameters of new records. PBKDF2-SHA256 with 600,000 iterations is OWASP's
// current figure for SHA-256: the replication password may be one a person chose, so the
// derivation must be slow.
const (
	kdfPBKDF2SHA256   = "pbkdf2-sha256"
	DefaultIterations = 600_000
	minIterations     = 100_000
	maxIterations     = 10_000_000
	recordVersion     = 1
)

// ErrWrongPassword: the CA record was sealed under another replication password.
var ErrWrongPassword = errors.New("the cluster's TLS CA key does not open with this node's replication password " +
	"(mysql.replPassword, MYSQL_REPL_PASSWORD): every node must have the same one; if the password was changed on purpose, " +
	"delete the Consul key <prefix>tls-ca so that a new CA is made (then restart every node)")

// Record is the Consul value of the cluster CA: its certificate in clear, its private key
// (PKCS#8 DER) sealed with AES-256-GCM; the certificate is the sealing's additional data, so
// a sealed key cannot be paired with another certificate.
type Record struct {
	Version int `json:"version"`
	// Creator is the node that made the CA (whose replication password seals it), for the
	// error a node whose password does not open it reports.
	Creator    string `json:"creator,omitempty"`
	CertPEM    string `json:"certPEM"`
	KDF        string `json:"kdf"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
	SealedKey  []byte `json:"sealedKey"`
}

// CA is the cluster CA: its certificate, and its key when opened.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey // nil unless the CA was made here or opened
}

// NewCA makes a CA: ECDSA P-256, valid CAValidity from now, allowed to sign leaf
// certificates only.
func NewCA(name string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"mysqlpilot"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// Seal returns the CA's record with its key sealed under password (iterations 0:
// DefaultIterations).
func (ca *CA) Seal(password string, iterations int) (Record, error) {
	if ca.key == nil {
		return Record{}, errors.New("certs: seal: the CA's key is not open")
	}
	if password == "" {
		return Record{}, errors.New("certs: seal: empty password")
	}
	if iterations == 0 {
		iterations = DefaultIterations
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return Record{}, fmt.Errorf("certs: seal: %w", err)
	}
	r := Record{Version: recordVersion, CertPEM: string(ca.CertPEM), KDF: kdfPBKDF2SHA256, Iterations: iterations,
		Salt: make([]byte, 16)}
	if _, err := rand.Read(r.Salt); err != nil {
		return Record{}, fmt.Errorf("certs: seal: %w", err)
	}
	aead, err := r.aead(password)
	if err != nil {
		return Record{}, err
	}
	r.Nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(r.Nonce); err != nil {
		return Record{}, fmt.Errorf("certs: seal: %w", err)
	}
	r.SealedKey = aead.Seal(nil, r.Nonce, der, []byte(r.CertPEM))
	clear(der)
	return r, nil
}

func (r Record) aead(password string) (cipher.AEAD, error) {
	if r.KDF != kdfPBKDF2SHA256 {
		return nil, fmt.Errorf("certs: CA record: unknown key derivation %q (made by a newer mysqlpilot?)", r.KDF)
	}
	if r.Iterations > maxIterations {
		// A record edited to hang every node that must issue a certificate.
		return nil, fmt.Errorf("certs: CA record: %d key derivation iterations, more than %d: the record in Consul is not one mysqlpilot wrote", r.Iterations, maxIterations)
	}
	if r.Iterations < minIterations || len(r.Salt) < 16 {
		return nil, fmt.Errorf("certs: CA record: key derivation too weak (%d iterations, %d-byte salt)", r.Iterations, len(r.Salt))
	}
	k, err := pbkdf2.Key(sha256.New, password, r.Salt, r.Iterations, 32)
	if err != nil {
		return nil, fmt.Errorf("certs: derive key: %w", err)
	}
	defer clear(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return cipher.NewGCM(block)
}

// Certificate parses the record's CA certificate (no password needed).
func (r Record) Certificate() (*CA, error) {
	if r.Version != recordVersion {
		return nil, fmt.Errorf("certs: CA record version %d is not %d (made by another mysqlpilot?)", r.Version, recordVersion)
	}
	cert, err := parseCert([]byte(r.CertPEM))
	if err != nil {
		return nil, fmt.Errorf("certs: CA record: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("certs: CA record: the certificate is not a CA")
	}
	return &CA{Cert: cert, CertPEM: []byte(r.CertPEM)}, nil
}

// Open returns the CA with its key, unsealed with password: ErrWrongPassword when the
// password is not the one it was sealed under.
func (r Record) Open(password string) (*CA, error) {
	ca, err := r.Certificate()
	if err != nil {
		return nil, err
	}
	aead, err := r.aead(password)
	if err != nil {
		return nil, err
	}
	if len(r.Nonce) != aead.NonceSize() {
		return nil, errors.New("certs: CA record: bad nonce")
	}
	der, err := aead.Open(nil, r.Nonce, r.SealedKey, []byte(r.CertPEM))
	if err != nil {
		if r.Creator != "" {
			return nil, fmt.Errorf("%w (the CA was made by node %s, under its password)", ErrWrongPassword, r.Creator)
		}
		return nil, ErrWrongPassword
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("certs: CA record: key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(ca.Cert.PublicKey) {
		return nil, errors.New("certs: CA record: the key does not belong to the certificate")
	}
	ca.key = key
	return ca, nil
}

// Leaf is a node's certificate and key, PEM-encoded.
type Leaf struct {
	CertPEM, KeyPEM []byte
}

// Issue signs a new server certificate for node (ECDSA P-256, valid LeafValidity): hosts are
// its subject alternative names (IP addresses and DNS names both; the first DNS name, else
// node, is its common name). Usable for server and client authentication.
func (ca *CA) Issue(node string, hosts []string, now time.Time) (Leaf, error) {
	if ca.key == nil {
		return Leaf{}, errors.New("certs: issue: the CA's key is not open")
	}
	if len(hosts) == 0 {
		return Leaf{}, errors.New("certs: issue: no host names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, fmt.Errorf("certs: issue: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return Leaf{}, err
	}
	dns, ips := splitHosts(hosts)
	notAfter := now.Add(LeafValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node, Organization: []string{"mysqlpilot"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Leaf{}, fmt.Errorf("certs: issue: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Leaf{}, fmt.Errorf("certs: issue: %w", err)
	}
	return Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}, nil
}

// Reusable says why the leaf certificate certPEM must be re-issued, or "" when it is signed
// by ca, has more than RenewBefore left at now, and names exactly hosts.
func Reusable(ca *CA, certPEM []byte, hosts []string, now time.Time) string {
	cert, err := parseCert(certPEM)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return "not valid under the cluster CA: " + err.Error()
	}
	if left := cert.NotAfter.Sub(now); left < RenewBefore {
		return fmt.Sprintf("expires %s (in less than %d days)", cert.NotAfter.UTC().Format(time.DateOnly), int(RenewBefore.Hours()/24))
	}
	if have, want := certHosts(cert), normHosts(hosts); !slices.Equal(have, want) {
		return fmt.Sprintf("names %s, this node is now %s", strings.Join(have, ","), strings.Join(want, ","))
	}
	return ""
}

// Store is the Consul key that holds the cluster CA's record (internal/cluster).
type Store interface {
	// LoadCA returns the record's bytes, nil when there is none.
	LoadCA(ctx context.Context) ([]byte, error)
	// CreateCA writes the record only if there is none yet (check-and-set at index 0) and
	// reports whether it did.
	CreateCA(ctx context.Context, rec []byte) (bool, error)
}

// EnsureCA returns the cluster CA's record, creating it (with a new CA named name, sealed
// under password) when the cluster has none. Of nodes racing to create it, one wins and the
// others read its record. created says whether this call made it; the CA then comes back
// open (ca), so the caller need not derive the key again.
func EnsureCA(ctx context.Context, s Store, name, creator, password string, now time.Time) (rec Record, ca *CA, created bool, err error) {
	for range 3 {
		b, err := s.LoadCA(ctx)
		if err != nil {
			return Record{}, nil, false, fmt.Errorf("certs: read the cluster CA: %w", err)
		}
		if b != nil {
			if err := json.Unmarshal(b, &rec); err != nil {
				return Record{}, nil, false, fmt.Errorf("certs: the cluster CA record is not JSON: %w", err)
			}
			if _, err := rec.Certificate(); err != nil {
				return Record{}, nil, false, err
			}
			return rec, nil, false, nil
		}
		ca, err := NewCA(name, now)
		if err != nil {
			return Record{}, nil, false, err
		}
		if rec, err = ca.Seal(password, 0); err != nil {
			return Record{}, nil, false, err
		}
		rec.Creator = creator
		b, err = json.Marshal(rec)
		if err != nil {
			return Record{}, nil, false, fmt.Errorf("certs: %w", err)
		}
		ok, err := s.CreateCA(ctx, b)
		if err != nil {
			return Record{}, nil, false, fmt.Errorf("certs: store the cluster CA: %w", err)
		}
		if ok {
			return rec, ca, true, nil
		}
		// Another node created it first: read theirs.
	}
	return Record{}, nil, false, errors.New("certs: the cluster CA key was created and removed while this node read it: retry")
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// splitHosts returns hosts' DNS names and IP addresses, without duplicates or empties.
func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range normHosts(hosts) {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// normHosts is hosts sorted, lower case, IPs in canonical form, without duplicates or empties.
func normHosts(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if h != "" {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func certHosts(c *x509.Certificate) []string {
	hosts := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return normHosts(hosts)
}

// samePEM compares two PEM files ignoring surrounding white space.
func samePEM(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }
