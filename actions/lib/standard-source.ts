/**
 * A pre-warmed build starts from the PUBLISHED standard image of the same appliance and version, when the
 * destination holds one: the same software by construction, and the OS install is not paid twice.
 *
 * {@link fetchPublishedStandard} finds `<prefix>/releases/v<version>/standard/<appliance>-standard-<version>.ova`
 * at a `gs://` or `file://` destination and, when it is there:
 *
 * 1. streams it — one pass that computes the OVA's SHA-256 and walks its tar entries, hashing each (memory
 *    stays flat in the OVA's size). A `gs://` OVA is downloaded to a temporary file beside the result and
 *    resumes from the last byte after a transient failure or a stall, pinned to the object's generation; a
 *    `file://` OVA is read in place (never copied), refusing a path or symlink that leads out of the
 *    destination, and must still be the same file after the conversion;
 * 2. checks the OVF properties as soon as the descriptor (the first entry) has arrived: appliance, build type
 *    `standard` and version must match, otherwise the download stops there;
 * 3. verifies the whole OVA against its published `.ova.sha256` (and the catalog entry, when `index.json`
 *    lists the release), and every entry against the OVA's own manifest (`.mf`);
 * 4. converts the VMDK back into a writable qcow2 with `qemu-img convert -O qcow2`, reading the disk in
 *    place inside the OVA (a raw layer with an offset), so no VMDK copy is ever written.
 *
 * The downloaded OVA and every intermediate are removed in every outcome; only the final qcow2 stays. A
 * tampered, truncated or mislabelled OVA fails with a one-line {@link StandardSourceError} and leaves
 * nothing behind. Without the release at the destination the result is `{ found: false }`, and nothing
 * is created.
 */
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, lstat, mkdir, mkdtemp, open, realpath, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import type { Storage } from '@google-cloud/storage';
import { loadAppliance } from './appliance.js';
import { DirectoryStore } from './file-destination.js';
import { GcsStore } from './gcs-upload.js';
import { InputError, checkVersion, readBool, readRequired, readString, type InputGetter } from './inputs.js';
import { readProductProperties } from './ova-read.js';
import { readCatalog, sameRelease } from './release-catalog.js';
import { artifactBaseName, checkApplianceName, isApplianceName, releasePrefix } from './release-names.js';
import { PermanentStorageError, RetriesExhaustedError, withRetry, type RetryOptions } from './storage-retry.js';
import { TransferProgress } from './transfer-progress.js';
import { parseDestination, type Destination } from './upload-options.js';

export interface FetchStandardOptions {
  /** Where releases are published (`gs://BUCKET/PREFIX` or `file:///DIR`), as {@link parseDestination} reads it. */
  destination: Destination;
  /** GCS JSON-API endpoint of an emulator (STORAGE_EMULATOR_HOST works too). */
  endpoint?: string;
  /** The appliance's NAME (`hedgehog-lab`, `demo-lab`). */
  appliance: string;
  /** Semantic version without `v`. */
  version: string;
  /** Where the qcow2 goes (`<outDir>/<appliance>-standard-<version>.qcow2`); created only when the release is found. */
  outDir: string;
  /** Cancels the download or the conversion; everything written so far is removed. */
  signal?: AbortSignal;
  /** Progress and notes (core.info in a workflow, stderr in the CLI). */
  log?: (line: string) => void;
  /** Time between progress lines. Default 5000 ms. */
  progressIntervalMs?: number;
  /** Retry tuning for `gs://` (tests shorten the delays). */
  retry?: Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>;
  /**
   * A `gs://` download that receives nothing for this long is dropped and resumed (a connection that died
   * without an error). Default 60 000 ms.
   */
  stallTimeoutMs?: number;
  /** An existing Storage client (tests). */
  storage?: Storage;
  /** The qemu-img executable (default `qemu-img` on PATH). */
  qemuImg?: string;
}

