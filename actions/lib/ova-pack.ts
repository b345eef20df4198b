/**
 * Packs a qcow2 (or any qemu-readable) image into an OVA: a ustar archive holding the OVF descriptor, the
 * manifest (`.mf`, SHA-256) and a streamOptimized VMDK, in that order (or the manifest last, an option), plus
 * an `.ova.sha256` file.
 *
 * How (docs/adr/003-ova-packing.md): the OVA file is laid out in place. Its head — tar headers, the
 * descriptor and the manifest, all of known fixed length — is reserved first; the VMDK is then appended
 * behind it by labforge's own parallel streamOptimized writer (vmdk-stream.ts; the default), hashed as it
 * is written and handed to an optional part sink (a publisher uploading while packing), or written in place
 * by `qemu-img convert` (`vmdkWriter: 'qemu-img'`) and hashed by one read afterwards. The descriptor (with
 * the VMDK's byte size), manifest and tar headers then go into the reserved head, the padding and
 * end-of-archive blocks after the disk, and one read over the finished archive gives the OVA's own SHA-256.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { chooseResources, loadAppliance, readResourceOverrides } from './appliance.js';
import { InputError, checkInputFile, checkOutputFile, readBool, readChoice, readInt, readRequired, readString, checkVersion, type InputGetter } from './inputs.js';
import { BUILD_TYPES, LEGACY_APPLIANCE, artifactBaseName, type BuildType } from './release-names.js';
import { GENERIC_LINUX_64, buildOvfDescriptor, type GuestOs } from './ovf-descriptor.js';
import { runQemuImg } from './qemu-img-run.js';
import { toolOutput } from './tool-output.js';
import { MANIFEST_POSITIONS, encodeHeadAndTail, entryOrder, headLength, type ManifestPosition } from './ova-pack-layout.js';
import type { OvaPartSink } from './ova-parts.js';
import { streamOptimizedVmdk, type VmdkStreamFacts } from './vmdk-stream.js';
import type { ReadMode } from './vmdk-stream-source.js';
import { defaultPackThreads } from './vmdk-stream-pool.js';

/** How the VMDK is written: labforge's parallel streamOptimized writer, or `qemu-img convert`. */
export type VmdkWriter = 'stream' | 'qemu-img';
export const VMDK_WRITERS: readonly VmdkWriter[] = ['stream', 'qemu-img'];
export type { ManifestPosition } from './ova-pack-layout.js';

/** What to pack and how to describe it. */
export interface PackOvaOptions {
  /** The source disk image (qcow2, raw, …: anything `qemu-img` reads). */
  image: string;
  /** The OVA to write. Written as `<out>.partial` and renamed when complete; an existing file is replaced. */
  out: string;
  /** The appliance's name (`hedgehog-lab`): names the files inside the OVA and the ProductSection's `appliance`. */
  appliance: string;
  buildType: BuildType;
  /** Semantic version without `v`. */
  version: string;
  /** The guest OS the OVF declares: the appliance manifest's `os`. */
  os: GuestOs;
  /** Virtual CPUs and memory the imported VM gets: the appliance's chosen resource profile. */
  cpus: number;
  memoryMiB: number;
  /** Commit recorded in the ProductSection (default: $GITHUB_SHA, else `git rev-parse HEAD`, else ''). */
  gitSha?: string;
  /** Build timestamp recorded in the ProductSection (default: now). */
  buildDate?: Date;
  /** Keep the work directory (a copy of the descriptor and manifest; with the qemu-img writer its VMDK template) for debugging. */
  keepIntermediates?: boolean;
  /** Name of the logical network the NIC joins (default `NAT`). */
  network?: string;
  /** Progress and phase lines for the person watching (at most one every `progressIntervalMs`). */
  log?: (line: string) => void;
  progressIntervalMs?: number;
  /** Cancels the packing: the compression workers (or qemu-img) are stopped and the partial OVA removed. */
  signal?: AbortSignal;
  /** The qemu-img executable (default `qemu-img` on PATH). */
  qemuImg?: string;
  /** Who writes the VMDK (default `stream`: labforge's parallel writer; `qemu-img`: qemu-img convert). */
  vmdkWriter?: VmdkWriter;
  /** Compression threads of the stream writer (default: the CPUs this process may use). */
  packThreads?: number;
  /** zlib level of the stream writer, -1 (zlib's default, as qemu-img) to 9. */
  compressionLevel?: number;
  /** Tuning of the stream writer, for measurements: grains per worker batch, and forcing the raw-conversion reader. */
  batchGrains?: number;
  readMode?: ReadMode;
  /** Store grains the writer finds incompressible (default true); false deflates every grain, for measurements. */
  storeIncompressible?: boolean;
  /** The manifest after the descriptor (`second`, the default) or after the disk (`end`). */
  manifestPosition?: ManifestPosition;
  /**
   * Receives the archive while it is packed (actions/lib/ova-parts.ts): body() for every VMDK chunk in order,
   * finish() before the rename, abort() on failure or cancellation. Landed early for the overlapped publisher
   * (issue 16); with the qemu-img writer the body is handed over during the hashing read after the conversion.
   */
  partSink?: OvaPartSink;
}

