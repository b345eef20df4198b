/**
 * One concern: `labforge verify` — checking a downloaded OVA, the way a workshop instructor needs it checked,
 * in one streaming pass with memory flat in the OVA's size.
 *
 * The whole file is hashed for its published `.sha256` while the same bytes feed the tar walk of
 * ova-verify.ts ({@link TarWalk}), which hashes every entry: the OVF descriptor must come first, the manifest
 * (`.mf`) right after it or at the end (DSP0243), every entry must match its SHA256 manifest line and every
 * manifest line must name an entry. The report states what the OVF says (appliance, build type, version, build
 * date, git SHA) and summarizes the SBOM published beside the OVA (`<base>.cdx.json`, CycloneDX JSON), checked
 * against the SHA-256 the release metadata (`<base>.metadata.json`) lists for it.
 *
 * Bad input (no such file, a directory, not a tar, no checksum to check against) is an {@link InputError},
 * found before anything slow; any mismatch is an {@link OvaCheckError} naming the entry or file and what differs.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { printable } from './escape.js';
import { InputError, readBool, readString, type InputGetter } from './inputs.js';
import { readProductProperties } from './ova-read.js';
import { TarWalk, manifestProblems, type TarEntryDigest } from './ova-verify.js';
import { parseSha256Line } from './release-notes.js';
import { TransferProgress, formatBytes } from './transfer-progress.js';

/** The OVA does not match its checksum, its manifest or its companion files: damaged, truncated or altered. */
export class OvaCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OvaCheckError';
  }
}

export interface VerifyOvaOptions {
  /** The OVA to check. */
  ova: string;
  /** Its `sha256sum` file; undefined with {@link structureOnly}. */
  sha256File?: string;
  /** The SBOM to summarize (`<base>.cdx.json`), when there is one. */
  sbomFile?: string;
  /** The release metadata (`<base>.metadata.json`), when there is one. */
  metadataFile?: string;
  /** No published checksum to check against: the structure and manifest only (the report says so). */
  structureOnly: boolean;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** Minimum time between progress lines. Default 5000 ms. */
  progressIntervalMs?: number;
  signal?: AbortSignal;
}

/** What an SBOM beside the OVA says, in brief. */
export interface SbomSummary {
  file: string;
  /** `CycloneDX 1.6`. */
  format: string;
  /** Components listed (nested ones included). */
  components: number;
  /** `metadata.component` name and version: what the SBOM describes. */
  name?: string;
  version?: string;
  sha256: string;
  /** True when the release metadata lists this SBOM's SHA-256 (and it matched). */
  checkedByMetadata: boolean;
}

export interface OvaCheckReport {
  ova: string;
  size: number;
  sha256: string;
  /** The checksum file the whole OVA matched; undefined with structureOnly. */
  checksumFile?: string;
  /** Where the manifest is: right after the descriptor, or at the end. */
  manifestAt: 'second' | 'end';
  entries: { name: string; size: number; sha256: string }[];
  /** The OVF's labforge ProductSection (appliance, buildType, version, buildDate, gitSha). */
  properties: Record<string, string>;
  sbom?: SbomSummary;
  /** The metadata file whose sha256 matched the OVA, when there was one beside it. */
  metadataFile?: string;
  /** Things the person should know that are not failures. */
  notes: string[];
  seconds: number;
}

const exists = async (path: string) => (await stat(path).catch(() => undefined)) !== undefined;

/**
 * Reads and checks `labforge verify`'s inputs before anything slow: the OVA (a file that starts with a valid
 * tar header), its checksum file (`--sha256-file`, else `<file>.sha256` beside it; none → an error naming
 * `--structure-only`), the SBOM (`--sbom`, else `<base>.cdx.json` beside it, if there) and the metadata beside it.
 */