export type FetchStandardResult =
  | {
      found: false;
      /** Where the standard OVA was looked for. */
      uri: string;
    }
  | {
      found: true;
      /** The writable qcow2, converted from the published OVA's disk. */
      image: string;
      /** SHA-256 of the published OVA (hex), as its `.ova.sha256` states and the download proved. */
      ovaSha256: string;
      /** Storage URI of the published OVA. */
      uri: string;
      /** Byte size of the OVA. */
      size: number;
      /** Download + verification + conversion, in seconds. */
      seconds: number;
    };

/** The published standard OVA is there but cannot be used: tampered, truncated, mislabelled, incomplete. */
export class StandardSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StandardSourceError';
  }
}

/** The OVA's own OVF properties name another appliance, build type or version. */
export class MislabelledOvaError extends StandardSourceError {
  constructor(message: string) {
    super(message);
    this.name = 'MislabelledOvaError';
  }
}

/** A value for a log line: no control characters (no line breaks that could start a workflow command), bounded. */
export function printable(value: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** Refuses a destination with `.` or `..` path segments (also percent-encoded): it must name its directory plainly. */
export function checkPlainDestination(raw: string, input = 'destination'): void {
  const path = raw.replace(/^[a-z]+:\/\/[^/]*/i, '');
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    /* parseDestination reports malformed URIs */
  }
  if ([path, decoded].some((p) => p.split(/[/\\]/).some((seg) => seg === '..' || seg === '.'))) {
    throw new InputError(input, `'${printable(raw, 200)}' contains a '.' or '..' path segment`, 'give the destination as a plain absolute path, e.g. file:///srv/labs or gs://BUCKET/labs');
  }
}

// ---------------------------------------------------------------------------------------------- the tar walk

/** One entry of an OVA (a ustar archive), as the streaming walk saw it. */
export interface TarEntryDigest {
  name: string;
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  size: number;
  /** SHA-256 of the data (hex). */
  sha256: string;
  /** The data of a small descriptor or manifest (`.ovf`, `.mf`), kept for parsing. */
  body?: Buffer;
}

const BLOCK = 512;
const MAX_KEPT_BODY = 4 * 1024 * 1024;

/**
 * Walks a ustar archive fed in order, chunk by chunk, without holding it: every regular entry's offset,
 * size and SHA-256 (pax `path`/`size` records, GNU long names and base-256 sizes included). Header
 * checksums are verified. `onEntry` is told about each entry as soon as its data has passed.
 */
export class TarWalk {
  readonly entries: TarEntryDigest[] = [];
  private pos = 0;
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private state: 'header' | 'data' | 'end' = 'header';
  private remaining = 0;
  private padding = 0;
  private current?: { name: string; offset: number; size: number; kind: 'file' | 'pax' | 'longname' | 'skip'; hash: Hash; chunks?: Buffer[] };
  private pax: Record<string, string> = {};
  private longName?: string;

  constructor(
    private readonly where: string,
    private readonly onEntry?: (entry: TarEntryDigest) => void,
  ) {}