/** One file inside the OVA. */
export interface OvaEntry {
  name: string;
  size: number;
  sha256: string;
}

export interface PackOvaResult {
  /** Absolute path of the OVA. */
  ova: string;
  /** SHA-256 of the whole OVA (hex). */
  sha256: string;
  /** The `sha256sum -c` compatible companion file. */
  sha256File: string;
  /** Byte size of the OVA. */
  size: number;
  /** The tar entries in archive order: descriptor, manifest, disk (or descriptor, disk, manifest). */
  entries: [OvaEntry, OvaEntry, OvaEntry];
  /** Who wrote the VMDK, and for the stream writer how the source was read. */
  writer: VmdkWriter;
  readMode?: VmdkStreamFacts['mode'];
  /** The disk's virtual size and the bytes of data it holds. */
  virtualSize: number;
  populatedSize: number;
  /** The ProductSection properties written. */
  properties: { appliance: string; buildType: BuildType; version: string; buildDate: string; gitSha: string };
  /** Seconds spent writing the VMDK (the stream writer hashes it meanwhile), hashing, and in total. */
  timings: { convertSeconds: number; hashSeconds: number; totalSeconds: number };
  /** The work directory, when kept. */
  intermediates?: string;
}

/** The pack failed for a reason outside the inputs (qemu-img error, I/O, cancellation). */
export class OvaPackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OvaPackError';
  }
}

/** The largest byte size the descriptor must have room for (16 digits). */
const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;

/**
 * Reads the `pack-ova` inputs (shared by the CLI and the pipeline). With `appliance` (a directory holding
 * appliance.yml) the OVF declares the manifest's OS and the CPUs and memory of its chosen resource profile
 * (`profile`, `cpus`, `memory-mib` override it, as for packer-build), and the appliance's name goes into
 * the ProductSection and the default `out`. Without it the OVA is named `hedgehog-lab`, its CPUs and memory
 * are the `cpus`/`memory-mib` inputs (default 4 and 8192 MiB) and the OVF declares a generic 64-bit Linux:
 * nothing said which OS the image holds. Every input is validated before the manifest is read.
 */
