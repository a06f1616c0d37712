#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU machine with no network and maybe no
# Node.js into one file, .gpu/runtime.tar.xz (carry ".gpu" to the machine):
#
#   bin/node                  this machine's node (v20, x86-64), stripped
#   app/main.cjs              the router (bin/main.ts) bundled with esbuild
#   app/gpu-measure.cjs       bench/gpu-measure.ts and the bench/gpu-*.ts it imports, bundled
#   app/gpu-build.cjs         bench/gpu-build.ts, bundled
#   node_modules/             only what the bundles leave out: node-llama-cpp and
#                             its dependencies (from this checkout's node_modules,
#                             the lockfile's versions), its CPU binaries
#                             (@node-llama-cpp/linux-x64), chart.js and
#                             eventsource-parser (the dashboard resolves them)
#   node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda/
#                             node-llama-cpp's CUDA build for CUDA_ARCH (default
#                             90-real: H100/H200) against CUDA 13.0, made here
#                             (bench/gpu-build.ts): the prebuilt
#                             @node-llama-cpp/linux-x64-cuda (160 MB, PTX only for
#                             sm_90) does not fit in what a run can carry
#   cuda-kit/                 for gpu.sh's fall-back build on the GPU machine:
#                             llama.cpp's source (trimmed), cuBLAS headers, and
#                             link-time stubs of libcublas.so.13 / libcuda.so.1
#
#   bash bench/gpu-pack.sh
#
# Env: CUDA_ARCH (90-real), NVCC (nvcc on PATH, else /usr/local/cuda/bin/nvcc),
# CUBLAS_INCLUDE (a folder with cuBLAS 13's cublas_v2.h, from a CUDA 13 toolkit or
# the nvidia-cublas wheel; needed once for the CUDA build when the toolkit has no
# cuBLAS), GPU_PACK_WORK (/tmp/llm-router-gpu-pack: build folders and the cache
# of the CUDA build, which takes about an hour on 2 cores), NO_CUDA_BUILD=1
# (pack without it: gpu.sh then builds on the GPU machine, ~4 min).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
WORK=${GPU_PACK_WORK:-/tmp/llm-router-gpu-pack}
CUDA_ARCH=${CUDA_ARCH:-90-real}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CUBLAS_INCLUDE=${CUBLAS_INCLUDE:-}
NM=$ROOT/node_modules
STAGE=$WORK/stage
T0=$(date +%s)

log() { printf '[%s +%4ds] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - T0))" "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

[ -d "$NM/node-llama-cpp" ] || die "no node_modules here: run npm ci first"
ESBUILD=$NM/.bin/esbuild
[ -x "$ESBUILD" ] || die "no esbuild in node_modules (it comes with tsx)"
NLC_VERSION=$(node -p 'require("./node_modules/node-llama-cpp/package.json").version')
NODE_BIN=$(command -v node)
case "$(node -p 'process.arch + " " + process.versions.node.split(".")[0]')" in
  "x64 2"[0-9]) ;;
  *) die "need an x86-64 node >= 20 to carry, found $(node -p 'process.arch + " " + process.version')" ;;
esac

rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,app,cuda-kit} "$ROOT/.gpu"

log "bundling the router and the bench helpers with esbuild"
# require.main is the bundle for every bundled file: bin/healthcheck.ts's "run when started directly"
# must not fire inside main.cjs. pg-hstore: only PostgreSQL's hstore needs it, and it is not installed.
bundle() { # entry outfile
  "$ESBUILD" "$1" --bundle --platform=node --target=node20 --format=cjs --outfile="$2" \
    --external:node-llama-cpp --external:pg-hstore --define:require.main=undefined --log-level=warning
}
bundle bin/main.ts "$STAGE/app/main.cjs"
bundle bench/gpu-measure.ts "$STAGE/app/gpu-measure.cjs"
bundle bench/gpu-build.ts "$STAGE/app/gpu-build.cjs"