export async function readVerifyOvaOptions(get: InputGetter, positionals: string[]): Promise<VerifyOvaOptions> {
  if (positionals.length !== 1) {
    throw new InputError('file', positionals.length === 0 ? 'no OVA given' : `${positionals.length} files given, one OVA at a time`, 'run labforge verify FILE.ova');
  }
  const ova = positionals[0]!;
  const info = await stat(ova).catch(() => undefined);
  if (!info) throw new InputError('file', `${printable(ova)} does not exist`, 'give the path of the downloaded .ova file');
  if (!info.isFile()) throw new InputError('file', `${printable(ova)} is ${info.isDirectory() ? 'a directory' : 'not a regular file'}`, 'give the path of the downloaded .ova file');
  await checkTarStart(ova, info.size);

  const name = basename(ova);
  const base = join(dirname(ova), name.replace(/\.ova$/i, ''));
  const structureOnly = readBool(get, 'structure-only', false);
  let sha256File: string | undefined = readString(get, 'sha256-file') || undefined;
  if (sha256File !== undefined) {
    if (!(await exists(sha256File))) throw new InputError('sha256-file', `${printable(sha256File)} does not exist`, 'give the .sha256 file published with the OVA');
  } else if (await exists(`${ova}.sha256`)) {
    sha256File = `${ova}.sha256`;
  } else if (!structureOnly) {
    throw new InputError(
      'sha256-file',
      `nothing to check ${printable(name)} against: there is no ${printable(name)}.sha256 beside it and no --sha256-file`,
      'download the .sha256 published with the OVA next to it, or give --sha256-file; --structure-only checks the archive and its manifest without it, which finds damage but cannot tell the published OVA from another one',
    );
  }
  if (sha256File !== undefined && structureOnly) throw new InputError('structure-only', `is set, but there is a checksum file (${printable(sha256File)})`, 'leave --structure-only out: the OVA is checked against its checksum');

  let sbomFile: string | undefined = readString(get, 'sbom') || undefined;
  if (sbomFile !== undefined && !(await exists(sbomFile))) throw new InputError('sbom', `${printable(sbomFile)} does not exist`, 'give the .cdx.json SBOM published with the OVA, or leave --sbom out');
  if (sbomFile === undefined && (await exists(`${base}.cdx.json`))) sbomFile = `${base}.cdx.json`;
  const metadataFile = (await exists(`${base}.metadata.json`)) ? `${base}.metadata.json` : undefined;
  return { ova, sha256File, sbomFile, metadataFile, structureOnly };
}

/** The first 512 bytes must be a tar header with a valid checksum (an OVA is a ustar archive). */
async function checkTarStart(ova: string, size: number): Promise<void> {
  const notTar = (why: string) => new InputError('file', `${printable(ova)} is not an OVA: ${why}`, 'give the downloaded .ova file (a tar archive whose first entry is the OVF descriptor)');
  if (size < 1024) throw notTar(`it is ${size} bytes, too small for a tar archive`);
  const fd = await open(ova, 'r');
  const head = Buffer.alloc(512);
  try {
    await fd.read(head, 0, 512, 0);
  } finally {
    await fd.close();
  }
  const walk = new TarWalk(printable(basename(ova)));
  try {
    walk.feed(head);
  } catch {
    throw notTar('it does not start with a tar header');
  }
  if (walk.ended) throw notTar('it is an empty tar archive');
}

/** Reads and checks the `.sha256` file: `<hex>  <name>`; its hex is the checksum to match. */
async function readChecksum(file: string, ovaName: string, notes: string[]): Promise<string> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new InputError('sha256-file', `cannot read ${printable(file)} (${e.code ?? e.message})`, 'give the .sha256 file published with the OVA');
  });
  const { sha256, fileName } = parseSha256Line(text, printable(file));
  if (fileName !== ovaName) notes.push(`${basename(file)} names '${printable(fileName, 120)}', not ${printable(ovaName, 120)} (a renamed download?); its SHA-256 was compared all the same`);
  return sha256;
}

/** Streams the OVA once: the whole-file SHA-256 and the tar walk (every entry's SHA-256), with progress. */
async function streamOva(options: VerifyOvaOptions, size: number): Promise<{ sha256: string; walk: TarWalk; walkError?: Error }> {
  const where = printable(basename(options.ova));
  const whole = createHash('sha256');
  const walk = new TarWalk(where);
  let walkError: Error | undefined;
  const progress = new TransferProgress({ label: `verify ${where}`, totalBytes: size, log: options.log ?? (() => undefined), intervalMs: options.progressIntervalMs });
  const source = createReadStream(options.ova, { highWaterMark: 1 << 20, ...(options.signal ? { signal: options.signal } : {}) });
  for await (const chunk of source as AsyncIterable<Buffer>) {
    whole.update(chunk);
    if (walkError === undefined && !walk.ended) {
      try {
        walk.feed(chunk);
      } catch (e) {
        walkError = e as Error;
      }
    }
    progress.add(chunk.length);
  }
  progress.finish();
  if (walkError === undefined) {
    try {
      walk.finish();
    } catch (e) {
      walkError = e as Error;
    }
  }
  return { sha256: whole.digest('hex'), walk, ...(walkError ? { walkError } : {}) };
}