export async function readPackOvaOptions(get: InputGetter): Promise<PackOvaOptions> {
  const buildType = readChoice(get, 'build-type', BUILD_TYPES, 'standard');
  const version = checkVersion(readRequired(get, 'version', 'give the appliance version, e.g. --version 1.4.0'), 'version');
  const image = readRequired(get, 'image', 'give the qcow2 image to pack, e.g. --image output/hedgehog-lab.qcow2');
  const outInput = readString(get, 'out');
  if (outInput !== '' && !outInput.endsWith('.ova')) throw new InputError('out', `'${outInput}' does not end in .ova`, 'name the output file <something>.ova');
  if (outInput !== '') checkOutputFile(outInput, 'out');
  checkInputFile(image, 'image', { nonEmpty: true, what: 'the disk image Packer built (e.g. output/<appliance>.qcow2)' });
  const gitSha = readString(get, 'git-sha');
  if (gitSha !== '' && !/^[0-9a-f]{7,64}$/.test(gitSha)) throw new InputError('git-sha', `'${gitSha}' is not a commit hash`, 'give a hex commit id (7 to 64 characters) or leave it empty');
  const keepIntermediates = readBool(get, 'keep-intermediates', false);
  const applianceDir = readString(get, 'appliance');
  const vmdkWriter = readChoice(get, 'vmdk-writer', VMDK_WRITERS, 'stream');
  const packThreads = readInt(get, 'pack-threads', defaultPackThreads(), { min: 1, max: 256 });
  const manifestPosition = readChoice(get, 'manifest-position', MANIFEST_POSITIONS, 'second');

  let appliance: string;
  let os: GuestOs;
  let cpus: number;
  let memoryMiB: number;
  if (applianceDir === '') {
    if (readString(get, 'profile') !== '') throw new InputError('profile', 'needs an appliance (resource profiles are declared in appliance.yml)', 'give --appliance packer/<appliance>, or leave --profile out');
    appliance = LEGACY_APPLIANCE;
    os = GENERIC_LINUX_64;
    cpus = readInt(get, 'cpus', 4, { min: 1, max: 256 });
    memoryMiB = readInt(get, 'memory-mib', 8192, { min: 256, max: 4 * 1024 * 1024 });
  } else {
    const overrides = readResourceOverrides(get);
    const app = await loadAppliance(applianceDir, 'appliance');
    const choice = chooseResources(app, overrides);
    appliance = app.name;
    os = app.os;
    cpus = choice.cpus;
    memoryMiB = choice.memoryMiB;
  }
  return {
    image,
    out: outInput || `${artifactBaseName(appliance, buildType, version)}.ova`,
    appliance,
    buildType,
    version,
    os,
    cpus,
    memoryMiB,
    gitSha: gitSha === '' ? undefined : gitSha,
    keepIntermediates,
    vmdkWriter,
    packThreads,
    manifestPosition,
  };
}

/** Facts about a disk image, from `qemu-img info` and `qemu-img map` (metadata only). */
export interface ImageFacts {
  format: string;
  virtualSize: number;
  /** Bytes of the guest address space that hold data (not holes, not zero clusters). */
  populatedSize: number;
}

/** Runs a short qemu-img command and returns stdout; throws OvaPackError with its stderr. */
async function qemuImgOutput(qemuImg: string, args: string[]): Promise<string> {
  const r = await toolOutput(qemuImg, args).catch((e: Error) => Promise.reject(new OvaPackError(`cannot run ${qemuImg} (${e.message}); install qemu-utils`)));
  if (r.exitCode !== 0) throw new OvaPackError(`${qemuImg} ${args[0]} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`);
  return r.stdout;
}

/** Reads an image's format and virtual size (`qemu-img info`, metadata only). */
export async function readImageInfo(image: string, qemuImg = 'qemu-img'): Promise<Pick<ImageFacts, 'format' | 'virtualSize'>> {
  const info = JSON.parse(await qemuImgOutput(qemuImg, ['info', '--output=json', image])) as { format: string; 'virtual-size': number };
  return { format: info.format, virtualSize: info['virtual-size'] };
}

/** Reads an image's format, virtual size and populated size without reading its data (`info` when already read). */
export async function readImageFacts(image: string, qemuImg = 'qemu-img', info?: Pick<ImageFacts, 'format' | 'virtualSize'>): Promise<ImageFacts> {
  const { format, virtualSize } = info ?? (await readImageInfo(image, qemuImg));
  const map = JSON.parse(await qemuImgOutput(qemuImg, ['map', '--output=json', '-f', format, image])) as { length: number; data: boolean; zero?: boolean }[];
  const populatedSize = map.filter((e) => e.data && !e.zero).reduce((sum, e) => sum + e.length, 0);
  return { format, virtualSize, populatedSize };
}

/** The smallest raw file accepted as a disk image (anything smaller is a stray file, not a disk). */
export const MIN_RAW_IMAGE_BYTES = 1024 * 1024;

