/**
 * A pre-warmed build starts from the published standard OVA (actions/lib/standard-source.ts), with real
 * components: a qcow2 made by qemu-img/qemu-io, packed by the real packOva, published by the real
 * uploadRelease to a file:// directory and to the GCS emulator, then fetched, verified and converted back.
 * Also the upload's source-sha256/source-uri inputs that record where a pre-warmed release came from.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { packOva } from '../../actions/lib/ova-pack.js';
import { readReleaseFacts, renderReleaseNotes } from '../../actions/lib/release-notes.js';
import { uploadRelease, type UploadReleaseOptions } from '../../actions/lib/release-upload.js';
import { StandardSourceError, fetchPublishedStandard, readFetchStandardOptions, type FetchStandardOptions } from '../../actions/lib/standard-source.js';
import { TarWalk } from '../../actions/lib/ova-verify.js';
import { GENERIC_LINUX_64 } from '../../actions/lib/ovf-descriptor.js';
import { parseDestination, readUploadOptions } from '../../actions/lib/upload-options.js';
import { GcsEmulator } from '../support/gcs-emulator.js';
import { parseCommandFile, repoRoot, runBundledAction } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';

const APPLIANCE = 'demo-lab';
const VERSION = '1.0.0';
const name = (version: string, type = 'standard') => `${APPLIANCE}-${type}-${version}`;
const relDir = (dest: string, version = VERSION) => join(dest, 'releases', `v${version}`, 'standard');

let work: string;
/** The source image every standard OVA below is packed from. */
let source: string;
/** A file:// destination holding the standard release of VERSION (never modified by a test). */
let dest: string;
let publishedSha: string;

/** A qcow2 with recognisable data: patterns written with qemu-io, incompressible random bytes, and holes. */
function makeSourceImage(path: string): void {
  const raw = `${path}.raw`;
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, String(64 * 1024 * 1024)]);
  execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'seek=20', 'count=3', 'conv=notrunc', 'status=none']);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path]);
  rmSync(raw);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x5c 10M 2M', '-c', 'write -P 0x42 63M 64k', path], { stdio: 'ignore' });
}

/** Packs the source image with the real packOva; the OVA says appliance demo-lab, `type`, `version`. */
async function packStandard(dir: string, version: string, type: 'standard' | 'prewarmed' = 'standard', fileName = `${name(version, type)}.ova`): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const r = await packOva({ image: source, out: join(dir, fileName), appliance: APPLIANCE, buildType: type, version, os: GENERIC_LINUX_64, cpus: 2, memoryMiB: 1024, gitSha: 'abc1234' });
  return r.ova;
}

function uploadOptions(path: string, destination: string, extra: Partial<UploadReleaseOptions> = {}): UploadReleaseOptions {
  return {
    path: [path],
    destination: parseDestination(destination),
    parallelism: 2,
    chunkSizeMib: 1,
    overwrite: false,
    makePublic: false,
    signedUrlHours: 0,
    retentionKeep: 0,
    retentionDryRun: false,
    portal: false,
    log: () => {},
    ...extra,
  };
}

/**
 * Puts an OVA where the standard release of `version` goes, with its .sha256, without uploadRelease (which
 * refuses an OVA whose properties contradict the version): a mislabelled release made by other means.
 */
function placeMislabelled(ova: string, destDir: string, version: string): void {
  const dir = relDir(destDir, version);
  mkdirSync(dir, { recursive: true });
  cpSync(ova, join(dir, `${name(version)}.ova`));
  const sha = createHash('sha256').update(readFileSync(ova)).digest('hex');
  writeFileSync(join(dir, `${name(version)}.ova.sha256`), `${sha}  ${name(version)}.ova\n`);
}

/** Publishes an OVA as the standard release of `version` at a file:// destination. */
async function publish(ova: string, destDir: string, version = VERSION): Promise<string> {
  const r = await uploadRelease(uploadOptions(ova, `file://${destDir}`, { appliance: APPLIANCE, version, buildType: 'standard' }));
  return r.sha256;
}

function fetchOptions(destDir: string, outDir: string, extra: Partial<FetchStandardOptions> = {}): FetchStandardOptions {
  return { destination: parseDestination(`file://${destDir}`), appliance: APPLIANCE, version: VERSION, outDir, log: () => {}, ...extra };
}

