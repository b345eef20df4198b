/**
 * The source reader of the streamOptimized VMDK writer: which bytes of a disk image hold data, and reading
 * them grain by grain.
 *
 * `qemu-img map --output=json` lists the image's extents; holes and zero extents are never read. For a raw
 * image, or a qcow2 with neither backing file, external data file, encryption nor compressed clusters, every
 * data extent carries its host offset and the data is read straight from the image file there (no qemu
 * process in the data path). Anything else (a compressed qcow2, a backing chain, vmdk, vdi, …) is first
 * converted by `qemu-img convert -O raw` into a sparse temporary file next to the output, which is then
 * read the same way (docs/adr/003-ova-packing.md: why, measured).
 *
 * The source is pinned: its size, mtime and inode are recorded before reading and checked while and after
 * reading; a change fails naming the path. A read error or a short read fails naming the path too.
 */
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { runQemuImg } from './qemu-img-run.js';
import { toolOutput } from './tool-output.js';
import { GRAIN_BYTES, GTES_PER_GT } from './vmdk-stream-format.js';

/** Reading the source failed (qemu-img, I/O, a changed file, cancellation). */
export class VmdkSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VmdkSourceError';
  }
}

/** One extent of guest data at a host offset of the file read. */
export interface DataExtent {
  start: number;
  length: number;
  offset: number;
}

interface MapEntry {
  start: number;
  length: number;
  depth: number;
  zero: boolean;
  data: boolean;
  offset?: number;
}

interface ImageInfo {
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
  encrypted?: boolean;
  'format-specific'?: { type?: string; data?: Record<string, unknown> };
}

/** How the data is read: `direct` from the image file, or `converted` through a raw temporary file. */
export type ReadMode = 'direct' | 'converted';

async function qemuImgJson<T>(qemuImg: string, args: string[]): Promise<T> {
  const r = await toolOutput(qemuImg, args).catch((e: Error) => Promise.reject(new VmdkSourceError(`cannot run ${qemuImg} (${e.message}); install qemu-utils`)));
  if (r.exitCode !== 0) throw new VmdkSourceError(`${qemuImg} ${args[0]} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`);
  return JSON.parse(r.stdout) as T;
}

/** The data extents of a map with host offsets; undefined when some data has none in this file. */
export function directExtents(map: MapEntry[]): DataExtent[] | undefined {
  const out: DataExtent[] = [];
  for (const e of map) {
    if (!e.data || e.zero) continue;
    if (e.depth !== 0 || e.offset === undefined) return undefined;
    const last = out[out.length - 1];
    if (last && last.start + last.length === e.start && last.offset + last.length === e.offset) last.length += e.length;
    else out.push({ start: e.start, length: e.length, offset: e.offset });
  }
  return out;
}

/** Whether the image's own file holds its guest data as plain bytes (metadata only). */
function readableDirectly(info: ImageInfo): boolean {
  if (info.format === 'raw') return true;
  if (info.format !== 'qcow2') return false;
  const data = info['format-specific']?.data ?? {};
  return !info['backing-filename'] && !info.encrypted && data['data-file'] === undefined && data['encrypt'] === undefined;
}

/** A pinned source image, opened for reading its data extents. */
export class VmdkSource {
  private constructor(
    /** The file the data is read from (the image, or the raw temporary file). */
    readonly path: string,
    /** The image given (named in every error). */
    readonly image: string,
    readonly mode: ReadMode,
    readonly virtualSize: number,
    readonly extents: DataExtent[],
    private readonly fh: FileHandle,
    private readonly pin: { size: number; mtimeMs: number; ino: number },
    private readonly temp: string | undefined,
  ) {}

  /**
   * Opens `image`: reads its info and map, converts it to a raw temporary file in `workDir` when it cannot
   * be read directly (or `mode` says `converted`), and records its size, mtime and inode.
   */
  static async open(o: { image: string; workDir: string; qemuImg?: string; mode?: ReadMode; signal?: AbortSignal; log?: (line: string) => void }): Promise<VmdkSource> {
    const qemuImg = o.qemuImg ?? 'qemu-img';
    const pin = await pinOf(o.image);
    const info = await qemuImgJson<ImageInfo>(qemuImg, ['info', '--output=json', o.image]);
    let extents: DataExtent[] | undefined;
    if (o.mode !== 'converted' && readableDirectly(info)) extents = directExtents(await qemuImgJson<MapEntry[]>(qemuImg, ['map', '--output=json', '-f', info.format, o.image]));
    let path = o.image;
    let temp: string | undefined;
    if (!extents) {
      temp = join(o.workDir, 'source.raw');
      o.log?.(`read: ${info.format} image needs qemu to read it (compressed clusters, a backing file or another format): converting to a sparse raw file first`);
      const run = await runQemuImg({ qemuImg, args: ['convert', '-f', info.format, '-O', 'raw', o.image, temp], signal: o.signal }).catch((e: Error) => Promise.reject(new VmdkSourceError(e.message)));
      if (run.aborted) throw new VmdkSourceError('reading the image was cancelled');
      if (run.code !== 0) throw new VmdkSourceError(`qemu-img convert could not read ${o.image} (${run.signal ?? `exit code ${run.code}`}): ${run.stderr.trim()}`);
      extents = directExtents(await qemuImgJson<MapEntry[]>(qemuImg, ['map', '--output=json', '-f', 'raw', temp]));
      if (!extents) throw new VmdkSourceError(`qemu-img map of the raw copy of ${o.image} gave data without offsets`);
      path = temp;
    }
    const fh = await open(path, 'r').catch((e: Error) => Promise.reject(new VmdkSourceError(`cannot open ${path}: ${e.message}`)));
    const source = new VmdkSource(path, o.image, temp ? 'converted' : 'direct', info['virtual-size'], extents, fh, pin, temp);
    await source.checkPinned();
    return source;
  }

