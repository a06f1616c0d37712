#!/bin/sh
# Starts NATS for the cluster compose files with the login from the environment.
# nats.conf holds no password: a `$NATS_PASSWORD` reference there is parsed as
# a config value, and one that starts with a digit (half of all hex passwords,
# as `openssl rand -hex 24` makes them) stops the server ("Expected a top-level
# value to end with a new line..."; nats-server issues 885, 3431, 5189). So the
# password goes, quoted, into a private copy of the file, which the server reads.
# Arguments go to nats-server (`-t`: check the configuration and exit).
set -eu
conf="${NATS_CONF:-/etc/nats/llm-router.conf}"
out="${NATS_RUNTIME_CONF:-/tmp/nats.conf}"
: "${NATS_PASSWORD:?set NATS_PASSWORD}"
case "$NATS_PASSWORD" in
  *'"'* | *'\'* | *"
"*)
    echo "NATS_PASSWORD must not contain quotes, backslashes or line breaks (use URL-safe characters)" >&2
    exit 1
    ;;
esac
umask 077
{
  cat "$conf"
  printf '\nauthorization {\n  user: llm-router\n  password: "%s"\n}\n' "$NATS_PASSWORD"
} >"$out"
exec nats-server --config "$out" "$@"
