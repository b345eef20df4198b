/**
 * The compression pool of the streamOptimized VMDK writer: worker threads, each turning a batch of 64 KiB
 * grains into framed VMDK grains (grain marker + zlib data, padded to a sector) with `zlib.deflateSync`.
 * Worker threads rather than async zlib: async zlib runs on libuv's pool (4 threads unless
 * UV_THREADPOOL_SIZE says otherwise), which would cap a 16-core runner at 4 cores.
 *
 * The worker's source is a string evaluated by `new Worker(…, { eval: true })`: the action and CLI bundles
 * are single files, so there is no worker file on disk to point at (and a pool library such as piscina
 * needs one). Batches are transferred, not copied; the caller bounds how many are in flight.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { GRAIN_BYTES, GRAIN_SECTORS, SECTOR } from './vmdk-stream-format.js';

/** One compressed batch: the framed grains back to back, and where each grain's marker starts. */
export interface CompressedBatch {
  /** Grain markers and data of the non-zero grains, in the order given; a multiple of 512 bytes. */
  bytes: Buffer;
  /** Grain index and byte offset within `bytes` of each grain written (all-zero grains are left out). */
  grains: { grain: number; offset: number }[];
  /** The input buffer, given back: the caller may read the next batch into it. */
  input: ArrayBuffer;
}

/** The most a framed grain takes: marker (12 bytes) + zlib's worst case for 64 KiB, in whole sectors. */
export const MAX_FRAMED_GRAIN = Math.ceil((12 + GRAIN_BYTES + 6 + 5 * Math.ceil(GRAIN_BYTES / 16384)) / SECTOR) * SECTOR;

/**
 * The incompressible-grain check (docs/adr/003-ova-packing.md, "Incompressible grains"). zlib at any level
 * spends most of its time on data it cannot shrink (already compressed files: packages, container image
 * layers, squashfs): 47 MiB/s on random grains against 125 MiB/s on log text here, and then emits stored
 * blocks anyway. A grain is stored without the search (zlib level 0: still a valid zlib stream, and no
 * larger than what level 6 emits for it) only when two checks both say it cannot be compressed:
 *  - a sample of SAMPLE_PIECES pieces of SAMPLE_PIECE bytes, spread over the grain at uneven offsets,
 *    deflated at the requested level, does not get smaller (text, zeros, code and repeats in the sample
 *    all shrink it; the sample costs about 1/32 of deflating the grain);
 *  - the byte entropy of the WHOLE grain is at least MIN_STORED_ENTROPY bits per byte. Random 64 KiB
 *    measures 7.9967–7.9976 (50 samples; the estimate's spread is about 0.00025). A random grain with 2 KiB
 *    of log text anywhere measures 7.987–7.990 and with 3 KiB 7.978–7.982; a 3 KiB run of zeros or a
 *    repeated 4 KiB random block measure lower still. So structure the sample missed still sends the grain
 *    to zlib, and what is stored though zlib could shrink it saves zlib at most about 1 KiB (1.5 %) of it.
 * What can still be stored though zlib would have shrunk it: data whose bytes are uniformly distributed
 * but which repeats at a distance the sample does not see. test/unit/vmdk-stream-pool.test.ts pins the
 * cases; bench/ova-pack.ts measures the effect and the size against qemu-img's.
 */
export const SAMPLE_PIECES = 8;
export const SAMPLE_PIECE = 256;
export const MIN_STORED_ENTROPY = 7.995;