  /** Fails naming the image when its size, mtime or inode changed since it was opened. */
  async checkPinned(): Promise<void> {
    const now = await pinOf(this.image);
    if (now.size !== this.pin.size || now.mtimeMs !== this.pin.mtimeMs || now.ino !== this.pin.ino) {
      throw new VmdkSourceError(`${this.image} changed while it was being packed (size ${this.pin.size} → ${now.size}, mtime ${new Date(this.pin.mtimeMs).toISOString()} → ${new Date(now.mtimeMs).toISOString()}); pack an image nothing writes to`);
    }
  }

  /**
   * The grains that hold data, in order, grouped in batches of at most `batchGrains` grains of the same grain
   * table (the writer emits a table after its last batch).
   */
  *batches(batchGrains: number): Generator<number[]> {
    let batch: number[] = [];
    let lastGrain = -1;
    for (const e of this.extents) {
      const first = Math.max(Math.floor(e.start / GRAIN_BYTES), lastGrain + 1);
      const last = Math.floor((e.start + e.length - 1) / GRAIN_BYTES);
      for (let g = first; g <= last; g++) {
        if (batch.length > 0 && (batch.length >= batchGrains || Math.floor(batch[0]! / GTES_PER_GT) !== Math.floor(g / GTES_PER_GT))) {
          yield batch;
          batch = [];
        }
        batch.push(g);
        lastGrain = g;
      }
    }
    if (batch.length > 0) yield batch;
  }

  /** Reads the guest bytes of `grains` (in order, 64 KiB each; what is no data reads as zeros). */
  /**
   * Reads the guest data of `grains` into the start of `into` when it is large enough (zeroed first, so
   * what no extent covers reads as zeros), else into a new buffer; returns the buffer.
   */
  async read(grains: number[], into?: ArrayBuffer): Promise<ArrayBuffer> {
    const need = grains.length * GRAIN_BYTES;
    const out = into && into.byteLength >= need ? into : new ArrayBuffer(need);
    const view = new Uint8Array(out, 0, need);
    if (out === into) view.fill(0);
    // Pieces (buffer position, host offset, length), merged when contiguous in both.
    let pending: { at: number; offset: number; length: number } | undefined;
    const flush = async () => {
      if (!pending) return;
      const p = pending;
      pending = undefined;
      let done = 0;
      while (done < p.length) {
        const r = await this.fh.read(view, p.at + done, p.length - done, p.offset + done).catch((e: Error) => Promise.reject(new VmdkSourceError(`cannot read ${this.describe()} at byte ${p.offset + done}: ${e.message}`)));
        if (r.bytesRead === 0) throw new VmdkSourceError(`${this.describe()} ended at byte ${p.offset + done}, before the data its map lists; was it truncated while being packed?`);
        done += r.bytesRead;
      }
    };
    let k = this.findExtent(grains[0]! * GRAIN_BYTES);
    for (let i = 0; i < grains.length; i++) {
      const gStart = grains[i]! * GRAIN_BYTES;
      const gEnd = gStart + GRAIN_BYTES;
      while (k < this.extents.length && this.extents[k]!.start + this.extents[k]!.length <= gStart) k++;
      for (let j = k; j < this.extents.length && this.extents[j]!.start < gEnd; j++) {
        const e = this.extents[j]!;
        const s = Math.max(e.start, gStart);
        const end = Math.min(e.start + e.length, gEnd);
        const piece = { at: i * GRAIN_BYTES + (s - gStart), offset: e.offset + (s - e.start), length: end - s };
        if (pending && pending.at + pending.length === piece.at && pending.offset + pending.length === piece.offset) pending.length += piece.length;
        else {
          await flush();
          pending = piece;
        }
      }
    }
    await flush();
    return out;
  }

  /** The first extent that ends after byte `at` of the guest (binary search). */
  private findExtent(at: number): number {
    let lo = 0;
    let hi = this.extents.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = this.extents[mid]!;
      if (e.start + e.length <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private describe(): string {
    return this.temp ? `the raw copy ${this.path} of ${this.image}` : this.image;
  }

  /** Closes the file and removes the temporary raw copy, if any. */
  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    if (this.temp) await rm(this.temp, { force: true });
  }
}

async function pinOf(path: string): Promise<{ size: number; mtimeMs: number; ino: number }> {
  const s = await stat(path).catch((e: Error) => Promise.reject(new VmdkSourceError(`cannot read ${path}: ${e.message}`)));
  return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
}
