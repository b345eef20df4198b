/**
 * One concern: verifying an OVA while its bytes stream past once, without holding it.
 *
 * {@link TarWalk} walks the ustar archive chunk by chunk and hashes every entry. {@link OvaVerifier} feeds it
 * and the whole-OVA SHA-256 together: it checks the OVF properties as soon as the descriptor (the first
 * entry) has arrived — appliance, build type `standard`, version — so a mislabelled download can stop there,
 * and at the end compares the OVA with its published checksum and every entry with the OVA's own manifest
 * (`.mf`), returning the one VMDK disk. Memory stays flat in the OVA's size.
 */
import { createHash, type Hash } from 'node:crypto';
import { printable } from './escape.js';
import { readProductProperties } from './ova-read.js';
import { MislabelledOvaError, StandardSourceError } from './standard-source-error.js';

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
// ---------------------------------------------------------------------------------------------- the OVA checks

/** What the OVA must say it is. */
export interface ExpectedStandardOva {
  /** The appliance's NAME. */
  appliance: string;
  /** Semantic version without `v`. */
  version: string;
}

/**
 * Verifies a standard OVA fed in order, chunk by chunk: {@link update} with every chunk, then
 * {@link finish} once the last byte has passed.
 */
export class OvaVerifier {
  private readonly hash = createHash('sha256');
  private readonly walk: TarWalk;
  private ovfChecked = false;
  /** A broken archive is reported after the checksum comparison, which says more (tampered or damaged). */
  private walkError: unknown;

  /** `where` names the OVA in messages (its URI, already {@link printable}). */
  constructor(
    private readonly where: string,
    private readonly want: ExpectedStandardOva,
  ) {
    this.walk = new TarWalk(where, (entry) => {
      if (this.ovfChecked) return;
      this.ovfChecked = true;
      if (!/\.ovf$/i.test(entry.name)) throw new StandardSourceError(`${where} is not a valid OVA: its first entry is '${printable(entry.name, 100)}', not the OVF descriptor`);
      checkProperties(readProductProperties(entry.body!.toString('utf8')), want, where);
    });
  }

  /**
   * Feeds the next bytes. Throws a {@link MislabelledOvaError} as soon as the OVF descriptor names another
   * appliance, build type or version (stop the download: this OVA is not the one wanted); any other damage
   * is kept for {@link finish}.
   */
  update(chunk: Buffer): void {
    this.hash.update(chunk);
    if (this.walkError !== undefined) return;
    try {
      this.walk.feed(chunk);
    } catch (e) {
      if (e instanceof MislabelledOvaError) throw e;
      this.walkError = e;
    }
  }

  /**
   * After the last byte: the OVA's SHA-256 must be `expectedSha256` (the published `checksumFile` states it),
   * the archive must be complete with an OVF descriptor, and every entry must match the OVA's manifest.
   * Returns the OVA's SHA-256 (hex) and its one VMDK disk; throws a {@link StandardSourceError} otherwise.
   */
  finish(expectedSha256: string, checksumFile: string): { sha256: string; disk: TarEntryDigest } {
    const sha256 = this.hash.digest('hex');
    if (sha256 !== expectedSha256) throw new StandardSourceError(`${this.where} does not match its published checksum: ${checksumFile} says ${expectedSha256}, the downloaded bytes hash to ${sha256} (tampered or damaged; nothing was kept)`);
    if (this.walkError !== undefined) throw this.walkError;
    this.walk.finish();
    if (!this.ovfChecked) throw new StandardSourceError(`${this.where} is not a valid OVA: it holds no OVF descriptor`);
    return { sha256, disk: verifyAgainstManifest(this.walk.entries, this.where) };
  }
}

/** The OVF's labforge properties must name this appliance, the standard build type and this version. */
function checkProperties(props: Record<string, string>, want: ExpectedStandardOva, where: string): void {
  const problems: string[] = [];
  const appliance = props['appliance'] ?? '';
  if (appliance !== want.appliance) problems.push(`appliance '${printable(appliance, 80)}' (expected ${want.appliance})`);
  if (props['buildType'] !== 'standard') problems.push(`build type '${printable(props['buildType'] ?? '', 40)}' (expected standard)`);
  if (props['version'] !== want.version) problems.push(`version '${printable(props['version'] ?? '', 80)}' (expected ${want.version})`);
  if (problems.length > 0) throw new MislabelledOvaError(`${where} is not the standard ${want.appliance} ${want.version}: its OVF properties say ${problems.join(', ')}; refusing to warm it`);
}

/**
 * Every way an OVA's entries and its manifest `mf` disagree, one sentence each, entries in archive order
 * first (empty: they agree): an entry (other than the manifest and a `.cert`) without a SHA256 line or with
 * another SHA-256, and a manifest line naming no entry. Shared by the fetch and `labforge verify`.
 */
export function manifestProblems(entries: TarEntryDigest[], mf: TarEntryDigest): string[] {
  const problems: string[] = [];
  const manifest = parseManifest(mf.body!.toString('utf8'));
  for (const e of entries) {
    if (e === mf || /\.cert$/i.test(e.name)) continue;
    const line = manifest.get(e.name);
    if (!line || line.algorithm !== 'SHA256') problems.push(`its manifest has no SHA256 line for '${printable(e.name, 100)}'`);
    else if (line.hex !== e.sha256) problems.push(`'${printable(e.name, 100)}' does not match the OVA's manifest (manifest ${line.hex}, content ${e.sha256})`);
  }
  for (const name of manifest.keys()) if (!entries.some((e) => e.name === name)) problems.push(`its manifest lists '${printable(name, 100)}', which is not in the archive`);
  return problems;
}

/** Every entry but the manifest must be listed in it with a matching SHA-256; returns the one VMDK disk. */
function verifyAgainstManifest(entries: TarEntryDigest[], where: string): TarEntryDigest {
  const mf = entries.find((e) => /\.mf$/i.test(e.name));
  if (!mf) throw new StandardSourceError(`${where} has no manifest (.mf), so its disk cannot be verified`);
  const problems = manifestProblems(entries, mf);
  if (problems.length > 0) throw new StandardSourceError(`${where}: ${problems[0]}`);
  const disks = entries.filter((e) => /\.vmdk$/i.test(e.name));
  if (disks.length !== 1) throw new StandardSourceError(`${where} holds ${disks.length} VMDK disks; a labforge OVA has exactly one`);
  return disks[0]!;
}
