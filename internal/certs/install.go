package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths mysqld and the replication connection are pointed at.
type Files struct {
	Dir, CA, Cert, Key string
}

// FilesIn names the files Install writes into dir.
func FilesIn(dir string) Files {
	return Files{Dir: dir, CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem")}
}

// InstallOptions say whose certificate Install makes, and where.
type InstallOptions struct {
	Dir      string   // private directory (0700), beside the datadir, not in it
	Node     string   // the certificate's common name
	Hosts    []string // its subject alternative names: every name and address replicas may use
	CAName   string   // the common name of a CA made here
	Password string   // seals and opens the CA key (the replication password)
	// UID and GID own the directory and files (the OS user mysqld runs as); -1 keeps ours.
	UID, GID int
	Now      time.Time
}

// Install makes sure o.Dir holds the cluster CA's certificate (ca.pem) and this node's
// certificate and key (server.pem, server-key.pem, mode 0600), creating the cluster CA in s
// when there is none. The certificate in place is kept while it is signed by the cluster CA,
// has more than RenewBefore left and names exactly o.Hosts; otherwise a new key and
// certificate are made, and only then is the CA key opened. did says what happened, for the log.
func Install(ctx context.Context, s Store, o InstallOptions) (f Files, did string, err error) {
	f = FilesIn(o.Dir)
	rec, ca, created, err := EnsureCA(ctx, s, o.CAName, o.Node, o.Password, o.Now)
	if err != nil {
		return f, "", err
	}
	pub, err := rec.Certificate()
	if err != nil {
		return f, "", err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return f, "", fmt.Errorf("certs: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return f, "", fmt.Errorf("certs: %w", err)
	}
	if err := os.Lchown(o.Dir, o.UID, o.GID); err != nil {
		return f, "", fmt.Errorf("certs: %w", err)
	}
	why := reissue(pub, f, o.Hosts, o.Now)
	if why == "" {
		if err := o.write(f.CA, pub.CertPEM); err != nil {
			return f, "", err
		}
		// Kept files keep their content, not necessarily their owner (a changed mysql uid
		// in a new image): mysqld must read its key or it refuses to start.
		for _, p := range []string{f.Key, f.Cert} {
			if err := o.own(p); err != nil {
				return f, "", err
			}
		}
		return f, "kept this node's certificate", nil
	}
	if ca == nil {
		if ca, err = rec.Open(o.Password); err != nil {
			return f, "", err
		}
	}
	leaf, err := ca.Issue(o.Node, o.Hosts, o.Now)
	if err != nil {
		return f, "", err
	}
	for _, w := range []struct {
		path string
		data []byte
	}{{f.CA, pub.CertPEM}, {f.Key, leaf.KeyPEM}, {f.Cert, leaf.CertPEM}} {
		if err := o.write(w.path, w.data); err != nil {
			return f, "", err
		}
	}
	did = "issued this node's certificate (" + why + ")"
	if created {
		did = "created the cluster CA and " + did
	}
	return f, did, nil
}

// own makes path mode 0600 and owned as asked.
func (o InstallOptions) own(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Lchown(path, o.UID, o.GID); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// reissue says why the files in f need a new certificate, "" when they do not.
func reissue(ca *CA, f Files, hosts []string, now time.Time) string {
	cert, err := os.ReadFile(f.Cert)
	if errors.Is(err, os.ErrNotExist) {
		return "none yet"
	}
	if err != nil {
		return "unreadable: " + err.Error()
	}
	key, err := os.ReadFile(f.Key)
	if err != nil {
		return "its key is unreadable: " + err.Error()
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return "its key does not match: " + err.Error()
	}
	return Reusable(ca, cert, hosts, now)
}

// write puts data at path, mode 0600 and owned as asked, atomically, unless it is there already.
func (o InstallOptions) write(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && samePEM(old, data) {
		return o.own(path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	fail := func(err error) error {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	if err := tmp.Chown(o.UID, o.GID); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	return nil
}
