#!/usr/bin/env bash
# Builds the local base image mysqlpilot/base-mariadb:bookworm without any registry:
# debootstrap a minimal Debian 12 rootfs with MariaDB + mariabackup from the machine's own
# Debian mirror, slim it, and `docker import` it. Cached: does nothing if the image exists.
#
# usage: docker/make-base-image.sh [--force]
#   --force          rebuild even if the image exists
#   BASE_IMAGE=...   image name (default mysqlpilot/base-mariadb:bookworm)
#   DEBIAN_MIRROR=.. mirror URL (default: the first bookworm mirror in /etc/apt/sources*)
set -euo pipefail

IMAGE=${BASE_IMAGE:-mysqlpilot/base-mariadb:bookworm}
SUITE=bookworm
PACKAGES=mariadb-server,mariadb-backup,mariadb-client,ca-certificates,tzdata

die() { echo "make-base-image: $*" >&2; exit 1; }

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

docker info >/dev/null 2>&1 ||
  die "docker daemon not reachable: start it with 'service docker start' (or run 'dockerd &' as root), then retry"

if [ "$force" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "make-base-image: $IMAGE exists (cached; --force rebuilds it)"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root: run this as root (or with sudo)"
if ! command -v debootstrap >/dev/null; then
  echo "make-base-image: installing debootstrap"
  apt-get install -y debootstrap >/dev/null || die "debootstrap missing and 'apt-get install debootstrap' failed"
fi

# The mirror that serves "$SUITE" itself (not -security/-updates): the first match in the
# deb822 .sources stanzas, else in one-line sources.list entries.
find_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk -v s="$SUITE" 'BEGIN { RS = "" }
      { uri = ""; deb = 0; ok = 0; n = split($0, line, "\n")
        for (i = 1; i <= n; i++) {
          m = split(line[i], w, /[ \t]+/)
          if (w[1] == "Types:")  for (j = 2; j <= m; j++) if (w[j] == "deb") deb = 1
          if (w[1] == "URIs:")   uri = w[2]
          if (w[1] == "Suites:") for (j = 2; j <= m; j++) if (w[j] == s) ok = 1
        }
        if (deb && ok && uri != "" && !found) { print uri; found = 1 }
      }' "$f")
    [ -z "$uri" ] || { echo "$uri"; return; }
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed 's/\[[^]]*\]//' | awk -v s="$SUITE" '$1 == "deb" && $3 == s && !found { print $2; found = 1 }'
}
mirror=${DEBIAN_MIRROR:-$(find_mirror || true)}
[ -n "$mirror" ] || die "no '$SUITE' mirror found in /etc/apt/sources.list*: set DEBIAN_MIRROR=http://..."

work=$(mktemp -d /var/tmp/mysqlpilot-base.XXXXXX)
root=$work/rootfs
cleanup() {
  # Unmount anything debootstrap left mounted before deleting, and never cross filesystems.
  grep -o " $root/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "make-base-image: debootstrap $SUITE from $mirror (1-2 minutes)..."
t0=$SECONDS
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  die "debootstrap failed (full log above, last 30 lines)"
}
echo "make-base-image: debootstrap took $((SECONDS - t0))s"

# The mysql user and the directories the server needs. The datadir is left EMPTY: the
# package's postinst initialised one with Debian's defaults; mysqlpilot initialises its own.
chroot "$root" getent passwd mysql >/dev/null ||
  chroot "$root" useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin mysql
find "$root/var/lib/mysql" -mindepth 1 -delete 2>/dev/null || true
mkdir -p "$root/var/lib/mysql" "$root/run/mysqld" "$root/snapshots"
chroot "$root" chown mysql:mysql /var/lib/mysql /run/mysqld /snapshots
chmod 0750 "$root/var/lib/mysql" "$root/snapshots"
chmod 0755 "$root/run/mysqld"

# Container-friendly server defaults (Debian's 50-server.cnf binds 127.0.0.1 only).
cat >"$root/etc/mysql/mariadb.conf.d/99-container.cnf" <<'EOF'
# mysqlpilot base image: reachable by the other containers, no DNS lookups on connect.
[mariadbd]
bind-address = 0.0.0.0
skip-name-resolve
EOF

# Slim it: docs, man pages, translations, apt lists/caches, logs, the build host's files.
rm -rf "$root"/usr/share/{doc,man,info,lintian,linda}/* "$root"/usr/share/locale/* \
  "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/*
find "$root/usr/share/mysql" -mindepth 1 -maxdepth 1 -type d \
  ! -name english ! -name charsets ! -name mysql-test -exec test -e '{}/errmsg.sys' ';' -exec rm -rf '{}' +
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
# Keep later `apt-get install`s in derived images slim too.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-mysqlpilot-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
echo "make-base-image: rootfs is $(du -sh --one-file-system "$root" | cut -f1) after slimming"

echo "make-base-image: importing $IMAGE ..."
t1=$SECONDS
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
tar --numeric-owner --one-file-system -C "$root" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $SUITE + $PACKAGES" \
    - "$IMAGE" >/dev/null
# A --force rebuild leaves the old image as <none>: drop it unless a container still uses it.
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "make-base-image: import took $((SECONDS - t1))s; built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MiB", $1 / 1048576 }'))"
