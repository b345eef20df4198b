/**
 * Publishing to a directory (`file:///DIR`: a LAN share, an NFS/SMB mount, a USB disk for a workshop) with
 * the same guarantees as GCS:
 *
 * - one read pass of the source computes SHA-256 and CRC32C while the bytes are written to a temporary
 *   name in the destination directory (`<name>.labforge-partial`), then fsync;
 * - verify: the temporary file is read back and its size and CRC32C must equal the source's;
 * - publish without clobbering: `link()` the temporary file to the final name (fails if the name exists),
 *   or, on file systems without hard links (FAT/exFAT USB disks), create the final name exclusively
 *   (`O_EXCL`) and `rename()` over it; with overwrite, a plain atomic `rename()`;
 * - resume: a rerun compares the source with the bytes already in the temporary file and rewrites only
 *   from the first block that differs (or is missing);
 * - small files (catalog, portal) are written under a lock file with a generation check, so concurrent
 *   releases writing the same `index.json` never lose an entry.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AlreadyPublishedError,
  PreconditionFailedError,
  SourceChangedError,
  VerificationError,
  type ArtifactStore,
  type StoreEntry,
  type StreamUpload,
  type StreamUploadRequest,
  type UploadFileRequest,
  type UploadFileResult,
  type WriteSmallOptions,
} from './artifact-store.js';
import { crc32cToBase64 } from './crc32c.js';
import { openFileStreamUpload } from './file-stream-upload.js';
import { UploadHasher, assertSourceUnchanged, crc32cOfFile, openPinnedSource, sourceShrank } from './upload-hashing.js';

/** Suffix of the temporary file an upload writes before it is verified and published. */
export const PARTIAL_SUFFIX = '.labforge-partial';
const LOCK_SUFFIX = '.labforge-lock';

export interface DirectoryStoreOptions {
  /** Absolute destination directory. */
  dir: string;
  /** Read/write block size. Default 8 MiB. */
  blockSize?: number;
  /** How long to wait for another writer's lock before giving up. Default 60 s. */
  lockTimeoutMs?: number;
}

/**
 * What is wrong with a `file:///DIR` URI, or undefined when it names a plain absolute directory. The path is
 * percent-decoded first and checked after: no encoded slash (`%2F`, `%5C`), no query or fragment, no control
 * character, and no empty, `.` or `..` segment — so the directory written to is the one the URI shows.
 */