/**
 * Refuses an image that cannot be an appliance's disk: one with no virtual size, or a file qemu-img only
 * recognises as `raw` bytes whose file is smaller than {@link MIN_RAW_IMAGE_BYTES} or not whole 512-byte sectors
 * (a text file, a truncated download). Throws an InputError naming `image`.
 */
export function checkDiskImage(image: string, facts: Pick<ImageFacts, 'format' | 'virtualSize'>, fileBytes: number): void {
  if (!(facts.virtualSize > 0)) {
    throw new InputError('image', `${image} is a ${facts.format} image with a virtual size of 0 bytes`, 'give the disk image Packer built (e.g. output/<appliance>.qcow2)');
  }
  // qemu-img rounds a raw file's virtual size up to whole sectors: the file's own size tells a stray file apart.
  if (facts.format === 'raw' && (fileBytes < MIN_RAW_IMAGE_BYTES || fileBytes % 512 !== 0)) {
    const why = fileBytes % 512 !== 0 ? 'not a whole number of 512-byte sectors' : `less than ${MIN_RAW_IMAGE_BYTES / 1024 / 1024} MiB`;
    throw new InputError('image', `${image} is not a disk image: qemu-img finds no image format in it, and as a raw disk its ${fileBytes} bytes are ${why}`, 'give the qcow2 (or raw disk) image Packer built');
  }
}

/** The manifest text: one `SHA256(<file>)= <hex>` line per file, as OVF 1.x and ovftool write it. */
export function manifestText(files: { name: string; sha256: string }[]): string {
  return files.map((f) => `SHA256(${f.name})= ${f.sha256}\n`).join('');
}

/** Escapes a value for qemu's `key=value,…` option syntax (a comma is written twice). */
const qemuOptValue = (v: string) => v.replace(/,/g, ',,');

/** Hashes `length` bytes of a file from `start`, reporting progress; `onChunk` gets each chunk and its offset. */
async function hashRange(path: string, start: number, length: number, onBytes: (n: number) => void, signal?: AbortSignal, onChunk?: (offset: number, bytes: Buffer) => Promise<void>): Promise<string> {
  const hash = createHash('sha256');
  if (length === 0) return hash.digest('hex');
  const stream = createReadStream(path, { start, end: start + length - 1, highWaterMark: 1 << 20, signal });
  let at = start;
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    hash.update(c);
    if (onChunk) await onChunk(at, c);
    at += c.length;
    onBytes(c.length);
  }
  return hash.digest('hex');
}

/**
 * Appends the stream writer's VMDK to `target` at `offset`, hashing it as it is written and handing every
 * chunk to `sink` (awaited) once it is in the file. Returns the VMDK's size and SHA-256.
 */
async function streamInto(o: { image: string; target: string; offset: number; extentName: string; workDir: string; threads?: number; level?: number; batchGrains?: number; readMode?: ReadMode; storeIncompressible?: boolean; qemuImg: string; signal?: AbortSignal; log: (l: string) => void; intervalMs: number; virtualSize: number; facts: Partial<VmdkStreamFacts>; onChunk?: (offset: number, bytes: Buffer) => Promise<void> }): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const report = progressReporter(o.log, 'pack', o.virtualSize, o.intervalMs);
  const fh = await open(o.target, 'r+');
  let at = o.offset;
  try {
    const vmdk = streamOptimizedVmdk({ image: o.image, extentName: o.extentName, workDir: o.workDir, threads: o.threads, level: o.level, batchGrains: o.batchGrains, readMode: o.readMode, storeIncompressible: o.storeIncompressible, qemuImg: o.qemuImg, signal: o.signal, log: o.log, onProgress: (n) => report(n) }, o.facts);
    for await (const chunk of vmdk) {
      let written = 0;
      while (written < chunk.length) written += (await fh.write(chunk, written, chunk.length - written, at + written)).bytesWritten;
      hash.update(chunk);
      if (o.onChunk) await o.onChunk(at, chunk);
      at += chunk.length;
    }
    await fh.truncate(at);
  } catch (e) {
    if (o.signal?.aborted) throw new OvaPackError('OVA packing was cancelled');
    throw e instanceof InputError || e instanceof OvaPackError ? e : new OvaPackError((e as Error).message);
  } finally {
    await fh.close();
  }
  report(o.virtualSize, true);
  return { size: at - o.offset, sha256: hash.digest('hex') };
}

