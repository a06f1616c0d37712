#!/usr/bin/env bash
# bench/gpu.sh: node-llama-cpp's CUDA build on a generated model: tokens/s
# direct vs through a router, and the node heartbeat's GPU name, utilisation
# and VRAM against nvidia-smi. Made for a borrowed GPU machine with no network
# and maybe no Node.js: everything comes from .gpu/runtime.tar.xz, which
# bench/gpu-pack.sh makes (see there).
#
# Device command (the device `run` tool, in the repo root), carry [".gpu"]:
#
#   bash bench/gpu.sh
#
# Here, CPU only (no nvidia-smi, or GPU=none): bash bench/gpu.sh
#
# Steps, each logged with the time since start; the first that fails stops the
# run with its name (exit 1), after writing what was measured:
#   1. unpack the runtime (node, bundled router, node-llama-cpp, CUDA build)
#   2. node: this machine's if it is >= 20, else the carried one
#   3. the GPU (nvidia-smi), and the CUDA 13 runtime and cuBLAS libraries
#      (toolkit, ldconfig or Python's nvidia-* wheels) for LD_LIBRARY_PATH
#   4. probe: node-llama-cpp loads its CUDA build and lists the GPU; if it
#      cannot, the carried build is rebuilt here from llama.cpp's source
#      (BUILD=auto, time allowing; BUILD=always forces it, BUILD=never skips);
#      if CUDA still fails, the rest runs on the CPU and the run exits 3
#   5. bench/gpu-measure.ts: the model (written in the background from step 3
#      on), direct vs router tokens/s, heartbeat vs nvidia-smi (see there)
#
# Exit: 0 done; 1 a step failed (named in the log and gpu-summary.md); 2 the
# heartbeat's GPU fields did not match nvidia-smi; 3 CUDA could not be used
# (everything else measured on the CPU).
#
# Output in $OUT (a temp folder when unset): gpu-summary.md (also printed),
# gpu-results.json, gpu-log.txt (everything printed), router.log, env.txt,
# nvidia-smi.txt, build.log (a build here only).
#
# Env: GPU (auto | cuda | none), BUILD (auto | always | never),
# GPU_TEST_CPU_BACKEND=1 (a test where there is no GPU: with a stand-in
# nvidia-smi on PATH, gpu mode's steps on the CPU backend),
# TIME_LIMIT_S (480: the measuring is stopped, results kept, by then; a build
# here gets what is left less 150 s, about 5 min: enough with 16 cores),
# GPU_RUNTIME_DIR (/tmp/llm-router-gpu-rt), and bench/gpu-measure.ts's
# (MODEL_DIMS, MAX_TOKENS, ROUNDS, ...).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
T0=$(date +%s)
export GPU_T0_MS=$((T0 * 1000))
OUT=${OUT:-$(mktemp -d /tmp/gpu-bench-out.XXXXXX)}
mkdir -p "$OUT"
RT=${GPU_RUNTIME_DIR:-/tmp/llm-router-gpu-rt}
WORKDIR=$(mktemp -d /tmp/gpu-bench-work.XXXXXX)
GPU=${GPU:-auto}
BUILD=${BUILD:-auto}
TIME_LIMIT_S=${TIME_LIMIT_S:-480}
STEP=start
SETUP=()

exec > >(tee -a "$OUT/gpu-log.txt") 2>&1
TEE_PID=$!

elapsed() { echo $(($(date +%s) - T0)); }
log() { printf '[%s +%4ds] %s\n' "$(date -u +%H:%M:%S)" "$(elapsed)" "$*"; }
step() {
  STEP=$1
  log "step: $1"
}
fail() {
  log "FAILED at step '$STEP': $*"
  {
    echo "# GPU bench (bench/gpu.sh): FAILED at '$STEP'"
    echo
    echo "$*"
    echo
    printf '%s\n' "${SETUP[@]}"
    echo
    echo "Log: gpu-log.txt"
  } >"$OUT/gpu-summary.md"
  echo
  cat "$OUT/gpu-summary.md"
  exit 1
}
trap 'fail "command failed (line $LINENO): $BASH_COMMAND"' ERR
cleanup() {
  rm -rf "$WORKDIR"
  # let tee finish gpu-log.txt before the run ends
  exec >&- 2>&-
  wait "$TEE_PID" 2>/dev/null || true
}
trap cleanup EXIT

