#!/bin/sh
# First start: create the cluster in $PGDATA with $POSTGRES_USER (default
# postgres) as its superuser, password $POSTGRES_PASSWORD, and the database
# $POSTGRES_DB (default: the user's name), as the official image does. Then,
# and on every later start, run the command (postgres) in the foreground.
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-instructions
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != "postgres" ]; then
    # on the socket only while the database is made: nothing outside sees a half-made server
    pg_ctl --pgdata="$PGDATA" --wait --options="-c listen_addresses=''" start
    createdb --username="$user" --owner="$user" "$db"
    pg_ctl --pgdata="$PGDATA" --wait --mode=fast stop
  fi
fi
if [ "${1:-}" = "postgres" ]; then
  shift
  exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