function defaultGitSha(): Promise<string> {
  if (process.env.GITHUB_SHA && /^[0-9a-f]{40}$/.test(process.env.GITHUB_SHA)) return Promise.resolve(process.env.GITHUB_SHA);
  return toolOutput('git', ['rev-parse', 'HEAD']).then(
    (r) => (r.exitCode === 0 ? r.stdout.trim() : ''),
    () => '',
  );
}

/** A rate-limited progress reporter: percent, rate and ETA. */
function progressReporter(log: (line: string) => void, phase: string, total: number, intervalMs: number) {
  const started = Date.now();
  let last = 0;
  return (doneUnits: number, force = false) => {
    const now = Date.now();
    if (!force && now - last < intervalMs) return;
    last = now;
    const elapsed = (now - started) / 1000;
    const pct = total > 0 ? (100 * doneUnits) / total : 100;
    const rate = elapsed > 0 ? doneUnits / elapsed : 0;
    const eta = rate > 0 ? (total - doneUnits) / rate : 0;
    log(`${phase}: ${pct.toFixed(1)}% (${(rate / 1048576).toFixed(1)} MiB/s, ${force ? `${elapsed.toFixed(1)} s` : `ETA ${Math.ceil(eta)} s`})`);
  };
}

/**
 * Runs `qemu-img convert` writing a streamOptimized VMDK into `target` at byte `offset`. The VMDK's
 * empty metadata (made by `qemu-img create` in `workDir`) is placed there first, then `convert -n` fills it.
 */
async function convertInto(o: { qemuImg: string; image: string; format: string; target: string; offset: number; template: string; log: (l: string) => void; intervalMs: number; virtualSize: number; signal?: AbortSignal }): Promise<void> {
  await pipeline(createReadStream(o.template), createWriteStream(o.target, { flags: 'r+', start: o.offset }));
  const targetOpts = `driver=vmdk,file.driver=raw,file.offset=${o.offset},file.file.driver=file,file.file.filename=${qemuOptValue(o.target)}`;
  const args = ['convert', '-p', '-n', '--target-is-zero', '-f', o.format, o.image, '--target-image-opts', targetOpts];
  const report = progressReporter(o.log, 'convert', o.virtualSize, o.intervalMs);
  const run = await runQemuImg({ qemuImg: o.qemuImg, args, signal: o.signal, onPercent: (percent) => report((percent / 100) * o.virtualSize) }).catch((e: unknown) => {
    throw new OvaPackError((e as Error).message);
  });
  if (run.aborted) throw new OvaPackError('OVA packing was cancelled');
  if (run.code !== 0) throw new OvaPackError(`qemu-img convert failed (${run.signal ?? `exit code ${run.code}`}): ${run.stderr.trim()}`);
  report(o.virtualSize, true);
}

/**
 * Packs `image` into an OVA at `out` and writes `<out>.sha256`. Throws InputError for a missing image or
 * output directory, OvaPackError when qemu-img or the file system fails; the partial OVA is removed then.
 */