log "bench/gpu.sh in $ROOT, output in $OUT"

# ---- 1. the runtime ----------------------------------------------------------------
step "unpack .gpu/runtime.tar.xz"
TAR=$ROOT/.gpu/runtime.tar.xz
[ -f "$TAR" ] || fail "no $TAR: run 'bash bench/gpu-pack.sh' first and carry .gpu"
STAMP=$(cksum <"$TAR")
if [ "$(cat "$RT/.stamp" 2>/dev/null)" != "$STAMP" ]; then
  rm -rf "$RT"
  mkdir -p "$RT"
  if command -v xz >/dev/null; then
    xz -dc "$TAR" | tar -xf - -C "$RT"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$TAR" |
      tar -xf - -C "$RT"
  fi
  echo "$STAMP" >"$RT/.stamp"
fi
log "  $(tr '\n' ';' <"$RT/MANIFEST")"
SETUP+=("Runtime: $(tr '\n' ';' <"$RT/MANIFEST")")

# ---- 2. node -------------------------------------------------------------------------
step "node"
NODE=""
if command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  NODE=$(command -v node)
else
  NODE=$RT/bin/node
fi
"$NODE" -e 'process.exit(0)' || fail "node does not run: $NODE"
log "  $NODE $("$NODE" -v)"
SETUP+=("Node: $NODE $("$NODE" -v)")
# gpu-measure starts the router and its own children with this node (process.execPath)
PATH="$(dirname "$NODE"):$PATH"
export PATH

{
  echo "uname: $(uname -a)"
  echo "glibc: $(ldd --version 2>/dev/null | head -1)"
  echo "os: $(grep -m1 '^PRETTY_NAME=' /etc/os-release 2>/dev/null | cut -d= -f2-)"
  echo "cpus: $(nproc); memory: $(free -g 2>/dev/null | awk '/Mem:/ {print $2 " GiB"}')"
  echo "nvcc: $(command -v nvcc || echo none) $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || true)"
  echo "cmake: $(cmake --version 2>/dev/null | head -1 || echo none); ninja: $(ninja --version 2>/dev/null || echo none)"
} >"$OUT/env.txt" 2>&1 || true

# ---- 3. the GPU and the CUDA libraries --------------------------------------------------
step "GPU"
MODE=cpu
if [ "$GPU" != none ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  MODE=gpu
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,utilization.gpu,memory.used,memory.total --format=csv
  nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
  SETUP+=("GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tr '\n' ';')")
elif [ "$GPU" = cuda ]; then
  fail "GPU=cuda but nvidia-smi lists no GPU"
else
  log "  no GPU (GPU=$GPU, nvidia-smi: $(command -v nvidia-smi || echo none)): CPU mode"
  SETUP+=("GPU: none, CPU mode")
fi

# the model takes a while to write (~100 ns a parameter, one core): in the background, meanwhile
step "write the model (in the background)"
MODEL_FILE=$WORKDIR/models/gpu-bench.gguf
"$NODE" "$RT/app/gpu-measure.cjs" model --mode "$MODE" --out "$MODEL_FILE" >"$WORKDIR/model.log" 2>&1 &
MODEL_PID=$!

CUDA_BUILD_DIR=$RT/node_modules/node-llama-cpp/llama/localBuilds/linux-x64-cuda
CUDA_STATUS="not tried (CPU mode)"

# Folders holding $1 (a soname): the toolkit, ldconfig, Python's nvidia-* wheels, then a search.
lib_dirs() {
  local name=$1 d
  for d in ${CUDA_HOME:+"$CUDA_HOME/lib64"} /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib; do
    [ -e "$d/$name" ] && echo "$d"
  done
  ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n {print $NF}' | xargs -r -n1 dirname 2>/dev/null
  python3 - "$name" 2>/dev/null <<'EOF' || true
import glob, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()]
for s in dirs:
    for f in glob.glob(f"{s}/nvidia/**/{sys.argv[1]}", recursive=True):
        print(f.rsplit("/", 1)[0])
EOF
}

