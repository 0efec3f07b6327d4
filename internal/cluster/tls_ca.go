package cluster

import (
	"context"
)

// keyTLSCA holds the cluster CA of mysql.tls auto (certs.Record: the certificate in clear, its
// key sealed under the replication password; never a key in clear).
const keyTLSCA = "tls-ca"

// LoadCA returns the cluster CA record's bytes, nil when the cluster has none (certs.Store).
func (k *Cluster) LoadCA(ctx context.Context) ([]byte, error) {
	kv, _, err := k.c.Get(ctx, k.o.Prefix+keyTLSCA)
	if err != nil || kv == nil {
		return nil, err
	}
	return kv.Value, nil
}

// CreateCA writes the cluster CA record only if there is none (check-and-set at index 0), so
// of nodes racing to create it one wins; it reports whether this one did (certs.Store).
func (k *Cluster) CreateCA(ctx context.Context, rec []byte) (bool, error) {
	return k.c.CAS(ctx, k.o.Prefix+keyTLSCA, rec, 0)
}