export async function packOva(options: PackOvaOptions): Promise<PackOvaResult> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const intervalMs = options.progressIntervalMs ?? 5000;
  const qemuImg = options.qemuImg ?? 'qemu-img';
  const image = resolve(options.image);
  const out = resolve(options.out);
  const imageStat = await stat(image).catch(() => undefined);
  if (!imageStat?.isFile()) throw new InputError('image', `${options.image} does not exist or is not a file`, 'give the path of the qcow2 image Packer built');
  if (imageStat.size === 0) throw new InputError('image', `${options.image} is empty (0 bytes)`, 'give the disk image Packer built; this file holds nothing');
  // What qemu-img makes of the image comes before anything else: a file that is no disk is refused here.
  const info = await readImageInfo(image, qemuImg);
  checkDiskImage(options.image, info, imageStat.size);
  const facts = await readImageFacts(image, qemuImg, info);
  const outDir = await stat(dirname(out)).catch(() => undefined);
  if (!outDir?.isDirectory()) throw new InputError('out', `the directory ${dirname(out)} does not exist`, 'create it or choose another --out');

  const base = artifactBaseName(options.appliance, options.buildType, options.version);
  const names = { ovf: `${base}.ovf`, mf: `${base}.mf`, vmdk: `${base}-disk1.vmdk` };
  for (const n of Object.values(names)) if (Buffer.byteLength(n) > 100) throw new InputError('version', `the file name ${n} is longer than ustar allows (100 bytes)`, 'use a shorter version string');

  const properties = {
    appliance: options.appliance,
    buildType: options.buildType,
    version: options.version,
    buildDate: (options.buildDate ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    gitSha: options.gitSha ?? (await defaultGitSha()),
  };
  const descriptor = (diskFileSize: number) =>
    buildOvfDescriptor({
      name: base,
      diskFile: names.vmdk,
      diskFileSize,
      capacityBytes: facts.virtualSize,
      populatedBytes: facts.populatedSize,
      cpus: options.cpus,
      memoryMiB: options.memoryMiB,
      network: options.network,
      os: options.os,
      product: properties,
      annotation: `${properties.appliance} ${properties.buildType} appliance ${properties.version}, built ${properties.buildDate}${properties.gitSha ? ` from ${properties.gitSha}` : ''} by labforge.`,
    });
  // Fixed lengths for the head: the descriptor is padded to the length it has with the largest size
  // number, the manifest has a fixed length (two lines of 64 hex digits).
  const ovfLength = Buffer.byteLength(descriptor(MAX_FILE_SIZE));
  const zeroHash = '0'.repeat(64);
  const mfLength = Buffer.byteLength(manifestText([{ name: names.ovf, sha256: zeroHash }, { name: names.vmdk, sha256: zeroHash }]));
  const manifestPosition = options.manifestPosition ?? 'second';
  const writer = options.vmdkWriter ?? 'stream';
  const diskOffset = headLength(ovfLength, mfLength, manifestPosition);

  const partial = `${out}.partial`;
  const work = await mkdtemp(join(dirname(out), '.labforge-pack-'));
  const sink = options.partSink;
  let sinkStarted = false;
  const toSink = sink
    ? async (offset: number, bytes: Buffer) => {
        sinkStarted = true;
        await sink.body(offset, bytes);
      }
    : undefined;
  let keep = false;
  try {
    // 1. The head is reserved (zeros); the VMDK is written behind it.
    await writeFile(partial, Buffer.alloc(diskOffset));
    const what = `${basename(image)} (${facts.format}, ${(facts.virtualSize / 2 ** 30).toFixed(2)} GiB virtual, ${(facts.populatedSize / 2 ** 30).toFixed(2)} GiB data)`;
    const convertStart = Date.now();
    let vmdkSize: number;
    let vmdkSha: string;
    let hashStart: number;
    const streamFacts: Partial<VmdkStreamFacts> = {};
    if (writer === 'stream') {
      const threads = options.packThreads ?? defaultPackThreads();
      log(`convert: ${what} → streamOptimized VMDK inside ${basename(out)} (labforge stream writer, ${threads} compression thread(s))`);
      ({ size: vmdkSize, sha256: vmdkSha } = await streamInto({ image, target: partial, offset: diskOffset, extentName: names.vmdk, workDir: work, threads, level: options.compressionLevel, batchGrains: options.batchGrains, readMode: options.readMode, storeIncompressible: options.storeIncompressible, qemuImg, signal: options.signal, log, intervalMs, virtualSize: facts.virtualSize, facts: streamFacts, onChunk: toSink }));
      hashStart = Date.now();
    } else {
      const template = join(work, names.vmdk);
      await qemuImgOutput(qemuImg, ['create', '-q', '-f', 'vmdk', '-o', 'subformat=streamOptimized,adapter_type=lsilogic', template, String(facts.virtualSize)]);
      log(`convert: ${what} → streamOptimized VMDK inside ${basename(out)} (qemu-img convert)`);
      await convertInto({ qemuImg, image, format: facts.format, target: partial, offset: diskOffset, template, log, intervalMs, virtualSize: facts.virtualSize, signal: options.signal });
      // One read over the VMDK: its SHA-256 for the manifest (and the final bytes for the part sink).
      hashStart = Date.now();
      vmdkSize = (await stat(partial)).size - diskOffset;
      const vmdkReport = progressReporter(log, 'hash disk', vmdkSize, intervalMs);
      let read = 0;
      vmdkSha = await hashRange(partial, diskOffset, vmdkSize, (n) => vmdkReport((read += n)), options.signal, toSink);
      vmdkReport(vmdkSize, true);
    }
    const convertSeconds = (hashStart - convertStart) / 1000;

    // 2. Descriptor (now with the VMDK's size), manifest and tar headers into the reserved head; the tail after the disk.
    const ovfText = descriptor(vmdkSize);
    const ovf = Buffer.alloc(ovfLength, ' ');
    ovf.write(ovfText);
    ovf[ovfLength - 1] = 0x0a;
    const ovfSha = createHash('sha256').update(ovf).digest('hex');
    const mf = Buffer.from(manifestText([{ name: names.ovf, sha256: ovfSha }, { name: names.vmdk, sha256: vmdkSha }]));
    const mtime = new Date(properties.buildDate);
    const { head, tail } = await encodeHeadAndTail({ names, ovf, mf, vmdkSize, mtime, manifest: manifestPosition });
    const fh = await open(partial, 'r+');
    let sha256: string;
    let size: number;
    try {
      await fh.write(head, 0, head.length, 0);
      await fh.write(tail, 0, tail.length, diskOffset + vmdkSize);
      size = (await fh.stat()).size;
      if (size !== diskOffset + vmdkSize + tail.length) throw new OvaPackError(`internal error: ${partial} is ${size} bytes, ${diskOffset + vmdkSize + tail.length} were written`);
      // 3. One read over the archive (from the page cache): the OVA's SHA-256, while the file is flushed to
      // disk (the rename below comes after both, so a crash never leaves a complete name on incomplete data).
      const ovaReport = progressReporter(log, 'hash ova', size, intervalMs);
      let hashed = 0;
      [sha256] = await Promise.all([hashRange(partial, 0, size, (n) => ovaReport((hashed += n)), options.signal), fh.sync()]);
      ovaReport(size, true);
    } finally {
      await fh.close();
    }
    const hashSeconds = (Date.now() - hashStart) / 1000;

    if (sink) {
      sinkStarted = true;
      await sink.finish({ head, tail, size, sha256 });
    }
    await rename(partial, out);
    const sha256File = `${out}.sha256`;
    await writeFile(sha256File, `${sha256}  ${basename(out)}\n`);
    if (options.keepIntermediates) {
      keep = true;
      await writeFile(join(work, names.ovf), ovf);
      await writeFile(join(work, names.mf), mf);
    }
    const ovfEntry = { name: names.ovf, size: ovf.length, sha256: ovfSha };
    const mfEntry = { name: names.mf, size: mf.length, sha256: createHash('sha256').update(mf).digest('hex') };
    const diskEntry = { name: names.vmdk, size: vmdkSize, sha256: vmdkSha };
    return {
      ova: out,
      sha256,
      sha256File,
      size,
      entries: entryOrder(ovfEntry, mfEntry, diskEntry, manifestPosition),
      writer,
      readMode: streamFacts.mode,
      virtualSize: facts.virtualSize,
      populatedSize: facts.populatedSize,
      properties,
      timings: { convertSeconds, hashSeconds, totalSeconds: (Date.now() - started) / 1000 },
      intermediates: keep ? work : undefined,
    };
  } catch (e) {
    await rm(partial, { force: true });
    const err = options.signal?.aborted ? new OvaPackError('OVA packing was cancelled; the partial OVA was removed') : (e as Error);
    if (sink && sinkStarted) await sink.abort(err).catch(() => undefined);
    throw err;
  } finally {
    if (!keep) await rm(work, { recursive: true, force: true });
  }
}
