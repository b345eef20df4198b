/**
 * A streamOptimized VMDK writer: the VMDK of any image qemu can read, produced in order and append-only, as
 * an async sequence of buffers (a consumer that awaits its writes slows the writer down: backpressure).
 *
 * vmdk-stream-source.ts reads the data grains (holes and zero extents are never read), vmdk-stream-pool.ts
 * compresses batches of grains on worker threads (all-zero grains are dropped there), and this module puts
 * the results in order with the grain tables, the grain directory, the footer and the end-of-stream marker
 * (vmdk-stream-format.ts). At most `4 × threads` batches are read or compressed at any time, so memory is
 * bounded by the pool, not by the image. The output depends only on the image's guest data, its virtual size,
 * the extent name and the zlib level: the same input gives the same bytes.
 */
import { CompressionPool, defaultPackThreads, type CompressedBatch } from './vmdk-stream-pool.js';
import { VmdkSource, VmdkSourceError, type ReadMode } from './vmdk-stream-source.js';
import { GRAIN_BYTES, GTES_PER_GT, OVERHEAD_SECTORS, SECTOR, encodeGrainTable, encodePreamble, encodeTrailer, geometry } from './vmdk-stream-format.js';

export { VmdkSourceError } from './vmdk-stream-source.js';

/** Grains per batch handed to a worker (1 MiB of guest data; bench/ova-pack.ts compares 1, 4, 16 and 64). */
export const DEFAULT_BATCH_GRAINS = 16;

export interface VmdkStreamOptions {
  /** The source image (any format `qemu-img` reads). */
  image: string;
  /** The extent file name written into the embedded descriptor (the VMDK's name inside the OVA). */
  extentName: string;
  /** Where a raw temporary copy goes when the image cannot be read directly (next to the output). */
  workDir: string;
  /** Compression workers (default: the CPUs this process may use). */
  threads?: number;
  /** zlib level, -1 (zlib's default, 6, as qemu-img) to 9. */
  level?: number;
  /** Grains per worker batch (default {@link DEFAULT_BATCH_GRAINS}). */
  batchGrains?: number;
  /** Store grains that cannot be compressed instead of deflating them (default true; vmdk-stream-pool.ts). */
  storeIncompressible?: boolean;
  /** The descriptor's ddb.adapterType (default lsilogic). */
  adapterType?: string;
  /** Force reading through a raw conversion (`converted`); by default the image is read directly when it can be. */
  readMode?: ReadMode;
  qemuImg?: string;
  /** Stops reading and every worker; the sequence then rejects. */
  signal?: AbortSignal;
  /** Guest bytes covered so far, out of the virtual size. */
  onProgress?: (doneBytes: number, virtualSize: number) => void;
  log?: (line: string) => void;
}

/** What the writer learnt about the source, available once the first buffer is produced. */
export interface VmdkStreamFacts {
  virtualSize: number;
  mode: ReadMode;
  /** Guest bytes in data extents (what was read). */
  dataBytes: number;
}

/**
 * Produces the streamOptimized VMDK of `o.image`, buffer by buffer (each a whole number of sectors).
 * A buffer is the writer's again once the next one is asked for (it is reused for a later batch): write
 * it, hash it or copy it before that. `facts` (when given) is filled in before the first buffer. Rejects with VmdkSourceError naming the image
 * for a read error or a changed source, and with an Error for a cancellation or a worker failure.
 */
export async function* streamOptimizedVmdk(o: VmdkStreamOptions, facts?: Partial<VmdkStreamFacts>): AsyncGenerator<Buffer, void, undefined> {
  const threads = o.threads ?? defaultPackThreads();
  const batchGrains = o.batchGrains ?? DEFAULT_BATCH_GRAINS;
  const signal = o.signal;
  const cancelled = () => new VmdkSourceError('writing the VMDK was cancelled');
  if (signal?.aborted) throw cancelled();
  const source = await VmdkSource.open({ image: o.image, workDir: o.workDir, qemuImg: o.qemuImg, mode: o.readMode, signal, log: o.log });
  let pool: CompressionPool | undefined;
  const stop = () => void pool?.close();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    if (signal?.aborted) throw cancelled();
    pool = new CompressionPool(threads, o.level ?? -1, o.storeIncompressible ?? true);
    const virtualSize = source.virtualSize;
    if (facts) Object.assign(facts, { virtualSize, mode: source.mode, dataBytes: source.extents.reduce((s, e) => s + e.length, 0) });
    const { tables } = geometry(virtualSize);
    const directory = new Uint32Array(tables);
    const table = new Uint32Array(GTES_PER_GT);
    let tableIndex = -1;
    let sector = OVERHEAD_SECTORS;
    const advance = (bytes: number) => {
      sector += bytes / SECTOR;
      if (sector > 0xffffffff) throw new VmdkSourceError(`the VMDK of ${o.image} would exceed 2 TiB, the most a streamOptimized extent addresses`);
    };
    /** The grain table just completed, if it has any grain. */
    const closeTable = (): Buffer | undefined => {
      if (tableIndex < 0 || !table.some((v) => v !== 0)) return undefined;
      directory[tableIndex] = sector + 1; // after the table's marker
      const bytes = encodeGrainTable(table);
      advance(bytes.length);
      return bytes;
    };

    yield encodePreamble({ extentName: o.extentName, virtualSize, adapterType: o.adapterType });

    const batches = source.batches(batchGrains);
    const inFlight: Promise<{ grains: number[]; batch: CompressedBatch }>[] = [];
    const maxInFlight = Math.max(4, 4 * threads);
    /** Input buffers the workers gave back, read into again (no batch touches fresh memory). */
    const inputs: ArrayBuffer[] = [];
    const fill = () => {
      while (inFlight.length < maxInFlight) {
        const next = batches.next();
        if (next.done) return;
        const grains = next.value;
        const job = source.read(grains, inputs.pop()).then((data) => pool!.compress(grains, data).then((batch) => ({ grains, batch })));
        job.catch(() => undefined); // awaited in order below; a rejection is not unhandled meanwhile
        inFlight.push(job);
      }
    };
    fill();
    let done = 0;
    while (inFlight.length > 0) {
      let result: { grains: number[]; batch: CompressedBatch };
      try {
        result = await inFlight.shift()!;
      } catch (e) {
        if (signal?.aborted) throw cancelled();
        throw e;
      }
      if (signal?.aborted) throw cancelled();
      const { grains, batch } = result;
      inputs.push(batch.input);
      fill();
      const t = Math.floor(grains[0]! / GTES_PER_GT);
      if (t !== tableIndex) {
        const gt = closeTable();
        if (gt) yield gt;
        tableIndex = t;
        table.fill(0);
      }
      for (const g of batch.grains) table[g.grain % GTES_PER_GT] = sector + g.offset / SECTOR;
      if (batch.bytes.length > 0) {
        advance(batch.bytes.length);
        yield batch.bytes;
        // The consumer is done with it (it awaits its writes and copies what it keeps: ova-parts.ts).
        pool.recycle(batch.bytes);
      }
      o.onProgress?.(Math.min(virtualSize, (grains[grains.length - 1]! + 1) * GRAIN_BYTES), virtualSize);
      if (++done % 256 === 0) await source.checkPinned();
    }
    const gt = closeTable();
    if (gt) yield gt;
    await source.checkPinned();
    yield encodeTrailer(virtualSize, directory, sector + 1);
    o.onProgress?.(virtualSize, virtualSize);
  } finally {
    signal?.removeEventListener('abort', stop);
    await pool?.close();
    await source.close();
  }
}
