#!/usr/bin/env bash
# postgres-image.sh builds a local PostgreSQL image from Debian's packages, for
# machines that reach Debian's mirror but no container registry.
#
#   scripts/postgres-image.sh [IMAGE]        (default brownout/postgres:15)
#
# The image behaves like the official postgres image where tests depend on it:
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB create the role and database
# on first start, password (scram-sha-256) auth over TCP, listen on all
# addresses inside the container, and "database system is ready to accept
# connections" in the log. A CMD of `postgres -c k=v ...` passes the settings
# through, as the official entrypoint does (testcontainers sends `-c fsync=off`).
#
# The Debian mirror and suite are read from this machine's apt configuration,
# so nothing here names a mirror host. An existing image is reused.
set -euo pipefail

image=${1:-brownout/postgres:15}
pgmajor=15

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "postgres-image: $image exists, reusing it"
  exit 0
fi

# The mirror: the first deb URI of the machine's apt sources (deb822 or one-line).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/ {print $2; exit}' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
    [ -n "$mirror" ] && break
  done
fi
if [ -z "$mirror" ]; then
  echo "postgres-image: no Debian mirror found in /etc/apt/sources.list{,.d}" >&2
  exit 1
fi
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ -z "$suite" ]; then
  echo "postgres-image: VERSION_CODENAME missing from /etc/os-release" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null; then
  echo "postgres-image: installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

rootfs=$(mktemp -d /tmp/brownout-pg-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "postgres-image: debootstrap $suite from the machine's mirror into $rootfs"
start=$(date +%s)
debootstrap --variant=minbase --include="postgresql-$pgmajor" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  echo "postgres-image: debootstrap failed; last lines of $rootfs.log:" >&2
  tail -20 "$rootfs.log" >&2
  exit 1
}
rm -f "$rootfs.log"

cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint compatible with the official postgres image's environment.
set -eu
bin=/usr/lib/postgresql/@PGMAJOR@/bin
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [ "${1:-postgres}" = postgres ]; then
  [ $# -gt 0 ] && shift
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
      echo "docker-entrypoint: POSTGRES_PASSWORD must be set" >&2
      exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    as_postgres "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
      # A private, socket-only server creates the database, as the official image does.
      as_postgres "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
      as_postgres "$bin/psql" -v ON_ERROR_STOP=1 -U "$user" -d postgres \
        -c "CREATE DATABASE \"$db\"" >/dev/null
      as_postgres "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    fi
  fi
  # docker stop sends SIGTERM, which postgres takes as "smart" shutdown (wait
  # for every client to leave); the official image sets STOPSIGNAL SIGINT for
  # a fast shutdown instead. docker import cannot set STOPSIGNAL everywhere,
  # so the entrypoint stays as PID 1 and turns SIGTERM into SIGINT.
  setpriv --reuid=postgres --regid=postgres --init-groups \
    "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@" &
  pid=$!
  trap 'kill -INT "$pid" 2>/dev/null' TERM INT
  status=0
  while kill -0 "$pid" 2>/dev/null; do
    wait "$pid" || status=$?
  done
  exit "$status"
fi
exec "$@"
ENTRYPOINT
sed -i "s/@PGMAJOR@/$pgmajor/" "$rootfs/usr/local/bin/docker-entrypoint.sh"
chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
# Keep the image small: package caches and docs are not needed at run time.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale

echo "postgres-image: docker import as $image"
tar -C "$rootfs" -c . | docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
  --change 'CMD ["postgres"]' \
  --change 'EXPOSE 5432' \
  --change 'ENV PGDATA=/var/lib/postgresql/data LANG=C.UTF-8' \
  - "$image" >/dev/null
echo "postgres-image: built $image in $(( $(date +%s) - start ))s"