/** A copy of the published destination that a test may damage. */
function copyOfDest(label: string): string {
  const copy = join(work, `dest-${label}`);
  cpSync(dest, copy, { recursive: true });
  return copy;
}

/** The byte offset and size of the OVA's VMDK entry, read with the same tar walk. */
function vmdkRange(ova: string): { offset: number; size: number } {
  const walk = new TarWalk(ova);
  walk.feed(readFileSync(ova));
  const disk = walk.entries.find((e) => e.name.endsWith('.vmdk'))!;
  return { offset: disk.offset, size: disk.size };
}

function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

/** The outcome every failed fetch must have: the error, and nothing in (or no) outDir. */
async function expectRefusedAndClean(promise: Promise<unknown>, outDir: string, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(error).toBeInstanceOf(StandardSourceError);
  expect(error!.message).toMatch(message);
  expect(error!.message).not.toContain('\n');
  expect(existsSync(outDir) ? readdirSync(outDir) : []).toEqual([]);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'labforge-standard-source-'));
  source = join(work, 'source.qcow2');
  makeSourceImage(source);
  dest = join(work, 'dest');
  publishedSha = await publish(await packStandard(join(work, 'packed'), VERSION), dest);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('fetching the published standard release (file://)', () => {
  it('downloads, verifies and converts it into a writable qcow2 equal to the source image', async () => {
    const outDir = join(work, 'out-ok');
    const lines: string[] = [];
    const r = await fetchPublishedStandard(fetchOptions(dest, outDir, { log: (l) => lines.push(l), progressIntervalMs: 0 }));
    if (!r.found) throw new Error('the published standard release was not found');
    expect(r.image).toBe(join(outDir, `${name(VERSION)}.qcow2`));
    expect(r.uri).toBe(`file://${relDir(dest)}/${name(VERSION)}.ova`);
    expect(r.ovaSha256).toBe(publishedSha);
    expect(readFileSync(join(relDir(dest), `${name(VERSION)}.ova.sha256`), 'utf8')).toBe(`${r.ovaSha256}  ${name(VERSION)}.ova\n`);
    expect(readdirSync(outDir)).toEqual([`${name(VERSION)}.qcow2`]);
    expect(JSON.parse(execFileSync('qemu-img', ['info', '--output=json', r.image], { encoding: 'utf8' })).format).toBe('qcow2');
    const compare = spawnSync('qemu-img', ['compare', source, r.image], { encoding: 'utf8' });
    expect(compare.stdout).toContain('Images are identical');
    expect(compare.status).toBe(0);
    // Writable: the warm boots it and writes to it.
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 2M 64k', r.image], { stdio: 'ignore' });
    expect(spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x11 2M 64k', r.image], { encoding: 'utf8' }).stdout).not.toContain('Pattern verification failed');
    expect(spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x5c 10M 2M', r.image], { encoding: 'utf8' }).stdout).not.toContain('Pattern verification failed');
    expect(lines.join('\n')).toMatch(/read demo-lab-standard-1\.0\.0\.ova: 100\.0%/);
    expect(lines.join('\n')).toContain(`verified: SHA-256 ${publishedSha} matches demo-lab-standard-1.0.0.ova.sha256`);
  });

  it('reports not found for another version, and creates nothing', async () => {
    const outDir = join(work, 'out-missing');
    const r = await fetchPublishedStandard(fetchOptions(dest, outDir, { version: '1.0.1' }));
    expect(r).toEqual({ found: false, uri: `file://${relDir(dest, '1.0.1')}/${name('1.0.1')}.ova` });
    expect(existsSync(outDir)).toBe(false);
    // …and for a destination that does not exist at all.
    expect((await fetchPublishedStandard(fetchOptions(join(work, 'nowhere'), outDir))).found).toBe(false);
    expect(existsSync(join(work, 'nowhere'))).toBe(false);
  });

  it('refuses a tampered OVA (same size) naming the checksum mismatch, and leaves nothing behind', async () => {
    const copy = copyOfDest('tampered');
    const ova = join(relDir(copy), `${name(VERSION)}.ova`);
    const { offset, size } = vmdkRange(ova);
    flipByte(ova, offset + Math.floor(size / 2));
    const outDir = join(work, 'out-tampered');
    mkdirSync(outDir); // an existing directory stays, empty
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(copy, outDir)), outDir, new RegExp(`does not match its published checksum: ${name(VERSION)}\\.ova\\.sha256 says ${publishedSha}, the downloaded bytes hash to [0-9a-f]{64}`));
    expect(existsSync(outDir)).toBe(true);
    // A directory the fetch created is removed again.
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(copy, join(work, 'out-tampered-new', 'deeper'))), join(work, 'out-tampered-new'), /does not match its published checksum/);
    expect(existsSync(join(work, 'out-tampered-new'))).toBe(false);
    // A damaged tar header is reported as what it is first: a checksum mismatch.
    const other = copyOfDest('tampered-header');
    flipByte(join(relDir(other), `${name(VERSION)}.ova`), 10);
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(other, outDir)), outDir, /does not match its published checksum/);
  });

  it('a cancelled fetch leaves nothing behind', async () => {
    const outDir = join(work, 'out-cancelled');
    const controller = new AbortController();
    controller.abort(new Error('cancelled by the test'));
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(dest, outDir, { signal: controller.signal })), outDir, /cancelled/);
    expect(existsSync(outDir)).toBe(false);
  });

  it("refuses a disk that does not match the OVA's own manifest even when the .sha256 was rewritten to fit", async () => {
    const copy = copyOfDest('manifest');
    const ova = join(relDir(copy), `${name(VERSION)}.ova`);
    const { offset } = vmdkRange(ova);
    flipByte(ova, offset + 600);
    const sha = execFileSync('sha256sum', [ova], { encoding: 'utf8' }).split(' ')[0]!;
    writeFileSync(`${ova}.sha256`, `${sha}  ${name(VERSION)}.ova\n`);
    unlinkSync(join(copy, 'index.json')); // the catalog would disagree with the rewritten checksum first
    const outDir = join(work, 'out-manifest');
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(copy, outDir)), outDir, /'demo-lab-standard-1\.0\.0-disk1\.vmdk' does not match the OVA's manifest \(manifest [0-9a-f]{64}, content [0-9a-f]{64}\)/);
  });

  it('refuses a truncated OVA before downloading it', async () => {
    const copy = copyOfDest('truncated');
    const ova = join(relDir(copy), `${name(VERSION)}.ova`);
    truncateSync(ova, 4096);
    const outDir = join(work, 'out-truncated');
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(copy, outDir)), outDir, /is 4096 bytes but the catalog lists \d+: it is truncated or was replaced/);
    // Without a catalog, the checksum and the archive walk still catch it.
    unlinkSync(join(copy, 'index.json'));
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(copy, outDir)), outDir, /does not match its published checksum/);
  });

  it('refuses a release whose .sha256 is missing', async () => {
    const copy = copyOfDest('nosum');
    unlinkSync(join(relDir(copy), `${name(VERSION)}.ova.sha256`));
    const outDir = join(work, 'out-nosum');
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(copy, outDir)), outDir, /is published without its demo-lab-standard-1\.0\.0\.ova\.sha256, so it cannot be verified/);
  });

  it('refuses an OVA whose OVF says prewarmed', async () => {
    const d = join(work, 'dest-prewarmed');
    const ova = await packStandard(join(work, 'packed-prewarmed'), '2.0.0', 'prewarmed', `${name('2.0.0')}.ova`);
    placeMislabelled(ova, d, '2.0.0');
    const outDir = join(work, 'out-prewarmed');
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(d, outDir, { version: '2.0.0' })), outDir, /is not the standard demo-lab 2\.0\.0: its OVF properties say build type 'prewarmed' \(expected standard\); refusing to warm it/);
  });

  it('refuses an OVA whose OVF says another version', async () => {
    const d = join(work, 'dest-version');
    const ova = await packStandard(join(work, 'packed-version'), '3.0.1', 'standard', `${name('3.0.0')}.ova`);
    placeMislabelled(ova, d, '3.0.0');
    const outDir = join(work, 'out-version');
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(d, outDir, { version: '3.0.0' })), outDir, /its OVF properties say version '3\.0\.1' \(expected 3\.0\.0\)/);
  });

  it('refuses a release file that is a symlink leading out of the destination', async () => {
    const copy = copyOfDest('symlink');
    const ova = join(relDir(copy), `${name(VERSION)}.ova`);
    const outside = join(work, 'outside.ova');
    cpSync(ova, outside);
    unlinkSync(ova);
    symlinkSync(outside, ova);
    const outDir = join(work, 'out-symlink');
    await expectRefusedAndClean(fetchPublishedStandard(fetchOptions(copy, outDir)), outDir, /leads out of the destination/);
  });
});