/** The structure's problems: descriptor first, one manifest second or at the end, unique names, manifest agreement. */
function structureProblems(entries: TarEntryDigest[]): { problems: string[]; manifestAt: 'second' | 'end' } {
  const problems: string[] = [];
  if (entries.length === 0) return { problems: ['the archive holds no entries'], manifestAt: 'second' };
  if (!/\.ovf$/i.test(entries[0]!.name)) problems.push(`its first entry is '${printable(entries[0]!.name, 100)}', not the OVF descriptor (*.ovf), which must come first`);
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) problems.push(`it holds '${printable(e.name, 100)}' twice`);
    seen.add(e.name);
  }
  const manifests = entries.filter((e) => /\.mf$/i.test(e.name));
  if (manifests.length !== 1) {
    problems.push(manifests.length === 0 ? 'it has no manifest (.mf), so its entries cannot be checked' : `it has ${manifests.length} manifests (.mf); an OVA has one`);
    return { problems, manifestAt: 'second' };
  }
  const mf = manifests[0]!;
  const at = entries.indexOf(mf);
  // DSP0243: the manifest (and a certificate) right after the descriptor, or both at the end of the archive.
  const certAfter = entries[at + 1] !== undefined && /\.cert$/i.test(entries[at + 1]!.name) ? 1 : 0;
  const manifestAt = at === 1 ? 'second' : 'end';
  if (at !== 1 && at + certAfter !== entries.length - 1) problems.push(`its manifest '${printable(mf.name, 100)}' is entry ${at + 1} of ${entries.length}; it must follow the OVF descriptor or end the archive`);
  problems.push(...manifestProblems(entries, mf));
  return { problems, manifestAt };
}

/** Counts the components of a CycloneDX BOM, nested ones included. */
function countComponents(list: unknown): number {
  if (!Array.isArray(list)) return 0;
  return list.reduce((n: number, c: unknown) => n + 1 + countComponents((c as { components?: unknown } | null)?.components), 0);
}