  /** True once the end-of-archive marker was read. */
  get ended(): boolean {
    return this.state === 'end';
  }

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.state !== 'end') {
      if (this.state === 'header') {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + n);
        this.headerFill += n;
        i += n;
        this.pos += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.startEntry();
        }
        continue;
      }
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        const part = chunk.subarray(i, i + n);
        this.current!.hash.update(part);
        if (this.current!.chunks) this.current!.chunks.push(Buffer.from(part));
        this.remaining -= n;
        i += n;
        this.pos += n;
        if (this.remaining > 0) continue;
      }
      const n = Math.min(this.padding, chunk.length - i);
      this.padding -= n;
      i += n;
      this.pos += n;
      if (this.padding === 0) {
        this.endEntry();
        this.state = 'header';
      }
    }
  }

  private startEntry(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) {
      this.state = 'end';
      return;
    }
    const stored = parseInt(h.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim(), 8);
    let sum = 0;
    for (let k = 0; k < BLOCK; k++) sum += k >= 148 && k < 156 ? 0x20 : h[k]!;
    if (stored !== sum) throw new StandardSourceError(`${this.where} is not a valid OVA: the tar header at byte ${this.pos - BLOCK} is damaged (checksum mismatch)`);
    const cstr = (start: number, len: number) => h.toString('utf8', start, start + len).replace(/\0.*$/s, '');
    let name = cstr(0, 100);
    if (h.toString('latin1', 257, 262) === 'ustar') {
      const prefix = cstr(345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    let size: number;
    if (h[124]! & 0x80) {
      size = 0;
      for (let k = 125; k < 136; k++) size = size * 256 + h[k]!;
    } else {
      size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    }
    const type = String.fromCharCode(h[156]!);
    let kind: 'file' | 'pax' | 'longname' | 'skip' = 'skip';
    if (type === '0' || type === '\0' || type === '7') {
      kind = 'file';
      if (this.longName !== undefined) name = this.longName;
      if (this.pax['path'] !== undefined) name = this.pax['path'];
      if (this.pax['size'] !== undefined) size = Number(this.pax['size']);
      this.pax = {};
      this.longName = undefined;
    } else if (type === 'x') kind = 'pax';
    else if (type === 'L') kind = 'longname';
    if (!Number.isSafeInteger(size) || size < 0) throw new StandardSourceError(`${this.where} is not a valid OVA: entry '${printable(name, 100)}' has an impossible size`);
    const keep = kind !== 'file' ? kind !== 'skip' : /\.(ovf|mf)$/i.test(name);
    if (keep && size > MAX_KEPT_BODY) throw new StandardSourceError(`${this.where} is not a valid OVA: '${printable(name, 100)}' is ${size} bytes, more than any real descriptor or manifest`);
    this.current = { name, offset: this.pos, size, kind, hash: createHash('sha256'), ...(keep ? { chunks: [] } : {}) };
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    this.state = 'data';
    if (size === 0) {
      this.endEntry();
      this.state = 'header';
    }
  }

  private endEntry(): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    const body = c.chunks ? Buffer.concat(c.chunks) : undefined;
    if (c.kind === 'pax') {
      // Records are "<length> <key>=<value>\n".
      for (const line of body!.toString('utf8').split('\n')) {
        const m = /^\d+ ([^=]+)=(.*)$/s.exec(line);
        if (m) this.pax[m[1]!] = m[2]!;
      }
    } else if (c.kind === 'longname') {
      this.longName = body!.toString('utf8').replace(/\0.*$/s, '');
    } else if (c.kind === 'file') {
      const entry: TarEntryDigest = { name: c.name, offset: c.offset, size: c.size, sha256: c.hash.digest('hex'), ...(body ? { body } : {}) };
      this.entries.push(entry);
      this.onEntry?.(entry);
    }
  }

  /** Throws unless the archive was complete (ended with its marker, or at least at an entry boundary). */
  finish(): void {
    if (this.state === 'end' || (this.state === 'header' && this.headerFill === 0 && this.entries.length > 0)) return;
    throw new StandardSourceError(`${this.where} is truncated: the archive ends inside ${this.current ? `'${printable(this.current.name, 100)}'` : 'a header'}`);
  }
}

/** Parses an OVF manifest: `SHA256(<file>)= <hex>` lines (other algorithms are reported, not trusted). */
export function parseManifest(text: string): Map<string, { algorithm: string; hex: string }> {
  const out = new Map<string, { algorithm: string; hex: string }>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Z0-9]+)\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$/.exec(line);
    if (m) out.set(m[2]!, { algorithm: m[1]!, hex: m[3]!.toLowerCase() });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- the source

/** Where the OVA's bytes come from: its size, its URI, and a way to stream it from a byte offset. */
interface OvaSource {
  uri: string;
  size: number;
  /** Streams every byte; `consume` is awaited per chunk (backpressure). Resumes where it can. */
  read(consume: (chunk: Buffer) => Promise<void>, signal: AbortSignal | undefined): Promise<void>;
  /**
   * A `file://` release is read in place, never copied: its path, and a check that the file is still the one
   * that was verified (same inode, size and modification time; publishing replaces files by rename).
   */
  local?: { path: string; unchanged: () => Promise<boolean> };
}

