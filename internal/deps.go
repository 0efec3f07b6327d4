//go:build tools

// Package internal pins the module's dependencies before every package uses them.
package internal

import (
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/hashicorp/consul/api"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/spf13/pflag"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/sys/unix"
)
