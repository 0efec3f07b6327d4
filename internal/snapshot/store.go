package snapshot

import (
	"fmt"

	"github.com/mysqlpilot/mysqlpilot/internal/config"
	"github.com/mysqlpilot/mysqlpilot/internal/storage"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/local"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/manta"
	"github.com/mysqlpilot/mysqlpilot/internal/storage/s3"
)

// NewStore builds the object store named by snapshot.backend from the storage
// section. It returns nil, "none", nil for the backend "none".
func NewStore(cfg *config.Config) (storage.Store, string, error) {
	backend := cfg.Snapshot.Backend
	switch backend {
	case "", "none":
		return nil, "none", nil
	case "local":
		st, err := local.New(cfg.Storage.Local.Dir)
		if err != nil {
			return nil, backend, fmt.Errorf("config: storage.local: %w", err)
		}
		return st, backend, nil
	case "s3":
		c := cfg.Storage.S3
		st, err := s3.New(s3.Options{Endpoint: c.Endpoint, Bucket: c.Bucket, Region: c.Region, AccessKey: c.AccessKey,
			SecretKey: c.SecretKey, Prefix: c.Prefix, UseTLS: !c.Insecure, PathStyle: true, PartSize: int64(c.PartSize) << 20})
		if err != nil {
			return nil, backend, fmt.Errorf("config: storage.s3: %w", err)
		}
		return st, backend, nil
	case "manta":
		c := cfg.Storage.Manta
		o := manta.Options{URL: c.URL, User: c.User, Subuser: c.Subuser, Role: c.Role, KeyID: c.KeyID,
			KeyPath: c.KeyPath, Dir: c.Dir, Durability: c.Durability}
		if c.Key != "" {
			o.KeyPEM = []byte(c.Key)
		}
		st, err := manta.New(o)
		if err != nil {
			return nil, backend, fmt.Errorf("config: storage.manta: %w", err)
		}
		return st, backend, nil
	}
	return nil, backend, fmt.Errorf("config: snapshot.backend: unknown backend %q (want local, s3, manta or none)", backend)
}
