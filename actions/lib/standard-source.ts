/**
 * One concern: starting a pre-warmed build from the PUBLISHED standard image of the same appliance and
 * version, when the destination holds one — the same software by construction, and the OS install is not
 * paid twice. This module finds the release, reads `labforge fetch-standard`'s options and runs the steps;
 * the steps themselves live beside it.
 *
 * {@link fetchPublishedStandard} finds `<prefix>/releases/v<version>/standard/<appliance>-standard-<version>.ova`
 * at a `gs://` or `file://` destination and, when it is there:
 *
 * 1. streams it once. A `gs://` OVA is downloaded to a temporary file beside the result, pinned to the
 *    object's generation and resuming from the last byte after a transient failure or a stall
 *    (gcs-download.ts); a `file://` OVA is read in place (never copied), refusing a path or symlink that
 *    leads out of the destination, and must still be the same file after the conversion;
 * 2. verifies it as it streams (ova-verify.ts): the OVF properties as soon as the descriptor (the first
 *    entry) has arrived — appliance, build type `standard` and version must match, otherwise the download
 *    stops there — then the whole OVA against its published `.ova.sha256` (and the catalog entry, when
 *    `index.json` lists the release), and every entry against the OVA's own manifest (`.mf`);
 * 3. converts the VMDK back into a writable qcow2 in place inside the OVA (ova-disk-convert.ts), so no VMDK
 *    copy is ever written.
 *
 * The downloaded OVA and every intermediate are removed in every outcome; only the final qcow2 stays. A
 * tampered, truncated or mislabelled OVA fails with a one-line {@link StandardSourceError} and leaves
 * nothing behind. Without the release at the destination the result is `{ found: false }`, and nothing
 * is created.
 */
import { createReadStream } from 'node:fs';
import { appendFile, lstat, mkdir, mkdtemp, open, realpath, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { loadAppliance } from './appliance.js';
import { DirectoryStore } from './file-destination.js';
import { openGcsDownload } from './gcs-download.js';
import { GcsStore } from './gcs-upload.js';
import { InputError, checkOutputDirectory, checkVersion, readBool, readRequired, readString, type InputGetter } from './inputs.js';
import { printable } from './escape.js';
import { convertOvaDisk } from './ova-disk-convert.js';
import { OvaVerifier } from './ova-verify.js';
import { readCatalog, sameRelease } from './release-catalog.js';
import { artifactBaseName, checkApplianceName, isApplianceName, releasePrefix } from './release-names.js';
import { StandardSourceError } from './standard-source-error.js';
import { RetriesExhaustedError, type RetryOptions } from './storage-retry.js';
import { TransferProgress } from './transfer-progress.js';
import { parseDestination, type Destination } from './upload-options.js';

export { MislabelledOvaError, StandardSourceError } from './standard-source-error.js';

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

/** A `gs://` release: the object's generation is pinned; a transient failure or a stall resumes from the last byte. */
async function locateInBucket(store: GcsStore, key: string, retry: FetchStandardOptions['retry'], stallTimeoutMs: number, log: (line: string) => void): Promise<OvaSource | undefined> {
  const download = await openGcsDownload(store, key, { stallTimeoutMs, log, ...(retry ? { retry } : {}) });
  if (!download) return undefined;
  return {
    uri: download.uri,
    size: download.size,
    read: async (consume, signal) => {
      try {
        await download.read(consume, signal);
      } catch (e) {
        if (e instanceof RetriesExhaustedError) throw new StandardSourceError(e.message.replace(/; run the same upload again to resume$/, '; run the build again'));
        throw e;
      }
    },
  };
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
    const verifier = new OvaVerifier(shownUri, { appliance, version });
    let received = 0;
    const progress = new TransferProgress({ label: `${source.local ? 'read' : 'download'} ${ovaName}`, totalBytes: source.size, log, ...(options.progressIntervalMs !== undefined ? { intervalMs: options.progressIntervalMs } : {}) });
    try {
      await source.read(async (chunk) => {
        if (received + chunk.length > source.size) throw new StandardSourceError(`${shownUri} grew while it was being downloaded (more than ${source.size} bytes); it was replaced — run again`);
        let written = 0;
        while (fh && written < chunk.length) written += (await fh.write(chunk, written, chunk.length - written, received + written)).bytesWritten;
        verifier.update(chunk); // a mislabelled OVA stops the download here
        received += chunk.length;
        progress.add(chunk.length);
      }, options.signal);
    } finally {
      await fh?.close();
    }
    if (options.signal?.aborted) throw new StandardSourceError('the download of the standard OVA was cancelled');
    progress.finish();
    if (received !== source.size) throw new StandardSourceError(`${shownUri} is truncated: ${received} of ${source.size} bytes arrived`);
    const { sha256, disk } = verifier.finish(expectedSha, `${ovaName}.sha256`);
    log(`verified: SHA-256 ${sha256} matches ${ovaName}.sha256; the manifest matches every entry; the OVF says ${appliance} standard ${version}`);

    await convertOvaDisk({
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
  checkOutputDirectory(out, 'out');
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
