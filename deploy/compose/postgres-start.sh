#!/bin/sh
# PostgreSQL of the compose lab, from Debian's package: made on first start in the volume
# (password from POSTGRES_PASSWORD, scram-sha-256 from the lab network), then run in the foreground.
set -eu
data=/var/lib/postgresql/data
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -s "$data/PG_VERSION" ]; then
  install -d -o postgres -g postgres -m 0700 "$data"
  pwfile=$(mktemp) && printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > "$pwfile" && chown postgres "$pwfile"
  su postgres -s /bin/sh -c "$bin/initdb -D $data -U postgres --auth-local=peer --auth-host=scram-sha-256 --pwfile=$pwfile"
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$data/pg_hba.conf"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -w start -o '-c listen_addresses=127.0.0.1'"
  su postgres -s /bin/sh -c "psql -v ON_ERROR_STOP=1 -c 'CREATE DATABASE ${POSTGRES_DB:-dvic}'"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -w stop"
fi
install -d -o postgres -g postgres /run/postgresql
exec su postgres -s /bin/sh -c "exec $bin/postgres -D $data -c listen_addresses='*' -c max_connections=200"
