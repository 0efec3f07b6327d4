#!/usr/bin/env bash
# Builds versitygw (Apache-2.0), a real S3 gateway that serves a local directory, for the
# s3 integration tests (test/harness/s3.go). The binary is cached: a second run is instant.
#
# usage: install-versitygw.sh [DEST_DIR]   (default: $MYSQLPILOT_TOOLS or ~/.cache/mysqlpilot/bin)
set -euo pipefail
VERSION=v1.8.0
dest=${1:-${MYSQLPILOT_TOOLS:-$HOME/.cache/mysqlpilot/bin}}
bin="$dest/versitygw"
stamp="$dest/.versitygw-${VERSION}"
if [ -x "$bin" ] && [ -f "$stamp" ]; then
  echo "versitygw ${VERSION}: cached at $bin"
  exit 0
fi
mkdir -p "$dest"
echo "install-versitygw: building versitygw ${VERSION} (about a minute on first run)..."
# Build outside any module so the project's go.mod is neither read nor touched.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
GOBIN="$dest" CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "-s -w" \
  "github.com/versity/versitygw/cmd/versitygw@${VERSION}"
touch "$stamp"
echo "versitygw ${VERSION}: installed at $bin"