export function fileUriProblem(uri: string): string | undefined {
  if (!uri.startsWith('file:///')) return 'is not a file:///DIR URI';
  const raw = uri.slice('file://'.length);
  if (/[?#]/.test(raw)) return "has a '?' or '#' (a query or fragment, not part of a directory)";
  if (/%(2f|5c)/i.test(raw)) return 'has an encoded slash (%2F or %5C) in its path';
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return 'has a malformed %-escape in its path';
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) return 'has a control character in its path';
  const segments = path.replace(/\/$/, '').split('/').slice(1);
  if (segments.some((seg) => seg === '')) return "has an empty path segment ('//')";
  if (segments.some((seg) => seg === '.' || seg === '..')) return "has a '.' or '..' path segment";
  return undefined;
}

/** `file:///DIR` → `/DIR` (percent-decoded); undefined when it is not a plain file:///DIR URI (see {@link fileUriProblem}). */
export function parseFileUri(uri: string): string | undefined {
  if (fileUriProblem(uri) !== undefined) return undefined;
  return resolve(decodeURIComponent(uri.slice('file://'.length)));
}

/** A directory as an {@link ArtifactStore}. */
export class DirectoryStore implements ArtifactStore {
  readonly kind = 'file' as const;
  readonly root: string;
  private readonly dir: string;
  private readonly blockSize: number;

  constructor(private readonly opts: DirectoryStoreOptions) {
    this.dir = resolve(opts.dir);
    this.root = pathToFileURL(this.dir).href;
    this.blockSize = opts.blockSize ?? 8 << 20;
  }

  path(key: string): string {
    const p = resolve(this.dir, ...key.split('/'));
    if (p !== this.dir && !p.startsWith(this.dir + sep)) throw new Error(`key '${key}' leaves the destination directory`);
    return p;
  }

  uri(key: string): string {
    return pathToFileURL(this.path(key)).href;
  }

  url(key: string): string {
    return this.uri(key);
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.path(key));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** A verified, no-clobber, resumable write of a file while it is written (file-stream-upload.ts). */
  uploadStream(req: StreamUploadRequest): Promise<StreamUpload> {
    return openFileStreamUpload(this, req, PARTIAL_SUFFIX);
  }

  async uploadFile(req: UploadFileRequest): Promise<UploadFileResult> {
    const started = performance.now();
    const final = this.path(req.key);
    const uri = this.uri(req.key);
    // The source first: a file that is no longer the one the caller pinned is refused before anything is written.
    const { fh: src, identity } = await openPinnedSource(req.localPath, req.source);
    let dst: FileHandle | undefined;
    let createdDir: string | undefined;
    let published = false;
    const temp = final + PARTIAL_SUFFIX;
    try {
      if (!req.overwrite && (await this.exists(req.key))) throw new AlreadyPublishedError(uri);
      createdDir = await mkdir(dirname(final), { recursive: true });
      const hasher = new UploadHasher();
      let bytesSent = 0;
      let bytesReused = 0;
      try {
        dst = await open(temp, 'r+');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        dst = await open(temp, 'w+');
      }
      const size = identity.size;
      const already = (await dst.stat()).size;
      if (already > 0) req.log?.(`${uri}: resuming, ${already} bytes of an earlier run are in ${temp}`);
      const buf = Buffer.allocUnsafe(this.blockSize);
      const old = Buffer.allocUnsafe(this.blockSize);
      let diverged = already === 0;
      for (let pos = 0; pos < size; ) {
        const { bytesRead } = await src.read(buf, 0, Math.min(this.blockSize, size - pos), pos);
        if (bytesRead === 0) throw await sourceShrank(req.localPath, src, identity);
        const block = buf.subarray(0, bytesRead);
        hasher.update(block);
        if (!diverged && pos + bytesRead <= already) {
          const { bytesRead: n } = await dst.read(old, 0, bytesRead, pos);
          if (n === bytesRead && old.subarray(0, n).equals(block)) {
            bytesReused += bytesRead;
            req.onBytes?.(bytesRead);
            pos += bytesRead;
            continue;
          }
        }
        diverged = true;
        let written = 0;
        while (written < bytesRead) written += (await dst.write(block, written, bytesRead - written, pos + written)).bytesWritten;
        bytesSent += bytesRead;
        req.onBytes?.(bytesRead);
        pos += bytesRead;
      }
      await dst.truncate(size);
      await dst.sync();
      await dst.close();
      dst = undefined;
      const digests = hasher.digest();

      const check = await crc32cOfFile(temp, this.blockSize);
      if (check.size !== size || check.crc32c !== digests.crc32c) {
        await unlink(temp).catch(() => {});
        throw new VerificationError(
          `${uri}: what was written does not match ${req.localPath} (written: ${check.size} bytes, CRC32C ${crc32cToBase64(check.crc32c)}; source: ${size} bytes, CRC32C ${digests.crc32cBase64}); nothing was published — check the disk and run again`,
        );
      }
      // Last look before the name appears: still the same file, and every byte of it was read and written once.
      await assertSourceUnchanged(req.localPath, src, identity, { hashed: digests.size, sent: bytesSent + bytesReused });
      await this.publishTemp(temp, final, req.overwrite, uri);
      published = true;
      await this.syncDir(dirname(final));
      const parts = Math.max(1, Math.ceil(size / this.blockSize));
      return {
        key: req.key,
        uri,
        digests,
        bytesSent,
        bytesReused,
        parts,
        partsReused: Math.floor(bytesReused / this.blockSize),
        seconds: (performance.now() - started) / 1000,
      };
    } catch (e) {
      // A changed source leaves nothing behind (its bytes are no use to a rerun); other failures keep the partial file to resume from.
      if (e instanceof AlreadyPublishedError || e instanceof SourceChangedError) {
        await dst?.close().catch(() => {});
        await unlink(temp).catch(() => {});
        if (createdDir !== undefined) await this.removeEmptyDirs(dirname(final), createdDir);
      }
      throw e;
    } finally {
      await src.close();
      await dst?.close().catch(() => {});
      if (published) await unlink(temp).catch(() => {});
    }
  }

  /** Removes `dir` and its parents up to and including `top` while they are empty (directories this upload created). */
  async removeEmptyDirs(dir: string, top: string): Promise<void> {
    for (let d = dir; d === top || d.startsWith(top + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
      if (d === top) return;
    }
  }

  /** Moves a verified temporary file to its final name: no clobbering unless `overwrite` (also file-stream-upload.ts). */
  async publishTemp(temp: string, final: string, overwrite: boolean, uri: string): Promise<void> {
    if (overwrite) {
      await rename(temp, final);
      return;
    }
    try {
      await link(temp, final);
      await unlink(temp);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new AlreadyPublishedError(uri);
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'].includes(code ?? '')) throw e;
    }
    // No hard links here (FAT/exFAT, some SMB mounts): claim the name exclusively, then replace our placeholder.
    try {
      await (await open(final, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY)).close();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyPublishedError(uri);
      throw e;
    }
    await rename(temp, final);
  }

  /** fsync of a directory, where the platform allows it. */
  async syncDir(dir: string): Promise<void> {
    try {
      const fh = await open(dir, 'r');
      await fh.sync().catch(() => {});
      await fh.close();
    } catch {
      /* directories cannot be opened on every platform; the data itself was fsynced */
    }
  }

  /** A token that changes whenever the file is replaced (writes always go through rename). */
  private async generationOf(path: string): Promise<string> {
    try {
      const s = await stat(path, { bigint: true });
      return `${s.ino}-${s.mtimeNs}-${s.size}`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '0';
      throw e;
    }
  }

  /** Runs `fn` holding `<path>.labforge-lock` (created with O_EXCL; a lock older than the timeout is stale). */
  private async withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const lock = path + LOCK_SUFFIX;
    const timeout = this.opts.lockTimeoutMs ?? 60_000;
    const start = Date.now();
    for (;;) {
      try {
        const fh = await open(lock, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const age = await stat(lock).then((s) => Date.now() - s.mtimeMs).catch(() => 0);
        if (age > timeout) await unlink(lock).catch(() => {});
        else if (Date.now() - start > timeout) throw new Error(`${lock} is held by another writer for more than ${timeout / 1000} s; remove it if no upload is running`, { cause: e });
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
      }
    }
    try {
      return await fn();
    } finally {
      await unlink(lock).catch(() => {});
    }
  }

  async writeSmall(key: string, data: Buffer, opts: WriteSmallOptions = {}): Promise<string> {
    const final = this.path(key);
    await mkdir(dirname(final), { recursive: true });
    return this.withLock(final, async () => {
      const current = await this.generationOf(final);
      if (opts.ifGeneration !== undefined && opts.ifGeneration !== current) {
        if (opts.ifGeneration === '0') throw new AlreadyPublishedError(this.uri(key));
        throw new PreconditionFailedError(key, `${this.uri(key)} changed since it was read`);
      }
      const temp = `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      const fh = await open(temp, 'w');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (!(await readFile(temp)).equals(data)) {
        await unlink(temp).catch(() => {});
        throw new VerificationError(`${this.uri(key)}: read-back differs from what was written; check the disk`);
      }
      await rename(temp, final);
      await this.syncDir(dirname(final));
      return this.generationOf(final);
    });
  }

  async readSmall(key: string): Promise<{ data: Buffer; generation: string } | undefined> {
    const p = this.path(key);
    for (;;) {
      const before = await this.generationOf(p);
      if (before === '0') return undefined;
      let data: Buffer;
      try {
        data = await readFile(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      if ((await this.generationOf(p)) === before) return { data, generation: before };
    }
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    const out: StoreEntry[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      for (const ent of entries) {
        const p = join(dir, ent.name);
        const key = relative(this.dir, p).split(sep).join('/');
        if (ent.isDirectory()) {
          if (prefix.startsWith(`${key}/`) || key.startsWith(prefix) || `${key}/`.startsWith(prefix)) await walk(p);
        } else if (key.startsWith(prefix)) {
          const s = await stat(p);
          out.push({ key, size: s.size, generation: await this.generationOf(p), updated: s.mtime.toISOString() });
        }
      }
    };
    await walk(this.dir);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    const p = this.path(key);
    await unlink(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    // Remove directories the deletion left empty, up to the root.
    for (let d = dirname(p); d.startsWith(this.dir + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        break;
      }
    }
  }
}