describe('labforge fetch-standard', () => {
  it('prints found, image, sha256 and uri, and writes them to $GITHUB_OUTPUT with --github-output', async () => {
    const outDir = join(work, 'cli-out');
    const outputFile = join(work, 'github-output');
    writeFileSync(outputFile, '');
    const args = ['fetch-standard', '--destination', `file://${dest}`, '--appliance', join(repoRoot, 'packer', 'demo-lab'), '--version', VERSION, '--out', outDir, '--github-output'];
    const r = await runCli(args, { env: { GITHUB_OUTPUT: outputFile } });
    expect(r.stderr).not.toContain('labforge fetch-standard:');
    expect(r.code).toBe(0);
    const image = join(outDir, `${name(VERSION)}.qcow2`);
    const uri = `file://${relDir(dest)}/${name(VERSION)}.ova`;
    expect(JSON.parse(r.stdout)).toEqual({ found: true, image, sha256: publishedSha, uri });
    expect(parseCommandFile(readFileSync(outputFile, 'utf8'))).toEqual({ found: 'true', image, sha256: publishedSha, uri });

    writeFileSync(outputFile, '');
    const missing = await runCli(['fetch-standard', '--destination', `file://${dest}`, '--appliance', APPLIANCE, '--version', '9.9.9', '--out', join(work, 'cli-missing'), '--github-output'], { env: { GITHUB_OUTPUT: outputFile } });
    expect(missing.code).toBe(0);
    expect(JSON.parse(missing.stdout)).toEqual({ found: false, image: '', sha256: '', uri: '' });
    expect(parseCommandFile(readFileSync(outputFile, 'utf8'))).toEqual({ found: 'false', image: '', sha256: '', uri: '' });
    expect(existsSync(join(work, 'cli-missing'))).toBe(false);
  });

  it.each([
    [{ '--destination': 'file:///srv/labs/../etc' }, 'destination', /contains a '\.' or '\.\.' path segment/],
    [{ '--destination': 'file:///srv/labs/%2e%2e/etc' }, 'destination', /contains a '\.' or '\.\.' path segment/],
    [{ '--destination': 's3://bucket/labs' }, 'destination', /is neither gs:\/\/BUCKET\/PREFIX nor file:\/\/\/DIR/],
    [{ '--version': '1.0' }, 'version', /is not a semantic version/],
    [{ '--appliance': 'packer/no-such-appliance' }, 'appliance', /does not exist/],
    [{ '--github-output': true }, 'github-output', /\$GITHUB_OUTPUT is not/],
  ] as const)('refuses bad input before any work: %j (exit 2, one line naming %s)', async (override, input, message) => {
    const flags: Record<string, string | true> = { '--destination': `file://${dest}`, '--appliance': APPLIANCE, '--version': VERSION, '--out': join(work, 'cli-never'), ...override };
    const r = await runCli(['fetch-standard', ...Object.entries(flags).flatMap(([k, v]) => (v === true ? [k] : [k, v]))]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^labforge fetch-standard: ${input}: `));
    expect(lines[0]).toMatch(message);
    expect(r.stdout).toBe('');
    expect(existsSync(join(work, 'cli-never'))).toBe(false);
  });

  it('reads the appliance name from an appliance directory, and refuses a destination with .. in the library too', async () => {
    const opts = await readFetchStandardOptions(inputsFrom({ destination: `file://${dest}`, appliance: join(repoRoot, 'packer', 'demo-lab'), version: 'v1.0.0', out: join(work, 'x') }), {});
    expect(opts).toMatchObject({ appliance: 'demo-lab', version: '1.0.0', githubOutput: false });
    await expect(readFetchStandardOptions(inputsFrom({ destination: 'gs://labs/a/../b', appliance: APPLIANCE, version: VERSION, out: join(work, 'x') }), {})).rejects.toThrow(InputError);
    // parseDestination refuses it already; a Destination made by hand meets the library's own check.
    expect(() => parseDestination(`file://${dest}/releases/..`)).toThrow(/^destination: .* has a '\.' or '\.\.' path segment/);
    const dotted = { kind: 'file' as const, uri: `file://${dest}/releases/..`, dir: `${dest}/releases/..` };
    await expect(fetchPublishedStandard({ ...fetchOptions(dest, join(work, 'x')), destination: dotted })).rejects.toThrow(/destination: .* contains a '\.' or '\.\.' path segment/);
    expect(existsSync(join(work, 'x'))).toBe(false);
  });
});

describe('fetching the published standard release from GCS (emulator)', () => {
  let emulator: GcsEmulator;
  const fastRetry = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };
  let gcsSha: string;
  beforeAll(async () => {
    emulator = await GcsEmulator.start({ buckets: ['labs'] });
    const r = await uploadRelease(uploadOptions(join(work, 'packed', `${name(VERSION)}.ova`), 'gs://labs/appliances', { endpoint: emulator.endpoint, appliance: APPLIANCE, version: VERSION, buildType: 'standard', retry: fastRetry }));
    gcsSha = r.sha256;
  });
  afterAll(async () => {
    await emulator.stop();
  });
  const gcsOptions = (outDir: string, extra: Partial<FetchStandardOptions> = {}): FetchStandardOptions => ({
    destination: parseDestination('gs://labs/appliances'),
    endpoint: emulator.endpoint,
    appliance: APPLIANCE,
    version: VERSION,
    outDir,
    retry: fastRetry,
    stallTimeoutMs: 1000,
    log: () => {},
    ...extra,
  });
  const isDownload = (object: RegExp) => ({ method: 'GET', object, path: /^\/(download\/)?(storage\/v1\/)?b\/labs\/o\// });

  it('streams it, resuming after a connection that died mid-download from the byte it reached, and converts it', async () => {
    const outDir = join(work, 'gcs-out');
    emulator.clearFaults();
    // The first request is the object's metadata, the second the download: reset that one after 1 MiB.
    emulator.injectFault({ match: isDownload(/demo-lab-standard-1\.0\.0\.ova$/), nth: 2, action: { reset: { afterBodyBytes: 1024 * 1024 } } });
    const lines: string[] = [];
    const r = await fetchPublishedStandard(gcsOptions(outDir, { log: (l) => lines.push(l) }));
    if (!r.found) throw new Error('not found in the emulator');
    expect(r.uri).toBe(`gs://labs/appliances/releases/v${VERSION}/standard/${name(VERSION)}.ova`);
    expect(r.ovaSha256).toBe(gcsSha);
    expect(spawnSync('qemu-img', ['compare', source, r.image], { encoding: 'utf8' }).stdout).toContain('Images are identical');
    expect(readdirSync(outDir)).toEqual([`${name(VERSION)}.qcow2`]);
    expect(lines.join('\n')).toMatch(/resuming from byte \d+/);
    const ranged = emulator.requests.filter((q) => q.object?.endsWith('.ova') && q.status === 206);
    expect(ranged.length).toBeGreaterThanOrEqual(1);
  });

  it('reports not found for a version the bucket does not hold', async () => {
    const outDir = join(work, 'gcs-missing');
    expect((await fetchPublishedStandard(gcsOptions(outDir, { version: '1.2.3' }))).found).toBe(false);
    expect(existsSync(outDir)).toBe(false);
  });

  it('refuses bytes damaged in transit and leaves nothing behind', async () => {
    const outDir = join(work, 'gcs-corrupt');
    emulator.clearFaults();
    emulator.injectFault({ match: isDownload(/demo-lab-standard-1\.0\.0\.ova$/), nth: 2, action: { corrupt: { atByte: 200_000 } } });
    await expectRefusedAndClean(fetchPublishedStandard(gcsOptions(outDir)), outDir, /does not match its published checksum/);
    emulator.clearFaults();
  });
});

describe('upload: source-sha256 records where a pre-warmed release came from', () => {
  const sha = 'a'.repeat(64);
  const base = { path: '/x.ova', destination: 'file:///srv/labs' };

  it.each([
    [{ 'source-sha256': 'abc' }, 'source-sha256', /'abc' is not a SHA-256/],
    [{ 'source-sha256': sha, version: '1.0.0', 'build-type': 'standard' }, 'source-sha256', /is set for a standard build/],
    [{ 'source-uri': 'file:///srv/labs/x.ova' }, 'source-uri', /is set without source-sha256/],
    [{ 'source-sha256': sha, 'source-uri': 'http://example.com/x.ova', version: '1.0.0', 'build-type': 'prewarmed' }, 'source-uri', /is not a gs:\/\/ or file:\/\/ URI/],
  ])('refuses %j naming %s', (extra, input, message) => {
    let error: unknown;
    try {
      readUploadOptions(inputsFrom({ ...base, ...extra }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).input).toBe(input);
    expect((error as InputError).message).toMatch(message);
  });

  it('accepts an empty source-sha256 for any build, and upper-case hex for a pre-warmed one', () => {
    expect(readUploadOptions(inputsFrom({ ...base, 'source-sha256': '', version: '1.0.0', 'build-type': 'standard' })).sourceSha256).toBeUndefined();
    expect(readUploadOptions(inputsFrom({ ...base, 'source-sha256': sha.toUpperCase(), version: '1.0.0', 'build-type': 'prewarmed' })).sourceSha256).toBe(sha);
  });

  it('records builtFrom in the published metadata of a pre-warmed release', async () => {
    const d = join(work, 'dest-builtfrom');
    const ova = await packStandard(join(work, 'packed-builtfrom'), VERSION, 'prewarmed');
    const uri = `file://${relDir(dest)}/${name(VERSION)}.ova`;
    const r = await uploadRelease(uploadOptions(ova, `file://${d}`, { sourceSha256: publishedSha, sourceUri: uri }));
    const meta = JSON.parse(readFileSync(join(d, 'releases', `v${VERSION}`, 'prewarmed', `${name(VERSION, 'prewarmed')}.metadata.json`), 'utf8'));
    expect(meta).toMatchObject({ buildType: 'prewarmed', builtFrom: { buildType: 'standard', sha256: publishedSha, uri } });
    expect(JSON.parse(readFileSync(r.metadataFile, 'utf8')).builtFrom.sha256).toBe(publishedSha);
    // The release notes say where the pre-warmed build came from.
    const facts = await readReleaseFacts({ sha256File: `${ova}.sha256`, metadataFile: r.metadataFile });
    expect(facts.builtFromSha256).toBe(publishedSha);
    expect(renderReleaseNotes(facts)).toContain(`| Built from | the published standard OVA of this version, SHA-256 \`${publishedSha}\` |`);
  });

  it('refuses source-sha256 when the OVA turns out to be a standard build, before publishing anything', async () => {
    const d = join(work, 'dest-builtfrom-standard');
    await expect(uploadRelease(uploadOptions(join(work, 'packed', `${name(VERSION)}.ova`), `file://${d}`, { sourceSha256: publishedSha }))).rejects.toThrow(/source-sha256: is set, but demo-lab-standard-1\.0\.0\.ova is a standard release/);
    expect(existsSync(d)).toBe(false);
  });

  it('the bundled action fails with ::error naming source-sha256, and records it when valid', async () => {
    const ova = join(work, 'packed-builtfrom', `${name(VERSION, 'prewarmed')}.ova`);
    const bad = await runBundledAction('upload-artifact', { inputs: { path: ova, destination: `file://${join(work, 'dest-action')}`, 'source-sha256': 'not-a-sha' } });
    expect(bad.code).toBe(1);
    expect(bad.errors.join('\n')).toMatch(/::error title=upload-artifact::source-sha256: 'not-a-sha' is not a SHA-256/);
    expect(existsSync(join(work, 'dest-action'))).toBe(false);
    const good = await runBundledAction('upload-artifact', { inputs: { path: ova, destination: `file://${join(work, 'dest-action')}`, 'source-sha256': publishedSha } });
    expect(good.errors).toEqual([]);
    expect(JSON.parse(readFileSync(good.outputs['metadata-file']!, 'utf8')).builtFrom).toEqual({ buildType: 'standard', sha256: publishedSha });
    expect(good.summary).toContain(publishedSha);
  });
});
