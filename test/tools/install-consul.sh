#!/usr/bin/env bash
# Builds the real Consul binary from its Go module at v1.16.3, the last MPL-2.0 release
# (1.16.4 and later are BSL: never bump this). Consul's go.mod carries replace directives, so
# `go install` refuses it; a throwaway module that requires Consul plus its own require list
# (without the replace lines) builds it. The binary is cached: a second run is instant.
#
# usage: install-consul.sh [DEST_DIR]   (default: $MYSQLPILOT_TOOLS or ~/.cache/mysqlpilot/bin)
set -euo pipefail
VERSION=v1.16.3
dest=${1:-${MYSQLPILOT_TOOLS:-$HOME/.cache/mysqlpilot/bin}}
bin="$dest/consul"
# Capture first: under pipefail, grep -q closing the pipe early could fail the check.
if [ -x "$bin" ] && v=$("$bin" version 2>/dev/null) && [[ $v == *"Consul ${VERSION}"* ]]; then
  echo "consul ${VERSION}: cached at $bin"
  exit 0
fi
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GONOSUMDB=github.com/hashicorp GOFLAGS=-mod=mod CGO_ENABLED=0
gomod=$(go mod download -json "github.com/hashicorp/consul@${VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod" ] || { echo "install-consul: could not download github.com/hashicorp/consul@${VERSION}" >&2; exit 1; }
# Keep Consul's require blocks, drop its replace directives (they point into its own tree).
{
  echo "module consulbuild"
  echo
  echo "go 1.20"
  echo
  echo "require github.com/hashicorp/consul ${VERSION}"
  awk '
    /^replace[[:space:]]*\(/ { skip=1; next }
    skip && /^\)/            { skip=0; next }
    skip                     { next }
    /^replace[[:space:]]/    { next }
    /^require/ || inreq      { print; if ($0 ~ /^require[[:space:]]*\(/) inreq=1; if (inreq && $0 ~ /^\)/) inreq=0 }
  ' "$gomod" | grep -v 'github.com/hashicorp/consul/\(api\|sdk\|proto-public\|envoyextensions\|troubleshoot\) v0.0.0'
} > "$work/go.mod"
cat > "$work/main.go" <<'GO'
package main
GO
cd "$work"
rm -f main.go
echo "install-consul: building consul ${VERSION} (a few minutes on first run)..."
go build -trimpath -ldflags "-s -w" -o "$bin.tmp" github.com/hashicorp/consul
mv "$bin.tmp" "$bin"
# Not `| head -1`: under pipefail, head closing the pipe early fails the script (SIGPIPE, 141).
v=$("$bin" version)
echo "${v%%$'\n'*}"
