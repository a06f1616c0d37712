/**
 * Builds node-llama-cpp's CUDA binaries from the llama.cpp source it ships
 * (its git bundle), for one GPU architecture only, with node-llama-cpp's own
 * build code (`compileLlamaCpp`, as `npx node-llama-cpp source build --gpu cuda`
 * does): the result lands in `<node-llama-cpp>/llama/localBuilds/linux-x64-cuda`,
 * where `getLlama({ gpu: "cuda" })` finds it before any prebuilt package.
 *
 *   node gpu-build.cjs --nlc DIR [--arch 90-real] [--cublas-include DIR] [--link-dir DIR] [--jobs N]
 *
 * Used by bench/gpu-pack.sh (built here, carried to the GPU machine) and by
 * bench/gpu.sh as its fall-back (built there). A CUDA toolkit without cuBLAS
 * (as the pip-built one on these machines) gets cuBLAS's headers from
 * `--cublas-include` and links against `--link-dir`'s libcublas.so / libcuda.so
 * (link-time stubs are enough: the binaries only record their sonames, and the
 * real libraries are found at run time).
 *
 * The build is node-llama-cpp's non-CI local build, except: GGML_NATIVE off
 * (the binary runs on another machine's CPU), GGML_OPENMP off (as the prebuilt
 * binaries), GGML_BACKEND_DL on (as the prebuilt binaries: a CUDA backend that
 * cannot load leaves the CPU backend working), and CMAKE_CUDA_ARCHITECTURES.
 * The options are kept out of the folder name, so no environment variable is
 * needed at run time to find the build.
 *
 * CMake puts the folder of the libraries linked by path (the stubs) into the
 * binaries' RUNPATH, which the loader searches before its cache: a stub
 * libcuda.so.1 would then shadow the driver's. After the build, every RUNPATH
 * entry that is not `$ORIGIN`-relative is removed (in place: the string in
 * .dynstr is rewritten, NUL-padded). `--fix-only` does only that, on an
 * existing build.
 */
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

async function main() {
  const { values } = parseArgs({
    options: {
      nlc: { type: "string" },
      arch: { type: "string", default: "90-real" },
      "cublas-include": { type: "string" },
      "link-dir": { type: "string" },
      nvcc: { type: "string" },
      jobs: { type: "string" },
      "fix-only": { type: "boolean" },
    },
  });
  if (!values.nlc) throw new Error("--nlc <node_modules/node-llama-cpp> is required");
  const nlc = path.resolve(values.nlc);
  const out = path.join(nlc, "llama", "localBuilds", "linux-x64-cuda");
  if (values["fix-only"]) {
    fixRunpaths(path.join(out, "Release"));
    return;
  }
  const load = (rel: string) => import(pathToFileURL(path.join(nlc, "dist", rel)).href);
  const { compileLlamaCpp } = await load("bindings/utils/compileLLamaCpp.js");
  const { getPlatformInfo } = await load("bindings/utils/getPlatformInfo.js");
  const { builtinLlamaCppRelease } = await load("bindings/utils/binariesGithubRelease.js");
  const { builtinLlamaCppGitHubRepo } = await load("config.js");

  const options = new Map<string, string>([
    ["CMAKE_CUDA_ARCHITECTURES", values.arch!],
    ["GGML_NATIVE", "OFF"],
    ["GGML_OPENMP", "OFF"],
    ["GGML_BACKEND_DL", "ON"],
  ]);
  if (values.nvcc) options.set("CMAKE_CUDA_COMPILER", values.nvcc);
  const inc = values["cublas-include"];
  if (inc) {
    if (!fs.existsSync(path.join(inc, "cublas_v2.h"))) throw new Error(`no cublas_v2.h in ${inc}`);
    options.set("CMAKE_CUDA_FLAGS", `-I${inc}`);
    options.set("CMAKE_CXX_FLAGS", `-I${inc}`);
  }
  const linkDir = values["link-dir"];
  if (linkDir) {
    options.set("CUDA_cublas_LIBRARY", path.join(linkDir, "libcublas.so"));
    options.set("CUDA_cuda_driver_LIBRARY", path.join(linkDir, "libcuda.so"));
  }
  // compileLlamaCpp picks its own parallelism; CMAKE_BUILD_PARALLEL_LEVEL is what cmake --build reads
  if (values.jobs) process.env.CMAKE_BUILD_PARALLEL_LEVEL = values.jobs;

  const buildOptions = {
    customCmakeOptions: options,
    progressLogs: true,
    platform: "linux",
    platformInfo: await getPlatformInfo(),
    arch: process.arch,
    gpu: "cuda",
    llamaCpp: { repo: builtinLlamaCppGitHubRepo, release: builtinLlamaCppRelease },
  };
  process.stderr.write(`gpu-build: cmake options ${JSON.stringify(Object.fromEntries(options))}\n`);
  const t0 = Date.now();
  await compileLlamaCpp(buildOptions, {
    nodeTarget: process.version,
    updateLastBuildInfo: false,
    includeBuildOptionsInBinaryFolderName: false,
    ensureLlamaCppRepoIsCloned: true,
    downloadCmakeIfNeeded: false,
  });
  if (!fs.existsSync(out)) throw new Error(`the build did not produce ${out}`);
  fixRunpaths(path.join(out, "Release"));
  process.stderr.write(`gpu-build: done in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${out}\n`);
}

/** Drops every RUNPATH/RPATH entry not relative to $ORIGIN from the ELF files in `dir` (see the top). */
function fixRunpaths(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (!/\.(so|node)$/.test(name)) continue;
    const file = path.join(dir, name);
    const buf = fs.readFileSync(file);
    let changed = false;
    // every NUL-terminated string that starts with $ORIGIN and lists more than one folder
    for (let at = buf.indexOf("$ORIGIN"); at >= 0; at = buf.indexOf("$ORIGIN", at + 1)) {
      if (at > 0 && buf[at - 1] !== 0) continue;
      const end = buf.indexOf(0, at);
      const value = buf.toString("latin1", at, end);
      if (!value.includes(":")) continue;
      const kept = value.split(":").filter((p) => p.startsWith("$ORIGIN"));
      const next = kept.join(":");
      if (next === value.replace(/:+$/, "")) continue;
      buf.fill(0, at, end);
      buf.write(next, at, "latin1");
      process.stderr.write(`gpu-build: ${name}: RUNPATH ${value} -> ${next}\n`);
      changed = true;
    }
    if (changed) fs.writeFileSync(file, buf);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