log "copying node-llama-cpp and its dependencies (lockfile versions)"
# the dependency closure of the externals, resolved the way node resolves them
node - "$NM" > "$WORK/closure.txt" <<'EOF'
const fs = require("fs"), path = require("path");
const nm = process.argv[2], root = path.dirname(nm);
const seen = new Set();
function resolveFrom(dir, name) {
  for (let d = dir; d.startsWith(root); d = path.dirname(d)) {
    const p = path.join(d, "node_modules", name);
    if (fs.existsSync(path.join(p, "package.json"))) return p;
    if (d === root) break;
  }
  return null;
}
function walk(dir) {
  if (seen.has(dir)) return;
  seen.add(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  // optional dependencies of node-llama-cpp are its prebuilt binaries: only linux-x64 is wanted (listed below)
  for (const name of Object.keys(pkg.dependencies || {})) {
    const p = resolveFrom(dir, name);
    if (!p) throw new Error(`${name} (needed by ${dir}) is not installed`);
    walk(p);
  }
}
for (const name of ["node-llama-cpp", "@node-llama-cpp/linux-x64", "chart.js", "eventsource-parser"]) {
  walk(path.join(nm, name));
}
for (const d of [...seen].sort()) console.log(path.relative(root, d));
EOF
(cd "$ROOT" && rsync -aR --exclude='*.map' --exclude='*.d.ts' \
  --exclude='node_modules/node-llama-cpp/llama/gitRelease.bundle' \
  --exclude='node_modules/node-llama-cpp/llama/llama.cpp/' \
  --exclude='node_modules/node-llama-cpp/llama/localBuilds/' \
  --exclude='node_modules/node-llama-cpp/llama/lastBuild.json' \
  --files-from="$WORK/closure.txt" --recursive ./ "$STAGE/")
log "  $(wc -l <"$WORK/closure.txt") packages, $(du -sh "$STAGE/node_modules" | cut -f1)"

log "node: $NODE_BIN ($(node -v)), stripped"
strip -o "$STAGE/bin/node" "$NODE_BIN" 2>/dev/null || cp "$NODE_BIN" "$STAGE/bin/node"
"$STAGE/bin/node" -e 'process.exit(0)' || die "the stripped node does not run"

# ---- the CUDA kit: stubs, cuBLAS headers, llama.cpp's source --------------------------
KIT=$STAGE/cuda-kit
find_cublas_include() {
  local d
  for d in "$CUBLAS_INCLUDE" "$(dirname "$NVCC")/../include" /usr/local/cuda/include \
    "$WORK/cublas-include"; do
    [ -n "$d" ] && [ -f "$d/cublas_v2.h" ] && {
      echo "$d"
      return
    }
  done
  python3 - <<'EOF' 2>/dev/null || true
import glob, site
for s in site.getsitepackages():
    for h in glob.glob(s + "/nvidia/**/include/cublas_v2.h", recursive=True):
        print(h.rsplit("/", 1)[0]); raise SystemExit
EOF
}
INC=$(find_cublas_include | head -1)
if [ -n "$INC" ]; then
  mkdir -p "$KIT/cublas-include" "$WORK/cublas-include"
  cp "$INC"/cublas*.h "$KIT/cublas-include/"
  # kept for the next pack
  [ "$INC" = "$WORK/cublas-include" ] || cp "$INC"/cublas*.h "$WORK/cublas-include/"
  log "cuBLAS headers from $INC ($(grep -m1 'define CUBLAS_VER_MAJOR' "$INC/cublas_api.h" | awk '{print $3}').$(grep -m1 'define CUBLAS_VER_MINOR' "$INC/cublas_api.h" | awk '{print $3}'))"
else
  log "no cuBLAS headers found (set CUBLAS_INCLUDE): the kit has none"
fi

log "link-time stubs of libcublas.so.13 and libcuda.so.1"
mkdir -p "$KIT/stubs"
stub() { # name soname version-node symbol-source-header
  local c="$WORK/$1-stub.c"
  {
    echo "/* link-time stub only: never loaded at run time */"
    grep -ohE "\\b(cublas|cu)[A-Z][A-Za-z0-9_]* *\\(" "$4" | tr -d ' (' | sort -u |
      while read -r s; do printf 'void %s(void) {}\nvoid %s_v2(void) {}\n' "$s" "$s"; done | awk '!seen[$0]++'
  } >"$c"
  local ver=()
  if [ -n "$3" ]; then
    printf '%s { global: *; };\n' "$3" >"$WORK/$1.map"
    ver=("-Wl,--version-script=$WORK/$1.map")
  fi
  gcc -shared -fPIC -w -o "$KIT/stubs/$2" "$c" -Wl,-soname,"$2" "${ver[@]}"
  ln -sf "$2" "$KIT/stubs/$1.so"
}
CUDA_H=$(dirname "$NVCC")/../include/cuda.h
[ -f "$CUDA_H" ] || CUDA_H=/usr/local/cuda/include/cuda.h
if [ -f "$KIT/cublas-include/cublas_api.h" ] && [ -f "$CUDA_H" ] && command -v gcc >/dev/null; then
  stub libcublas libcublas.so.13 libcublas.so.13 "$KIT/cublas-include/cublas_api.h"
  stub libcuda libcuda.so.1 "" "$CUDA_H"
else
  log "  skipped (needs cuBLAS headers, cuda.h and gcc)"
fi

# llama.cpp's source as node-llama-cpp clones it from its bundle, trimmed to what its build compiles
SRC=$WORK/llama.cpp-src
if [ ! -f "$SRC/.ok-$NLC_VERSION" ]; then
  command -v git >/dev/null || die "git is needed to read node-llama-cpp's llama.cpp bundle"
  rm -rf "$SRC"
  git -c advice.detachedHead=false clone --quiet "$NM/node-llama-cpp/llama/gitRelease.bundle" "$SRC"
  touch "$SRC/.ok-$NLC_VERSION"
fi
mkdir -p "$KIT/llama.cpp"
(cd "$SRC" && tar -cf - --exclude='*.md' CMakeLists.txt LICENSE cmake common ggml include src vendor licenses) |
  tar -xf - -C "$KIT/llama.cpp"
rm -rf "$KIT/llama.cpp/ggml/src/"ggml-{vulkan,metal,sycl,cann,opencl,webgpu,zdnn,kompute,musa,hexagon,openvino,zendnn,virtgpu}
log "  llama.cpp source: $(du -sh "$KIT/llama.cpp" | cut -f1)"

# ---- node-llama-cpp's CUDA build, made here once and cached -----------------------------
CACHE=$WORK/cuda-cache/nlc-$NLC_VERSION-$CUDA_ARCH/linux-x64-cuda
if [ "${NO_CUDA_BUILD:-0}" != 1 ] && [ ! -f "$CACHE/buildDone.status" ]; then
  [ -x "$NVCC" ] || die "no nvcc ($NVCC): set NVCC, or NO_CUDA_BUILD=1 to leave the build to the GPU machine"
  [ -f "$KIT/stubs/libcublas.so" ] || die "no cuBLAS headers: set CUBLAS_INCLUDE, or NO_CUDA_BUILD=1"
  log "building node-llama-cpp for CUDA $CUDA_ARCH with $NVCC (an hour on 2 cores; log: $WORK/cuda-build.log)"
  B=$WORK/cuda-build
  rm -rf "$B"
  mkdir -p "$B"
  cp -a "$STAGE/node_modules" "$B/"
  cp "$NM/node-llama-cpp/llama/gitRelease.bundle" "$B/node_modules/node-llama-cpp/llama/"
  node "$STAGE/app/gpu-build.cjs" --nlc "$B/node_modules/node-llama-cpp" --arch "$CUDA_ARCH" --nvcc "$NVCC" \
    --cublas-include "$KIT/cublas-include" --link-dir "$KIT/stubs" >"$WORK/cuda-build.log" 2>&1 ||
    die "the CUDA build failed: tail $WORK/cuda-build.log"
  mkdir -p "$(dirname "$CACHE")"
  rm -rf "$CACHE"
  cp -a "$B/node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda" "$CACHE"
fi
if [ -f "$CACHE/buildDone.status" ]; then
  mkdir -p "$STAGE/node_modules/node-llama-cpp/llama/localBuilds"
  # the binaries and their metadata only, not the build tree
  mkdir -p "$STAGE/node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda"
  cp -a "$CACHE/Release" "$CACHE/buildDone.status" "$STAGE/node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda/"
  strip --strip-unneeded "$STAGE/node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda/Release/"*.so 2>/dev/null || true
  # no RUNPATH into the stubs' folder (bench/gpu-build.ts does it after a build; a cached one may predate that)
  node "$STAGE/app/gpu-build.cjs" --nlc "$STAGE/node_modules/node-llama-cpp" --fix-only
  log "CUDA build: $(du -sh "$STAGE/node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda" | cut -f1) ($CACHE)"
else
  log "WARNING: no CUDA build carried: gpu.sh will build on the GPU machine"
fi

{
  echo "packed $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+changes')"
  echo "node $(node -v) ($NODE_BIN); node-llama-cpp $NLC_VERSION; CUDA arch $CUDA_ARCH; nvcc $("$NVCC" --version 2>/dev/null | grep -o 'release [0-9.]*' || echo none)"
  [ -d "$STAGE/node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda" ] && echo "cuda build: carried" || echo "cuda build: none"
} >"$STAGE/MANIFEST"

log "compressing"
rm -f "$ROOT/.gpu/runtime.tar.xz"
tar -C "$STAGE" -cf - . | xz -9 -T0 >"$ROOT/.gpu/runtime.tar.xz.tmp"
mv "$ROOT/.gpu/runtime.tar.xz.tmp" "$ROOT/.gpu/runtime.tar.xz"
cp "$STAGE/MANIFEST" "$ROOT/.gpu/MANIFEST"

tree_bytes=$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
gpu_bytes=$(du -sb "$ROOT/.gpu" | cut -f1)
log "$(tr '\n' ';' <"$STAGE/MANIFEST")"
printf '.gpu: %s MiB (runtime.tar.xz; unpacked %s); working tree: %s MiB; together %s MiB of the 64 MiB a run carries\n' \
  "$((gpu_bytes / 1048576))" "$(du -sh "$STAGE" | cut -f1)" "$((tree_bytes / 1048576))" \
  "$(((gpu_bytes + tree_bytes) / 1048576))"
[ $((gpu_bytes + tree_bytes)) -lt $((60 * 1048576)) ] || die "over 60 MiB together"