/** A `file://` release: read in place, refusing anything (a key, a symlink) that leads out of the destination. */
async function locateInDirectory(store: DirectoryStore, dir: string, key: string): Promise<OvaSource | undefined> {
  const path = store.path(key);
  const info = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw e;
  });
  if (!info) return undefined;
  const root = await realpath(dir);
  const real = await realpath(path);
  if (real !== root && !real.startsWith(root + sep)) throw new StandardSourceError(`${printable(store.uri(key))} leads out of the destination (to ${printable(real)}); refusing to read it`);
  const identity = async () => {
    const s = await stat(real, { bigint: true });
    return { file: s.isFile(), size: Number(s.size), token: `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` };
  };
  const first = await identity();
  if (!first.file) throw new StandardSourceError(`${printable(store.uri(key))} is not a regular file`);
  return {
    uri: store.uri(key),
    size: first.size,
    read: async (consume, signal) => {
      const stream = createReadStream(real, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) });
      for await (const chunk of stream) await consume(chunk as Buffer);
    },
    local: { path: real, unchanged: async () => (await identity().catch(() => undefined))?.token === first.token },
  };
}

/** A `gs://` release: the object's generation is pinned; a transient failure resumes from the last byte. */
async function locateInBucket(store: GcsStore, key: string, retry: FetchStandardOptions['retry'], stallTimeoutMs: number, log: (line: string) => void): Promise<OvaSource | undefined> {
  const uri = store.uri(key);
  const what = `read ${uri}`;
  let meta: { size?: string | number; generation?: string | number };
  try {
    [meta] = await withRetry(() => store.bucket.file(store.objectName(key)).getMetadata(), { what, ...retry });
  } catch (e) {
    if (e instanceof PermanentStorageError && e.status === 404) return undefined;
    throw e;
  }
  const generation = String(meta.generation ?? '');
  const size = Number(meta.size ?? 0);
  const file = store.bucket.file(store.objectName(key), generation ? { generation } : {});
  return {
    uri,
    size,
    read: async (consume, signal) => {
      let received = 0;
      let fatal: unknown;
      try {
        await withRetry(
          async () => {
            const stream: Readable = file.createReadStream({ validation: false, ...(received > 0 ? { start: received } : {}) });
            const stop = () => stream.destroy(new Error('cancelled'));
            signal?.addEventListener('abort', stop, { once: true });
            // A connection that dies silently ends neither with data nor with an error: a stall is a transient failure.
            let stall: NodeJS.Timeout | undefined;
            const watch = () => {
              clearTimeout(stall);
              stall = setTimeout(() => stream.destroy(Object.assign(new Error(`no data for ${stallTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), stallTimeoutMs);
            };
            watch();
            try {
              for await (const chunk of stream) {
                watch();
                try {
                  await consume(chunk as Buffer);
                } catch (e) {
                  fatal = e;
                  throw new PermanentStorageError((e as Error).message);
                }
                received += (chunk as Buffer).length;
              }
            } finally {
              clearTimeout(stall);
              signal?.removeEventListener('abort', stop);
              stream.destroy();
            }
            if (signal?.aborted) throw new PermanentStorageError('cancelled');
            if (received < size) throw Object.assign(new Error(`the connection ended after ${received} of ${size} bytes`), { code: 'ECONNRESET' });
          },
          {
            what: `download ${uri}`,
            ...retry,
            ...(signal ? { signal } : {}),
            onRetry: ({ attempt, delayMs, error }) => log(`download ${uri}: ${printable((error as Error).message ?? String(error))}; resuming from byte ${received} (retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s)`),
          },
        );
      } catch (e) {
        if (fatal !== undefined) throw fatal;
        if (e instanceof RetriesExhaustedError) throw new StandardSourceError(e.message.replace(/; run the same upload again to resume$/, '; run the build again'));
        throw e;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------- qemu-img

/** `qemu-img convert` of the VMDK inside the OVA (raw layer at its offset) to a qcow2; own process group. */
async function convertDisk(o: { qemuImg: string; ova: string; offset: number; size: number; target: string; log: (line: string) => void; intervalMs: number; signal?: AbortSignal }): Promise<void> {
  const opt = (v: string) => v.replace(/,/g, ',,');
  const source = `driver=vmdk,file.driver=raw,file.offset=${o.offset},file.size=${o.size},file.file.driver=file,file.file.filename=${opt(o.ova)}`;
  const args = ['convert', '-p', '--image-opts', source, '-O', 'qcow2', o.target];
  const started = performance.now();
  let lastLine = started;
  await new Promise<void>((done, reject) => {
    const child = spawn(o.qemuImg, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let err = '';
    // `-p` prints "(12.34/100%)" updates; one line every intervalMs at most.
    child.stdout.on('data', (d: Buffer) => {
      const m = /\((\d+(?:\.\d+)?)\/100%\)[^(]*$/.exec(d.toString());
      const now = performance.now();
      if (m && now - lastLine >= o.intervalMs) {
        lastLine = now;
        o.log(`convert to qcow2: ${Number(m[1]).toFixed(1)}% (${((now - started) / 1000).toFixed(0)} s)`);
      }
    });
    const kill = () => {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    };
    o.signal?.addEventListener('abort', kill, { once: true });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new StandardSourceError(`cannot run ${o.qemuImg} (${e.message}); install qemu-utils`)));
    child.on('close', (code, sig) => {
      o.signal?.removeEventListener('abort', kill);
      if (o.signal?.aborted) reject(new StandardSourceError('the conversion of the standard disk was cancelled'));
      else if (code === 0) done();
      else reject(new StandardSourceError(`qemu-img could not convert the standard OVA's disk to qcow2 (${sig ?? `exit code ${code}`}): ${printable(err.trim().split('\n').pop() ?? '')}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------- the fetch

/** Reads `<hex>  <name>` (sha256sum format, optional `*` before the name). */
function parseSha256File(text: string, expectedName: string, where: string): string {
  const m = /^([0-9a-fA-F]{64})\s+\*?(\S.*?)\s*$/.exec(text.split('\n')[0] ?? '');
  if (!m) throw new StandardSourceError(`${where} is not a sha256sum line (<64 hex digits>  <file name>)`);
  if (m[2] !== expectedName) throw new StandardSourceError(`${where} is the checksum of '${printable(m[2]!, 100)}', not of ${expectedName}`);
  return m[1]!.toLowerCase();
}

/**
 * Finds the standard release of `appliance` `version` at the destination and, when it is there, downloads,
 * verifies and converts it (see the module comment). Resolves `{ found: false }` when the destination does
 * not hold that release (nothing is created then); rejects with a {@link StandardSourceError} when it holds
 * one that cannot be trusted or used, after removing everything it wrote.
 */
export async function fetchPublishedStandard(options: FetchStandardOptions): Promise<FetchStandardResult> {
  const started = performance.now();
  const log = options.log ?? (() => undefined);
  const appliance = checkApplianceName(options.appliance, 'appliance');
  const version = checkVersion(options.version, 'version');
  const base = artifactBaseName(appliance, 'standard', version);
  const ovaName = `${base}.ova`;
  const dir = releasePrefix('standard', version);
  const ovaKey = `${dir}${ovaName}`;
  const sumKey = `${ovaKey}.sha256`;

  const dest = options.destination;
  checkPlainDestination(dest.uri);
  const store =
    dest.kind === 'file'
      ? new DirectoryStore({ dir: dest.dir })
      : new GcsStore({
          location: dest.location,
          parallelism: 1,
          partSize: 16 << 20,
          ...(options.endpoint ? { endpoint: options.endpoint } : {}),
          ...(options.retry ? { retry: options.retry } : {}),
          ...(options.storage ? { storage: options.storage } : {}),
        });
  const source = dest.kind === 'file' ? await locateInDirectory(store as DirectoryStore, dest.dir, ovaKey) : await locateInBucket(store as GcsStore, ovaKey, options.retry, options.stallTimeoutMs ?? 60_000, log);
  if (!source) {
    log(`no standard release of ${appliance} ${version} at ${printable(store.uri(ovaKey))}`);
    return { found: false, uri: store.uri(ovaKey) };
  }
  const shownUri = printable(source.uri);

  // The published checksum (and the catalog's entry, when there is one) before any byte is downloaded.
  const sum = await store.readSmall(sumKey);
  if (!sum) throw new StandardSourceError(`${shownUri} is published without its ${ovaName}.sha256, so it cannot be verified; republish the standard release (or build with --from-standard never)`);
  const expectedSha = parseSha256File(sum.data.toString('utf8'), ovaName, printable(store.uri(sumKey)));
  try {
    const listed = (await readCatalog(store)).catalog.releases.find((r) => sameRelease(r, { appliance, version, buildType: 'standard' }));
    if (listed && listed.sha256 !== expectedSha) throw new StandardSourceError(`${printable(store.uri(sumKey))} says ${expectedSha} but the catalog lists ${printable(listed.sha256, 80)} for ${ovaName}; the release is inconsistent, republish it`);
    if (listed && listed.size !== source.size) throw new StandardSourceError(`${shownUri} is ${source.size} bytes but the catalog lists ${listed.size}: it is truncated or was replaced`);
  } catch (e) {
    if (e instanceof StandardSourceError) throw e;
    log(`note: could not read the catalog (${printable((e as Error).message)}); relying on ${ovaName}.sha256`);
  }

  const outDir = resolve(options.outDir);
  const createdDir = await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(join(outDir, '.labforge-fetch-'));
  const image = join(outDir, `${base}.qcow2`);
  const partial = `${image}.partial`;
  let ok = false;
  try {
    log(`standard release found: ${shownUri} (${source.size} bytes); ${source.local ? 'reading' : 'downloading'}, verifying and converting it`);
    // gs:// is downloaded to a temporary file beside the result; file:// is read (and converted) in place.
    const ova = source.local?.path ?? join(work, ovaName);
    const fh = source.local ? undefined : await open(ova, 'w');
    const ovaHash = createHash('sha256');
    let received = 0;
    let ovfChecked = false;
    // A broken archive is reported after the checksum comparison, which says more (tampered or damaged).
    let walkError: unknown;
    const walk = new TarWalk(shownUri, (entry) => {
      if (ovfChecked) return;
      ovfChecked = true;
      if (!/\.ovf$/i.test(entry.name)) throw new StandardSourceError(`${shownUri} is not a valid OVA: its first entry is '${printable(entry.name, 100)}', not the OVF descriptor`);
      checkProperties(readProductProperties(entry.body!.toString('utf8')), { appliance, version }, shownUri);
    });
    const progress = new TransferProgress({ label: `${source.local ? 'read' : 'download'} ${ovaName}`, totalBytes: source.size, log, ...(options.progressIntervalMs !== undefined ? { intervalMs: options.progressIntervalMs } : {}) });
    try {
      await source.read(async (chunk) => {
        if (received + chunk.length > source.size) throw new StandardSourceError(`${shownUri} grew while it was being downloaded (more than ${source.size} bytes); it was replaced — run again`);
        let written = 0;
        while (fh && written < chunk.length) written += (await fh.write(chunk, written, chunk.length - written, received + written)).bytesWritten;
        ovaHash.update(chunk);
        if (walkError === undefined) {
          try {
            walk.feed(chunk);
          } catch (e) {
            if (e instanceof MislabelledOvaError) throw e; // stop the download: this OVA is not the one wanted
            walkError = e;
          }
        }
        received += chunk.length;
        progress.add(chunk.length);
      }, options.signal);
    } finally {
      await fh?.close();
    }
    if (options.signal?.aborted) throw new StandardSourceError('the download of the standard OVA was cancelled');
    progress.finish();
    if (received !== source.size) throw new StandardSourceError(`${shownUri} is truncated: ${received} of ${source.size} bytes arrived`);
    const sha256 = ovaHash.digest('hex');
    if (sha256 !== expectedSha) throw new StandardSourceError(`${shownUri} does not match its published checksum: ${ovaName}.sha256 says ${expectedSha}, the downloaded bytes hash to ${sha256} (tampered or damaged; nothing was kept)`);
    if (walkError !== undefined) throw walkError;
    walk.finish();
    if (!ovfChecked) throw new StandardSourceError(`${shownUri} is not a valid OVA: it holds no OVF descriptor`);
    const disk = verifyAgainstManifest(walk.entries, shownUri);
    log(`verified: SHA-256 ${sha256} matches ${ovaName}.sha256; the manifest matches every entry; the OVF says ${appliance} standard ${version}`);

    await convertDisk({
      qemuImg: options.qemuImg ?? 'qemu-img',
      ova,
      offset: disk.offset,
      size: disk.size,
      target: partial,
      log,
      intervalMs: options.progressIntervalMs ?? 5000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (source.local && !(await source.local.unchanged())) throw new StandardSourceError(`${shownUri} changed while it was being converted (republished?); nothing was kept — run again`);
    await rename(partial, image);
    ok = true;
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    log(`standard image: ${printable(image)} (qcow2, from ${shownUri}, ${seconds} s)`);
    return { found: true, image, ovaSha256: sha256, uri: source.uri, size: source.size, seconds };
  } catch (e) {
    if (options.signal?.aborted) throw new StandardSourceError(`fetching the standard ${shownUri} was cancelled; nothing was kept`);
    if (e instanceof StandardSourceError || e instanceof InputError) throw e;
    throw new StandardSourceError(`cannot use the published standard ${shownUri}: ${printable((e as Error).message ?? String(e))}`);
  } finally {
    await rm(work, { recursive: true, force: true });
    if (!ok) {
      await rm(partial, { force: true });
      // A directory this call created holds nothing else: leave no trace of a failed fetch.
      if (createdDir !== undefined) await rm(createdDir, { recursive: true, force: true });
    }
  }
}

/** The OVF's labforge properties must name this appliance, the standard build type and this version. */
function checkProperties(props: Record<string, string>, want: { appliance: string; version: string }, where: string): void {
  const problems: string[] = [];
  const appliance = props['appliance'] ?? '';
  if (appliance !== want.appliance) problems.push(`appliance '${printable(appliance, 80)}' (expected ${want.appliance})`);
  if (props['buildType'] !== 'standard') problems.push(`build type '${printable(props['buildType'] ?? '', 40)}' (expected standard)`);
  if (props['version'] !== want.version) problems.push(`version '${printable(props['version'] ?? '', 80)}' (expected ${want.version})`);
  if (problems.length > 0) throw new MislabelledOvaError(`${where} is not the standard ${want.appliance} ${want.version}: its OVF properties say ${problems.join(', ')}; refusing to warm it`);
}

/** Every entry but the manifest must be listed in it with a matching SHA-256; returns the one VMDK disk. */
function verifyAgainstManifest(entries: TarEntryDigest[], where: string): TarEntryDigest {
  const mf = entries.find((e) => /\.mf$/i.test(e.name));
  if (!mf) throw new StandardSourceError(`${where} has no manifest (.mf), so its disk cannot be verified`);
  const manifest = parseManifest(mf.body!.toString('utf8'));
  for (const e of entries) {
    if (e === mf || /\.cert$/i.test(e.name)) continue;
    const line = manifest.get(e.name);
    if (!line || line.algorithm !== 'SHA256') throw new StandardSourceError(`${where}: its manifest has no SHA256 line for '${printable(e.name, 100)}'`);
    if (line.hex !== e.sha256) throw new StandardSourceError(`${where}: '${printable(e.name, 100)}' does not match the OVA's manifest (manifest ${line.hex}, content ${e.sha256})`);
  }
  for (const name of manifest.keys()) if (!entries.some((e) => e.name === name)) throw new StandardSourceError(`${where}: its manifest lists '${printable(name, 100)}', which is not in the archive`);
  const disks = entries.filter((e) => /\.vmdk$/i.test(e.name));
  if (disks.length !== 1) throw new StandardSourceError(`${where} holds ${disks.length} VMDK disks; a labforge OVA has exactly one`);
  return disks[0]!;
}

// ---------------------------------------------------------------------------------------------- inputs

export interface FetchStandardInputs {
  destination: Destination;
  endpoint?: string;
  appliance: string;
  version: string;
  outDir: string;
  /** Write the outputs to $GITHUB_OUTPUT. */
  githubOutput: boolean;
}

/**
 * Reads the `labforge fetch-standard` flags: `destination`, `endpoint`, `appliance` (a directory holding
 * appliance.yml, or the appliance's name), `version`, `out`, `github-output`. Everything is checked here,
 * before anything slow.
 */
export async function readFetchStandardOptions(get: InputGetter, env: NodeJS.ProcessEnv = process.env): Promise<FetchStandardInputs> {
  const rawDestination = readRequired(get, 'destination', 'give the release destination, gs://BUCKET/PREFIX or file:///DIR');
  checkPlainDestination(rawDestination);
  const destination = parseDestination(rawDestination);
  const endpoint = readString(get, 'endpoint');
  if (endpoint && !/^https?:\/\/[^\s/]+/.test(endpoint)) throw new InputError('endpoint', `'${printable(endpoint, 100)}' is not an http(s) URL`, 'give the emulator or API base URL, e.g. http://127.0.0.1:4443');
  if (endpoint && destination.kind === 'file') throw new InputError('endpoint', 'is set but the destination is a directory', 'drop endpoint, or use a gs:// destination');
  const version = checkVersion(readRequired(get, 'version', 'give the version, e.g. --version 1.4.0'), 'version');
  const applianceRaw = readRequired(get, 'appliance', 'give the appliance directory (holding appliance.yml), e.g. --appliance packer/hedgehog-lab');
  const out = readRequired(get, 'out', 'give the directory for the qcow2, e.g. --out work/standard');
  const outInfo = await stat(out).catch(() => undefined);
  if (outInfo && !outInfo.isDirectory()) throw new InputError('out', `${printable(out, 200)} exists and is not a directory`, 'give a directory (it is created when needed)');
  const githubOutput = readBool(get, 'github-output', false);
  if (githubOutput && !env.GITHUB_OUTPUT) throw new InputError('github-output', 'is set but $GITHUB_OUTPUT is not', 'use it in a GitHub Actions step, or leave it out and read the JSON on stdout');
  let appliance: string;
  const asDir = await stat(applianceRaw).catch(() => undefined);
  if (asDir || /[/\\]|\.ya?ml$/.test(applianceRaw) || !isApplianceName(applianceRaw)) appliance = (await loadAppliance(applianceRaw, 'appliance')).name;
  else appliance = applianceRaw;
  return { destination, ...(endpoint ? { endpoint } : {}), appliance, version, outDir: resolve(out), githubOutput };
}

/** The outputs `fetch-standard` sets: `found` (true/false) and, when found, `image`, `sha256`, `uri` (else empty). */
export function fetchStandardOutputs(r: FetchStandardResult): { found: string; image: string; sha256: string; uri: string } {
  return r.found ? { found: 'true', image: r.image, sha256: r.ovaSha256, uri: r.uri } : { found: 'false', image: '', sha256: '', uri: '' };
}

/** Appends `name=value` lines to a GitHub Actions output file (values never hold a line break). */
export async function writeGithubOutputs(file: string, outputs: Record<string, string>): Promise<void> {
  const lines = Object.entries(outputs).map(([k, v]) => {
    if (/[\r\n]/.test(v)) throw new Error(`output ${k} holds a line break`);
    return `${k}=${v}\n`;
  });
  await appendFile(file, lines.join(''));
}