// CommonJS, evaluated in each worker. Messages: { id, grains: number[], data: ArrayBuffer, level, store }.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const GRAIN = ${GRAIN_BYTES}, SECTORS = ${GRAIN_SECTORS}, SECTOR = ${SECTOR};
const PIECES = ${SAMPLE_PIECES}, PIECE = ${SAMPLE_PIECE}, MIN_ENTROPY = ${MIN_STORED_ENTROPY};
const zero = Buffer.alloc(GRAIN);
const sample = Buffer.alloc(PIECES * PIECE);
const counts = new Uint32Array(256);
const STRIDE = GRAIN / PIECES;
function incompressible(grain, level) {
  for (let k = 0; k < PIECES; k++) {
    const at = k * STRIDE + ((k * 797) % (STRIDE - PIECE));
    grain.copy(sample, k * PIECE, at, at + PIECE);
  }
  if (zlib.deflateRawSync(sample, { level, windowBits: 12, memLevel: 6 }).length < sample.length) return false;
  counts.fill(0);
  for (let i = 0; i < grain.length; i++) counts[grain[i]]++;
  let bits = 0;
  for (let b = 0; b < 256; b++) {
    if (counts[b] === 0) continue;
    const p = counts[b] / grain.length;
    bits -= p * Math.log2(p);
  }
  return bits >= MIN_ENTROPY;
}
// Output buffers handed back by the main thread once written (m.spare): reused, so that no batch touches
// fresh memory (page faults cost more than the copy on some hosts).
const spare = [];
parentPort.on('message', (m) => {
  try {
    if (m.spare) for (const b of m.spare) if (spare.length < 8) spare.push(b);
    const data = Buffer.from(m.data, 0, m.grains.length * GRAIN);
    const framed = [];
    const index = [];
    let size = 0;
    for (let i = 0; i < m.grains.length; i++) {
      const grain = data.subarray(i * GRAIN, (i + 1) * GRAIN);
      if (grain.equals(zero)) continue;
      const z = m.store && m.level !== 0 && incompressible(grain, m.level) ? zlib.deflateSync(grain, { level: 0 }) : zlib.deflateSync(grain, { level: m.level });
      const length = Math.ceil((12 + z.length) / SECTOR) * SECTOR;
      framed.push(z);
      index.push(m.grains[i], size, z.length);
      size += length;
    }
    let out = spare.findIndex((b) => b.byteLength >= size);
    out = out >= 0 ? spare.splice(out, 1)[0] : new ArrayBuffer(Math.max(size, m.capacity));
    const view = Buffer.from(out, 0, size);
    for (let k = 0; k < framed.length; k++) {
      const at = index[3 * k + 1];
      view.writeBigUInt64LE(BigInt(index[3 * k]) * BigInt(SECTORS), at);
      view.writeUInt32LE(index[3 * k + 2], at + 8);
      framed[k].copy(view, at + 12);
      // A reused buffer holds an earlier batch: the padding to the sector must be zeros again.
      const end = k + 1 < framed.length ? index[3 * (k + 1) + 1] : size;
      view.fill(0, at + 12 + framed[k].length, end);
    }
    parentPort.postMessage({ id: m.id, bytes: out, size, index, input: m.data }, [out, m.data]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.stack || e) });
  }
});
`;

/** The default pool size: one worker per core the process may use. */
export const defaultPackThreads = (): number => Math.max(1, availableParallelism());

interface Task {
  id: number;
  grains: number[];
  data: ArrayBuffer;
  resolve: (b: CompressedBatch) => void;
  reject: (e: Error) => void;
}

/** A fixed set of compression workers with a queue; `close()` terminates them all. */
export class CompressionPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Task[] = [];
  private readonly running = new Map<Worker, Task>();
  private nextId = 0;
  private failure: Error | undefined;
  private closed = false;
  /** Output buffers the caller is done with, on their way back to a worker. */
  private readonly spare: ArrayBuffer[] = [];
  private capacity = 0;

  /**
   * @param threads worker threads
   * @param level zlib level, -1 (zlib's default, 6) to 9
   * @param storeIncompressible store grains the check above finds incompressible instead of deflating them
   */
  constructor(
    threads: number,
    private readonly level = -1,
    private readonly storeIncompressible = true,
  ) {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`the compression pool needs at least one thread, not ${threads}`);
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.on('message', (m: { id: number; bytes?: ArrayBuffer; index?: number[]; error?: string }) => this.done(w, m));
      w.on('error', (e) => this.fail(new Error(`a compression worker failed: ${e.message}`)));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`a compression worker exited (code ${code})`));
      });
      this.all.push(w);
      this.idle.push(w);
    }
  }

  /**
   * Compresses the grains `grains` (their 64 KiB each, in order, at the start of `data`, which is
   * transferred and given back as the result's `input`).
   */
  compress(grains: number[], data: ArrayBuffer): Promise<CompressedBatch> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the compression pool is closed'));
    if (data.byteLength < grains.length * GRAIN_BYTES) return Promise.reject(new Error(`a batch of ${grains.length} grains needs ${grains.length * GRAIN_BYTES} bytes, not ${data.byteLength}`));
    this.capacity = Math.max(this.capacity, grains.length * MAX_FRAMED_GRAIN);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, grains, data, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const t = this.queue.shift()!;
      this.running.set(w, t);
      const spare = this.spare.splice(0, 2);
      w.postMessage({ id: t.id, grains: t.grains, data: t.data, level: this.level, store: this.storeIncompressible, capacity: this.capacity, spare }, [t.data, ...spare]);
    }
  }

  /** Gives a result's `bytes` back once it is written and nothing refers to it any more (reused by a worker). */
  recycle(bytes: Buffer): void {
    const b = bytes.buffer as ArrayBuffer;
    if (!this.closed && bytes.byteOffset === 0 && b.byteLength >= this.capacity && this.spare.length < 8) this.spare.push(b);
  }

  private done(w: Worker, m: { id: number; bytes?: ArrayBuffer; size?: number; index?: number[]; input?: ArrayBuffer; error?: string }): void {
    const t = this.running.get(w);
    this.running.delete(w);
    if (!this.closed) this.idle.push(w);
    if (!t) return;
    if (m.error !== undefined || !m.bytes || !m.index || !m.input || m.size === undefined) t.reject(new Error(`compressing grains failed: ${m.error ?? 'no result'}`));
    else {
      const grains: { grain: number; offset: number }[] = [];
      for (let k = 0; k < m.index.length; k += 3) grains.push({ grain: m.index[k]!, offset: m.index[k + 1]! });
      t.resolve({ bytes: Buffer.from(m.bytes, 0, m.size), grains, input: m.input });
    }
    this.dispatch();
  }

  private fail(e: Error): void {
    if (this.failure || this.closed) return;
    this.failure = e;
    for (const t of [...this.running.values(), ...this.queue]) t.reject(e);
    this.running.clear();
    this.queue.length = 0;
    void this.close();
  }

  /** Terminates every worker; pending batches are rejected. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = [...this.running.values(), ...this.queue];
    this.running.clear();
    this.queue.length = 0;
    for (const t of pending) t.reject(new Error('the compression pool was closed'));
    await Promise.all(this.all.map((w) => w.terminate()));
  }

  /** Worker threads still alive (for tests: 0 after close). */
  get liveWorkers(): number {
    return this.closed ? 0 : this.all.length;
  }
}
