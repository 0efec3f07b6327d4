package manta

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for the ECDSA algorithms
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// signer makes the HTTP Signature (draft-cavage-http-signatures, the scheme Manta documents)
// for each request. It signs the Date header only, as Manta's own tools do.
type signer struct {
	keyID     string // "/login/keys/<md5>" or "/login/subuser/keys/<md5>"
	algorithm string // "rsa-sha256", "ecdsa-sha256", ...
	sign      func(data []byte) ([]byte, error)
	now       func() time.Time
}

// keyInfo is a parsed private key with the fingerprints Manta and ssh-keygen show for it.
type keyInfo struct {
	private   crypto.Signer
	algorithm string
	md5       string // "aa:bb:..." (what Manta's keyId needs)
	sha256    string // "SHA256:..." (what ssh-keygen -l shows by default)
}

// loadKey parses a private key in any format golang.org/x/crypto/ssh reads: PKCS#1 and
// PKCS#8 PEM, SEC 1 EC PEM and the OpenSSH format, optionally passphrase-protected.
func loadKey(pemBytes, passphrase []byte) (*keyInfo, error) {
	pemBytes = normalizePEM(pemBytes)
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if len(passphrase) == 0 {
			return nil, errors.New("the private key is passphrase-protected and no passphrase was given")
		}
		raw, err = ssh.ParseRawPrivateKeyWithPassphrase(pemBytes, passphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	k := &keyInfo{}
	switch key := raw.(type) {
	case *rsa.PrivateKey:
		k.private, k.algorithm = key, "rsa-sha256"
	case *ecdsa.PrivateKey:
		k.private = key
		switch key.Curve {
		case elliptic.P256():
			k.algorithm = "ecdsa-sha256"
		case elliptic.P384():
			k.algorithm = "ecdsa-sha384"
		case elliptic.P521():
			k.algorithm = "ecdsa-sha512"
		default:
			return nil, fmt.Errorf("unsupported ECDSA curve %s (Manta accepts P-256, P-384 and P-521)", key.Curve.Params().Name)
		}
	case ed25519.PrivateKey:
		k.private, k.algorithm = key, "ed25519-sha512"
	case *ed25519.PrivateKey:
		k.private, k.algorithm = *key, "ed25519-sha512"
	default:
		return nil, fmt.Errorf("unsupported private key type %T (use an RSA or ECDSA key)", raw)
	}
	pub, err := ssh.NewPublicKey(k.private.Public())
	if err != nil {
		return nil, fmt.Errorf("derive public key: %w", err)
	}
	k.md5 = ssh.FingerprintLegacyMD5(pub)
	k.sha256 = ssh.FingerprintSHA256(pub)
	return k, nil
}

// normalizePEM undoes the ways a PEM key gets flattened into one environment variable: the
// Autopilot Pattern images passed MANTA_PRIVATE_KEY with newlines replaced by "#", others
// write literal "\n". Neither "#" nor a backslash can occur in a PEM key.
func normalizePEM(b []byte) []byte {
	if bytes.IndexByte(b, '\n') >= 0 {
		return b
	}
	b = bytes.ReplaceAll(b, []byte(`\n`), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("#"), []byte("\n"))
}

// resolveKeyID returns the MD5 fingerprint to put in the keyId. Manta looks keys up by MD5
// fingerprint only; a configured SHA256 fingerprint (ssh-keygen's default display) or an
// "MD5:"-prefixed one is accepted and checked against the key, so a key/ID mix-up is reported
// at start-up instead of as an InvalidSignature on the first backup.
func resolveKeyID(configured string, k *keyInfo) (string, error) {
	id := strings.TrimSpace(configured)
	switch {
	case id == "":
		return k.md5, nil
	case strings.HasPrefix(id, "SHA256:"):
		if id != k.sha256 {
			return "", fmt.Errorf("key id %s does not match the private key (its fingerprints are %s and %s)", id, k.sha256, k.md5)
		}
		return k.md5, nil
	default:
		id = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(id, "MD5:"), "md5:"))
		if id != k.md5 {
			return "", fmt.Errorf("key id %s does not match the private key (its fingerprints are %s and %s)", configured, k.md5, k.sha256)
		}
		return k.md5, nil
	}
}

func newSigner(o Options, now func() time.Time) (*signer, error) {
	pemBytes := o.KeyPEM
	if len(pemBytes) == 0 {
		if o.KeyPath == "" {
			return nil, errors.New("no private key: set KeyPath or KeyPEM")
		}
		b, err := os.ReadFile(o.KeyPath)
		if err != nil {
			return nil, fmt.Errorf("read private key: %w", err)
		}
		pemBytes = b
	}
	k, err := loadKey(pemBytes, o.KeyPassphrase)
	if err != nil {
		return nil, err
	}
	fp, err := resolveKeyID(o.KeyID, k)
	if err != nil {
		return nil, err
	}
	keyID := "/" + o.User + "/keys/" + fp
	if o.Subuser != "" {
		keyID = "/" + o.User + "/" + o.Subuser + "/keys/" + fp
	}
	s := &signer{keyID: keyID, algorithm: k.algorithm, now: now}
	switch key := k.private.(type) {
	case *rsa.PrivateKey:
		s.sign = func(data []byte) ([]byte, error) {
			d := sha256.Sum256(data)
			return rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
		}
	case *ecdsa.PrivateKey:
		h := map[string]crypto.Hash{"ecdsa-sha256": crypto.SHA256, "ecdsa-sha384": crypto.SHA384, "ecdsa-sha512": crypto.SHA512}[k.algorithm]
		s.sign = func(data []byte) ([]byte, error) {
			hh := h.New()
			hh.Write(data)
			return ecdsa.SignASN1(rand.Reader, key, hh.Sum(nil)) // DER, as http-signature expects
		}
	case ed25519.PrivateKey:
		s.sign = func(data []byte) ([]byte, error) { return ed25519.Sign(key, data), nil }
	}
	return s, nil
}

// authorize sets the Date and Authorization headers of req.
func (s *signer) authorize(req *http.Request) error {
	date := s.now().UTC().Format(http.TimeFormat)
	req.Header.Set("Date", date)
	sig, err := s.sign([]byte("date: " + date))
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	req.Header.Set("Authorization", fmt.Sprintf(`Signature keyId="%s",algorithm="%s",headers="date",signature="%s"`,
		s.keyID, s.algorithm, base64.StdEncoding.EncodeToString(sig)))
	return nil
}