if [ "$MODE" = gpu ]; then
  step "CUDA libraries"
  LIBS=""
  missing=()
  add_dir() { case ":$LIBS:" in *":$1:"*) ;; *) LIBS=${LIBS:+$LIBS:}$1 ;; esac }
  for so in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
    d=$(lib_dirs "$so" | head -1) || true
    if [ -n "$d" ]; then
      log "  $so: $d"
      add_dir "$d"
    else
      missing+=("$so")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "  searching / for ${missing[*]} (30 s at most)"
    found=$(timeout 30 find / /usr/local /opt /root /home -xdev \( -name "${missing[0]}" -o -name "${missing[1]:-${missing[0]}}" \
      -o -name "${missing[2]:-${missing[0]}}" \) -not -path "$RT/*" -not -path '*/stubs/*' 2>/dev/null) || true
    for so in "${missing[@]}"; do
      d=$(grep -m1 "/$so\$" <<<"$found" | xargs -r dirname) || true
      log "  $so: ${d:-NOT FOUND}"
      [ -z "$d" ] || add_dir "$d"
    done
  fi
  export LD_LIBRARY_PATH=${LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  SETUP+=("LD_LIBRARY_PATH: $LD_LIBRARY_PATH")
  if [ -f "$CUDA_BUILD_DIR/Release/libggml-cuda.so" ] && command -v ldd >/dev/null; then
    ldd "$CUDA_BUILD_DIR/Release/libggml-cuda.so" | grep -E "cuda|cublas|not found" || true
  fi
fi

# ---- 4. probe, and the fall-back build ---------------------------------------------------
probe() {
  log "  probe: getLlama({gpu: \"cuda\", build: \"never\"})"
  local out
  if out=$(timeout 180 "$NODE" "$RT/app/gpu-measure.cjs" probe --gpu cuda 2>"$WORKDIR/probe.err"); then
    log "  probe: $out"
    PROBE=$out
    return 0
  fi
  log "  probe failed: $(tail -c 3000 "$WORKDIR/probe.err")"
  log "  the probe again, with llama.cpp's debug log:"
  LLAMA_LOG_LEVEL=debug timeout 180 "$NODE" "$RT/app/gpu-measure.cjs" probe --gpu cuda 2>&1 |
    grep -v 'fallback does not exist' | cut -c1-600 | tail -30 || true
  if [ -f "$CUDA_BUILD_DIR/Release/libggml-cuda.so" ]; then
    log "  dlopen of libggml-cuda.so (what ggml's loader tried):"
    python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1]); print("loads")' \
      "$CUDA_BUILD_DIR/Release/libggml-cuda.so" 2>&1 | tail -3 || true
  fi
  return 1
}

# node-llama-cpp's build here (bench/gpu-build.ts) from the carried source, headers and stubs.
build_here() {
  local limit=$1 kit=$RT/cuda-kit nlc=$RT/node_modules/node-llama-cpp shim=$WORKDIR/shim
  command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || {
    log "  no nvcc here"
    return 1
  }
  command -v cmake >/dev/null || {
    log "  no cmake here"
    return 1
  }
  local nvcc
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  local inc=$kit/cublas-include
  [ -f "$inc/cublas_v2.h" ] || inc=$(lib_dirs libcublas.so.13 | head -1 || true)/../include
  [ -f "$inc/cublas_v2.h" ] || {
    log "  no cuBLAS headers"
    return 1
  }
  # node-llama-cpp clones llama.cpp from git; the carried tree stands in for that clone
  rm -rf "$nlc/llama/llama.cpp"
  cp -a "$kit/llama.cpp" "$nlc/llama/llama.cpp"
  mkdir -p "$nlc/llama/llama.cpp/.git"
  rm -rf "$CUDA_BUILD_DIR"
  # node-llama-cpp runs `npm run -s cmake-js-llama -- ARGS` (= cd llama && cmake-js ARGS); no npm here
  mkdir -p "$shim"
  cat >"$shim/npm" <<EOF
#!/bin/sh
[ "\$1 \$2 \$3 \$4" = "run -s cmake-js-llama --" ] || { echo "npm stand-in: unsupported: \$*" >&2; exit 1; }
shift 4
cd "$nlc/llama" && exec "$NODE" "$RT/node_modules/cmake-js/bin/cmake-js" "\$@"
EOF
  chmod +x "$shim/npm"
  log "  building with $nvcc for sm_90 (at most ${limit} s; log: build.log)"
  PATH="$shim:$PATH" timeout "$limit" "$NODE" "$RT/app/gpu-build.cjs" --nlc "$nlc" --arch "${CUDA_ARCH:-90-real}" \
    --nvcc "$nvcc" --cublas-include "$inc" --link-dir "$kit/stubs" >"$OUT/build.log" 2>&1 || {
    log "  build failed: $(tail -c 2000 "$OUT/build.log" | tr '\r' '\n' | tail -15)"
    return 1
  }
  log "  built: $(du -sh "$CUDA_BUILD_DIR" | cut -f1)"
}

