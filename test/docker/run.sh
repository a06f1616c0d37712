#!/usr/bin/env bash
# npm run test:docker: the images built and run on a real Docker engine
# (test/docker/cluster.test.ts). Outside `npm test` and CI for its length
# (docs/development.md says how long it takes). Needs root, Debian's docker.io,
# docker-compose and debootstrap (installed here when missing), and the network
# to Debian's archive and the npm registry; no image registry.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian's archive"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: /tmp/llm-router-dockerd.log)"
  nohup dockerd >/tmp/llm-router-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null
fi

start=$(date +%s)
bash docker/base/build.sh
base=llm-router/node-base:20-bookworm
# the classic builder (Debian's engine has no buildx); the second image reuses the first one's npm ci layer
DOCKER_BUILDKIT=0 docker build --network host -f docker/Dockerfile.router --build-arg NODE_IMAGE=$base -t llm-router/router:local .
DOCKER_BUILDKIT=0 docker build --network host -f docker/Dockerfile.node --build-arg NODE_IMAGE=$base -t llm-router/node:cpu .
echo "images built in $(($(date +%s) - start)) s"

npx jest --selectProjects docker --runInBand
echo "test:docker took $(($(date +%s) - start)) s"