/** Reads, summarizes and (against the metadata's `sbom.sha256`) checks the SBOM beside the OVA. */
async function checkSbom(file: string, metadata: Record<string, unknown> | undefined, problems: string[], notes: string[]): Promise<SbomSummary | undefined> {
  const name = printable(basename(file), 120);
  const info = await stat(file);
  if (info.size > 256 * 1024 * 1024) {
    problems.push(`${name} is ${formatBytes(info.size)}, more than any appliance SBOM`);
    return undefined;
  }
  const bytes = await readFile(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const listed = (metadata?.['sbom'] as { sha256?: unknown; key?: unknown } | undefined) ?? undefined;
  let checkedByMetadata = false;
  if (typeof listed?.sha256 === 'string') {
    if (listed.sha256.toLowerCase() !== sha256) {
      problems.push(`${name} does not match the release metadata (metadata sbom.sha256 ${printable(listed.sha256, 80)}, content ${sha256})`);
      return undefined;
    }
    checkedByMetadata = true;
  }
  let bom: Record<string, unknown>;
  try {
    bom = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    problems.push(`${name} is not JSON, so not a CycloneDX SBOM`);
    return undefined;
  }
  if (bom === null || typeof bom !== 'object' || bom['bomFormat'] !== 'CycloneDX') {
    problems.push(`${name} is not a CycloneDX SBOM (its bomFormat is ${printable(JSON.stringify((bom as Record<string, unknown> | null)?.['bomFormat'] ?? null), 40)})`);
    return undefined;
  }
  if (!checkedByMetadata) notes.push(metadata ? `the release metadata lists no SHA-256 for ${name}: the SBOM is summarized, not checked` : `no release metadata beside the OVA: ${name} is summarized, not checked`);
  const component = ((bom['metadata'] as Record<string, unknown> | undefined)?.['component'] ?? {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? printable(v, 120) : undefined);
  return {
    file,
    format: `CycloneDX ${text(bom['specVersion']) ?? '(no specVersion)'}`,
    components: countComponents(bom['components']),
    ...(text(component['name']) ? { name: text(component['name']) } : {}),
    ...(text(component['version']) ? { version: text(component['version']) } : {}),
    sha256,
    checkedByMetadata,
  };
}

/** The metadata file beside the OVA as an object (a broken one is a note, not a failure: it is optional). */
async function readMetadata(file: string | undefined, notes: string[]): Promise<Record<string, unknown> | undefined> {
  if (file === undefined) return undefined;
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  notes.push(`${printable(basename(file), 120)} is not a JSON object; it was not used`);
  return undefined;
}

/**
 * Checks an OVA in one streaming pass: its published checksum, its structure and manifest, the SBOM beside it.
 * Returns the report; throws an {@link OvaCheckError} naming the first problem (the entry or file and what
 * differs), with the checksum verdict in the same line.
 */
export async function verifyOva(options: VerifyOvaOptions): Promise<OvaCheckReport> {
  const started = performance.now();
  const name = basename(options.ova);
  const shown = printable(name, 120);
  const notes: string[] = [];
  const expected = options.sha256File !== undefined ? await readChecksum(options.sha256File, name, notes) : undefined;
  const metadata = await readMetadata(options.metadataFile, notes);
  const size = (await stat(options.ova)).size;

  const { sha256, walk, walkError } = await streamOva(options, size);
  // Every problem is a whole sentence that names the OVA or the file it is about.
  const problems: string[] = [];
  let manifestAt: 'second' | 'end' = 'second';
  if (walkError) problems.push(walkError.message);
  else {
    const s = structureProblems(walk.entries);
    problems.push(...s.problems.map((p) => `${shown}: ${p}`));
    manifestAt = s.manifestAt;
  }
  let properties: Record<string, string> = {};
  const ovf = walk.entries[0];
  if (ovf?.body && /\.ovf$/i.test(ovf.name)) {
    try {
      properties = readProductProperties(ovf.body.toString('utf8'));
    } catch (e) {
      problems.push(`${shown}: ${(e as Error).message}`);
    }
    if (Object.keys(properties).length === 0) notes.push('its OVF descriptor has no labforge ProductSection: not a labforge build, or packed by another tool');
  }
  const metaSha = typeof metadata?.['sha256'] === 'string' ? (metadata['sha256'] as string).toLowerCase() : undefined;
  if (metaSha !== undefined && metaSha !== sha256) problems.push(`${shown} does not match ${printable(basename(options.metadataFile!), 120)} (metadata sha256 ${printable(metaSha, 80)}, content ${sha256})`);
  const sbom = options.sbomFile !== undefined ? await checkSbom(options.sbomFile, metadata, problems, notes) : undefined;
  if (sbom === undefined && options.sbomFile === undefined && metadata?.['sbom'] !== undefined) notes.push('the release metadata lists an SBOM, but it is not beside the OVA (download the .cdx.json too, or give --sbom)');

  const checksumWrong = expected !== undefined && expected !== sha256;
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1, 4).join('; ')}${problems.length > 4 ? '; …' : ''})` : '';
    const sum = checksumWrong ? `; the file's SHA-256 ${sha256} differs from ${printable(basename(options.sha256File!), 120)} too` : '';
    throw new OvaCheckError(`${problems[0]}${more}${sum} — damaged or altered: download it again`);
  }
  if (checksumWrong) {
    throw new OvaCheckError(`${shown} does not match its checksum: ${printable(basename(options.sha256File!), 120)} says ${expected}, the file hashes to ${sha256} (its archive and manifest are intact, so the checksum file or the bytes outside the entries differ: download both again)`);
  }
  return {
    ova: options.ova,
    size,
    sha256,
    ...(options.sha256File !== undefined ? { checksumFile: options.sha256File } : {}),
    manifestAt,
    entries: walk.entries.map((e) => ({ name: e.name, size: e.size, sha256: e.sha256 })),
    properties,
    ...(sbom ? { sbom } : {}),
    ...(metaSha !== undefined ? { metadataFile: options.metadataFile } : {}),
    notes,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The report as a person reads it: the verdict, what the OVF says, the SBOM, the notes. */
export function formatOvaCheckReport(r: OvaCheckReport): string {
  const p = (key: string) => (r.properties[key] ? printable(r.properties[key]!, 120) : '(not stated)');
  const name = printable(basename(r.ova), 120);
  const rows: [string, string][] = [
    ['file', `${name}, ${formatBytes(r.size)} (${r.size} bytes)`],
    ['SHA-256', r.checksumFile ? `${r.sha256}, as ${printable(basename(r.checksumFile), 120)} says` : `${r.sha256} — NOT checked against a published checksum (--structure-only)`],
    ['structure', `OVF descriptor first, manifest ${r.manifestAt === 'second' ? 'second' : 'at the end'}; ${r.entries.length} entries, each matching its SHA256 manifest line`],
    ['appliance', p('appliance')],
    ['build type', p('buildType')],
    ['version', p('version')],
    ['build date', p('buildDate')],
    ['git SHA', p('gitSha')],
  ];
  if (r.metadataFile) rows.push(['metadata', `${printable(basename(r.metadataFile), 120)} states the same SHA-256`]);
  if (r.sbom) {
    const what = r.sbom.name ? `, describes ${r.sbom.name}${r.sbom.version ? ` ${r.sbom.version}` : ''}` : '';
    rows.push(['SBOM', `${printable(basename(r.sbom.file), 120)}: ${r.sbom.format}, ${r.sbom.components} components${what}${r.sbom.checkedByMetadata ? '; SHA-256 as the release metadata lists' : ''}`]);
  } else rows.push(['SBOM', 'none beside the OVA']);
  const verdict = r.checksumFile ? `OK: ${name} is intact and is the file its checksum names` : `STRUCTURE OK: ${name} is intact, but was not checked against a published checksum`;
  return [verdict, ...rows.map(([k, v]) => `  ${k.padEnd(11)} ${v}`), ...r.notes.map((n) => `  note: ${n}`)].join('\n') + '\n';
}