PROBE=""
if [ "$MODE" = gpu ] && [ "${GPU_TEST_CPU_BACKEND:-0}" = 1 ]; then
  # test only (a machine without a GPU, nvidia-smi faked): gpu mode's steps on the CPU backend
  CUDA_STATUS="not tried (GPU_TEST_CPU_BACKEND=1: gpu mode on the CPU backend, a test)"
elif [ "$MODE" = gpu ]; then
  step "node-llama-cpp on CUDA"
  ok=0
  if [ "$BUILD" != always ] && [ -d "$CUDA_BUILD_DIR" ]; then
    probe && ok=1 && CUDA_STATUS="carried build (made by bench/gpu-pack.sh)"
  elif [ "$BUILD" != always ]; then
    log "  no carried CUDA build"
  fi
  if [ $ok = 0 ] && [ "$BUILD" != never ]; then
    # the measuring needs about 100 s (150 kept) after the build
    limit=$((TIME_LIMIT_S - $(elapsed) - 150))
    if [ $limit -ge 150 ]; then
      step "build node-llama-cpp for CUDA here"
      if build_here "$limit" && probe; then
        ok=1
        CUDA_STATUS="built here by bench/gpu.sh"
      fi
    else
      log "  no time left for a build here (${limit} s)"
    fi
  fi
  if [ $ok = 0 ]; then
    CUDA_STATUS="FAILED: node-llama-cpp could not use CUDA (see gpu-log.txt); measured on the CPU instead"
    log "  $CUDA_STATUS"
    MODE=cpu
  fi
fi
SETUP+=("CUDA: $CUDA_STATUS")
[ -n "$PROBE" ] && SETUP+=("Probe: $PROBE")

# ---- 5. measure ---------------------------------------------------------------------------
step "the model"
if ! wait "$MODEL_PID"; then
  cat "$WORKDIR/model.log"
  fail "writing the model failed"
fi
cat "$WORKDIR/model.log"

step "measure (bench/gpu-measure.ts, mode $MODE)"
limit=$((TIME_LIMIT_S - $(elapsed)))
[ $limit -gt 30 ] || fail "no time left to measure"
export GPU_SETUP
GPU_SETUP=$(printf '%s\n' "${SETUP[@]}")
trap - ERR
set +e
timeout --signal=TERM --kill-after=20 "$limit" "$NODE" "$RT/app/gpu-measure.cjs" run --mode "$MODE" \
  --router-main "$RT/app/main.cjs" --work "$WORKDIR" --out "$OUT" --model "$MODEL_FILE"
rc=$?
set -e
log "measure exited with $rc"
if [ "$CUDA_STATUS" != "${CUDA_STATUS#FAILED}" ] && [ -f "$OUT/gpu-summary.md" ]; then
  { printf '**CUDA %s**\n\n' "$CUDA_STATUS" && cat "$OUT/gpu-summary.md"; } >"$WORKDIR/summary.md"
  cp "$WORKDIR/summary.md" "$OUT/gpu-summary.md"
fi
echo
cat "$OUT/gpu-summary.md" 2>/dev/null || true
echo
log "output in $OUT: $(cd "$OUT" && echo *)"
if [ $rc = 124 ]; then
  log "FAILED at step 'measure': it ran past TIME_LIMIT_S=$TIME_LIMIT_S; what it measured is in gpu-results.json"
  exit 1
fi
[ $rc = 0 ] || exit "$rc"
if [ "$CUDA_STATUS" != "${CUDA_STATUS#FAILED}" ]; then
  log "$CUDA_STATUS"
  exit 3
fi
log "done"
