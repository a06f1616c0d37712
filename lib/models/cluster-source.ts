/**
 * A model file that lives on the router (a converted model), read by an
 * inference node over the cluster instead of from the hub: `models.readFile`
 * answers one slice of at most READ_SLICE_BYTES as a stream of base64 strings
 * (compact with the JSON serializer), and the node asks slice after slice. A
 * bounded slice keeps what is in flight on the transporter small, and an
 * offset makes a dropped transfer resume where it stopped.
 */
import fs from "node:fs";
import { Transform, type Readable } from "node:stream";
import type { ByteSource } from "./download";

/** The most one `models.readFile` call sends. */
export const READ_SLICE_BYTES = 16 * 1024 * 1024;
/** Raw bytes per stream chunk (a NATS message stays well under its 1 MiB limit). */
const CHUNK_BYTES = 192 * 1024;

/** Router side: `length` bytes of `file` from `offset`, as an object-mode stream of base64 strings. */
export function readSlice(file: string, offset: number, length: number): Readable {
  const raw = fs.createReadStream(file, { start: offset, end: offset + length - 1, highWaterMark: CHUNK_BYTES });
  const encode = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _enc, cb) {
      cb(null, chunk.toString("base64"));
    },
  });
  raw.on("error", (err) => encode.destroy(err));
  return raw.pipe(encode);
}

/** Node side: one slice, as `readSlice` answers it (e.g. a `models.readFile` call on the router). */
export type ReadSlice = (offset: number, length: number) => Promise<Readable>;

/** A download source reading a file of `size` bytes slice by slice. */
export function sliceSource(read: ReadSlice, size: number, sliceBytes = READ_SLICE_BYTES): ByteSource {
  return (offset, signal) => Promise.resolve({ total: size, body: slices(read, offset, size, sliceBytes, signal) });
}

async function* slices(
  read: ReadSlice,
  offset: number,
  size: number,
  sliceBytes: number,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  let at = offset;
  while (at < size) {
    signal.throwIfAborted();
    const stream = await read(at, Math.min(sliceBytes, size - at));
    const onAbort = () => stream.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    let got = 0;
    try {
      for await (const chunk of stream as AsyncIterable<string | Buffer>) {
        const buf = typeof chunk === "string" ? Buffer.from(chunk, "base64") : chunk;
        got += buf.length;
        yield buf;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      if (!stream.destroyed) stream.destroy();
    }
    if (got === 0) throw new Error(`the router sent nothing at offset ${at}`);
    at += got;
  }
}
