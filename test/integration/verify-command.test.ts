/**
 * `labforge verify FILE.ova`, run as an instructor runs it (the built CLI, bin/labforge) on a real OVA made by
 * the real packOva (qemu-img streamOptimized VMDK), then damaged the ways a download is damaged: a flipped byte in
 * an entry, in the checksum file or outside the entries, a manifest line removed, an entry removed or added (the
 * archive rebuilt with tar-stream, its .sha256 rewritten to fit so that only the manifest can tell), a truncation.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';
import { packOva, type PackOvaResult } from '../../actions/lib/ova-pack.js';
import { GENERIC_LINUX_64 } from '../../actions/lib/ovf-descriptor.js';
import { TarWalk, type TarEntryDigest } from '../../actions/lib/ova-verify.js';
import { runCli } from '../support/run-cli.js';

const NAME = 'demo-lab-prewarmed-1.4.0';
const DISK = `${NAME}-disk1.vmdk`;
let work: string;
let packed: PackOvaResult;
let caseNo = 0;

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A fresh directory holding a copy of the good OVA and its .sha256 (same names as published). */
function copyOfGood(): { dir: string; ova: string; sum: string } {
  const dir = join(work, `case-${++caseNo}`);
  mkdirSync(dir);
  const ova = join(dir, `${NAME}.ova`);
  copyFileSync(packed.ova, ova);
  copyFileSync(packed.sha256File, `${ova}.sha256`);
  return { dir, ova, sum: `${ova}.sha256` };
}

/** Every entry of an OVA with its data offset (the product's own walker; the test only needs the offsets). */
function entriesOf(ova: string): TarEntryDigest[] {
  const walk = new TarWalk(ova);
  walk.feed(readFileSync(ova));
  return walk.entries;
}

function flipByte(file: string, offset: number): void {
  const bytes = readFileSync(file);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  writeFileSync(file, bytes);
}

/** Rebuilds the OVA with tar-stream through `edit` (entries in order), and writes a .sha256 that fits the result. */
async function rebuild(ova: string, edit: (entries: { name: string; body: Buffer }[]) => { name: string; body: Buffer }[]): Promise<void> {
  const entries: { name: string; body: Buffer }[] = [];
  const tar = extract();
  tar.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      entries.push({ name: header.name, body: Buffer.concat(chunks) });
      next();
    });
  });
  await pipeline(createReadStream(ova), tar);
  const out = pack();
  const written = pipeline(out, createWriteStream(`${ova}.new`));
  for (const e of edit(entries)) out.entry({ name: e.name, size: e.body.length }, e.body);
  out.finalize();
  await written;
  rmSync(ova);
  execFileSync('mv', [`${ova}.new`, ova]);
  writeFileSync(`${ova}.sha256`, `${sha256(readFileSync(ova))}  ${basename(ova)}\n`);
}

const verify = (...args: string[]) => runCli(['verify', ...args]);

/** A failure: exit `code`, exactly one line on stderr besides progress lines, matching `message`. */
function expectOneLine(r: { code: number; stderr: string }, code: number, message: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('verify '));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^labforge verify: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'labforge-verify-'));
  const raw = join(work, 'guest.raw');
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, String(64 * 1024 * 1024)]);
  execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=4', 'conv=notrunc', 'status=none']);
  const image = join(work, 'guest.qcow2');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
  rmSync(raw);
  mkdirSync(join(work, 'good'));
  packed = await packOva({ image, out: join(work, 'good', `${NAME}.ova`), appliance: 'demo-lab', buildType: 'prewarmed', version: '1.4.0', os: GENERIC_LINUX_64, cpus: 2, memoryMiB: 1024, gitSha: 'abc1234def', buildDate: new Date('2026-03-01T12:00:00Z') });
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('labforge verify: a good download', () => {
  it('exits 0 with the report: checksum, structure, build type, version, build date, git SHA; progress on stderr', async () => {
    const { ova } = copyOfGood();
    const r = await verify(ova);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`OK: ${NAME}.ova is intact and is the file its checksum names`);
    expect(r.stdout).toContain(`SHA-256     ${packed.sha256}, as ${NAME}.ova.sha256 says`);
    expect(r.stdout).toContain('OVF descriptor first, manifest second; 3 entries, each matching its SHA256 manifest line');
    expect(r.stdout).toMatch(/appliance\s+demo-lab\n/);
    expect(r.stdout).toMatch(/build type\s+prewarmed\n/);
    expect(r.stdout).toMatch(/version\s+1\.4\.0\n/);
    expect(r.stdout).toMatch(/build date\s+2026-03-01T12:00:00Z\n/);
    expect(r.stdout).toMatch(/git SHA\s+abc1234def\n/);
    expect(r.stdout).toMatch(/SBOM\s+none beside the OVA/);
    // The closing progress line: percent, rate and the time it took.
    expect(r.stderr).toMatch(new RegExp(`^verify ${NAME}\\.ova: 100\\.0% \\([\\d.]+ [KMG]iB of [\\d.]+ [KMG]iB\\), [\\d.]+ MiB/s, done in \\d+s$`, 'm'));
  });

  it('takes --sha256-file from elsewhere, and prints JSON with --json', async () => {
    const { dir, ova, sum } = copyOfGood();
    const elsewhere = join(dir, 'checksums.txt');
    execFileSync('mv', [sum, elsewhere]);
    const r = await verify(ova, '--sha256-file', elsewhere, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ sha256: packed.sha256, checksumFile: elsewhere, manifestAt: 'second', properties: { appliance: 'demo-lab', buildType: 'prewarmed', version: '1.4.0' } });
    expect((report['entries'] as { name: string }[]).map((e) => e.name)).toEqual([`${NAME}.ovf`, `${NAME}.mf`, DISK]);
  });

  it('accepts the manifest at the end of the archive (DSP0243 allows both places)', async () => {
    const { ova } = copyOfGood();
    await rebuild(ova, ([ovf, mf, disk]) => [ovf!, disk!, mf!]);
    const r = await verify(ova);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('manifest at the end');
  });
});

describe('labforge verify: a damaged download fails with one line naming what differs', () => {
  it('a flipped byte in the disk entry: exit 1 naming the disk entry (and the checksum differs too)', async () => {
    const { ova } = copyOfGood();
    const disk = entriesOf(ova).find((e) => e.name === DISK)!;
    flipByte(ova, disk.offset + Math.floor(disk.size / 2));
    expectOneLine(await verify(ova), 1, new RegExp(`'${DISK}' does not match the OVA's manifest \\(manifest [0-9a-f]{64}, content [0-9a-f]{64}\\); the file's SHA-256 [0-9a-f]{64} differs from ${NAME}\\.ova\\.sha256 too — damaged or altered: download it again$`));
  });

  it('a flipped byte in the OVF descriptor: exit 1 naming the descriptor', async () => {
    const { ova } = copyOfGood();
    const ovf = entriesOf(ova)[0]!;
    // Inside the XML comment-free text: a letter of the Info element becomes another byte.
    flipByte(ova, ovf.offset + ovf.body!.indexOf('<Info>') + 7);
    expectOneLine(await verify(ova), 1, new RegExp(`'${NAME}\\.ovf' does not match the OVA's manifest`));
  });

  it('a flipped hex digit in the .sha256: exit 1 naming the checksum file and both values', async () => {
    const { ova, sum } = copyOfGood();
    const text = readFileSync(sum, 'utf8');
    writeFileSync(sum, (text[0] === '0' ? '1' : '0') + text.slice(1));
    expectOneLine(await verify(ova), 1, new RegExp(`${NAME}\\.ova does not match its checksum: ${NAME}\\.ova\\.sha256 says [0-9a-f]{64}, the file hashes to ${packed.sha256}`));
  });

  it('a flipped byte outside every entry (the end-of-archive blocks): exit 1, caught by the checksum alone', async () => {
    const { ova } = copyOfGood();
    flipByte(ova, packed.size - 1);
    expectOneLine(await verify(ova), 1, new RegExp(`${NAME}\\.ova does not match its checksum: ${NAME}\\.ova\\.sha256 says ${packed.sha256}, the file hashes to [0-9a-f]{64}`));
  });

  it('a manifest with the disk line removed (checksum rewritten to fit): exit 1 naming the unlisted entry', async () => {
    const { ova } = copyOfGood();
    await rebuild(ova, (entries) => entries.map((e) => (e.name.endsWith('.mf') ? { ...e, body: Buffer.from(e.body.toString().split('\n').filter((l) => !l.includes(DISK)).join('\n')) } : e)));
    expectOneLine(await verify(ova), 1, new RegExp(`^labforge verify: ${NAME}\\.ova: its manifest has no SHA256 line for '${DISK}' — damaged or altered`));
  });

  it('a manifest entry missing from the archive (the disk removed, checksum rewritten): exit 1 naming the missing entry', async () => {
    const { ova } = copyOfGood();
    await rebuild(ova, (entries) => entries.filter((e) => e.name !== DISK));
    expectOneLine(await verify(ova), 1, new RegExp(`${NAME}\\.ova: its manifest lists '${DISK}', which is not in the archive`));
  });

  it('an entry the manifest does not list (appended, checksum rewritten): exit 1 naming it', async () => {
    const { ova } = copyOfGood();
    await rebuild(ova, (entries) => [...entries, { name: 'extra.sh', body: Buffer.from('echo hi\n') }]);
    expectOneLine(await verify(ova), 1, /: its manifest has no SHA256 line for 'extra\.sh'/);
  });

  it('the disk before the descriptor: exit 1, the OVF must come first', async () => {
    const { ova } = copyOfGood();
    await rebuild(ova, ([ovf, mf, disk]) => [disk!, ovf!, mf!]);
    expectOneLine(await verify(ova), 1, new RegExp(`its first entry is '${DISK}', not the OVF descriptor`));
  });

  it('a truncated download: exit 1 naming the entry it ends in', async () => {
    const { ova } = copyOfGood();
    const disk = entriesOf(ova).find((e) => e.name === DISK)!;
    truncateSync(ova, disk.offset + 4096);
    expectOneLine(await verify(ova), 1, new RegExp(`${NAME}\\.ova is truncated: the archive ends inside '${DISK}'.*differs from ${NAME}\\.ova\\.sha256 too`));
  });
});

describe('labforge verify: no checksum to check against', () => {
  it('exits 2 at once (nothing read) naming the missing .sha256, --sha256-file and --structure-only', async () => {
    const { ova, sum } = copyOfGood();
    rmSync(sum);
    const r = await verify(ova);
    expectOneLine(r, 2, new RegExp(`sha256-file: nothing to check ${NAME}\\.ova against: there is no ${NAME}\\.ova\\.sha256 beside it and no --sha256-file \\(download the \\.sha256 .*--structure-only`));
    expect(r.stderr).not.toContain('verify '); // no progress: nothing was read
  });

  it('--structure-only checks the archive and says in the report that the checksum was not checked', async () => {
    const { ova, sum } = copyOfGood();
    rmSync(sum);
    const r = await verify(ova, '--structure-only');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`STRUCTURE OK: ${NAME}.ova is intact, but was not checked against a published checksum`);
    expect(r.stdout).toContain('NOT checked against a published checksum (--structure-only)');
    const disk = entriesOf(ova).find((e) => e.name === DISK)!;
    flipByte(ova, disk.offset + 100);
    expectOneLine(await verify(ova, '--structure-only'), 1, new RegExp(`'${DISK}' does not match the OVA's manifest`));
  });
});

describe('labforge verify: bad input, one line, exit 2', () => {
  it.each([
    ['a missing file', () => join(work, 'nope.ova'), /file: .*nope\.ova does not exist \(give the path of the downloaded \.ova file\)/],
    ['a directory', () => work, /file: .* is a directory/],
    ['not a tar', () => {
      const p = join(work, 'notes.ova');
      writeFileSync(p, 'not an archive\n'.repeat(200));
      return p;
    }, /file: .*notes\.ova is not an OVA: it does not start with a tar header/],
    ['a tiny file', () => {
      const p = join(work, 'tiny.ova');
      writeFileSync(p, 'x');
      return p;
    }, /file: .*tiny\.ova is not an OVA: it is 1 bytes, too small/],
  ])('%s', async (_what, path, message) => {
    expectOneLine(await verify(path()), 2, message);
  });

  it('no file, or a --sha256-file that does not exist', async () => {
    expectOneLine(await verify(), 2, /file: no OVA given \(run labforge verify FILE\.ova\)/);
    const { ova } = copyOfGood();
    expectOneLine(await verify(ova, '--sha256-file', join(work, 'missing.sha256')), 2, /sha256-file: .*missing\.sha256 does not exist/);
  });
});

describe('labforge verify: the SBOM beside the OVA', () => {
  const bom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    version: 1,
    metadata: { component: { type: 'operating-system', name: 'demo-lab', version: '1.4.0' } },
    components: [
      { type: 'library', name: 'openssh-server', version: '1:9.2p1-2' },
      { type: 'library', name: 'bash', version: '5.2.15-2', components: [{ type: 'file', name: 'bash-completion' }] },
    ],
  };

  it('is summarized (format, spec version, components, appliance and version) and checked against the metadata', async () => {
    const { dir, ova } = copyOfGood();
    const text = JSON.stringify(bom);
    writeFileSync(join(dir, `${NAME}.cdx.json`), text);
    writeFileSync(join(dir, `${NAME}.metadata.json`), JSON.stringify({ name: `${NAME}.ova`, sha256: packed.sha256, sbom: { key: `${NAME}.cdx.json`, format: 'CycloneDX 1.6', sha256: sha256(text), components: 3 } }));
    const r = await verify(ova);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`SBOM        ${NAME}.cdx.json: CycloneDX 1.6, 3 components, describes demo-lab 1.4.0; SHA-256 as the release metadata lists`);
    expect(r.stdout).toContain(`metadata    ${NAME}.metadata.json states the same SHA-256`);
  });

  it('an SBOM that differs from the SHA-256 the metadata lists: exit 1 naming the SBOM', async () => {
    const { dir, ova } = copyOfGood();
    writeFileSync(join(dir, `${NAME}.cdx.json`), JSON.stringify(bom));
    writeFileSync(join(dir, `${NAME}.metadata.json`), JSON.stringify({ sha256: packed.sha256, sbom: { sha256: 'ab'.repeat(32) } }));
    expectOneLine(await verify(ova), 1, new RegExp(`${NAME}\\.cdx\\.json does not match the release metadata \\(metadata sbom\\.sha256 (ab){32}, content [0-9a-f]{64}\\)`));
  });

  it('given by --sbom without metadata: summarized, and the report says it was not checked', async () => {
    const { dir, ova } = copyOfGood();
    const other = join(dir, 'sbom.json');
    writeFileSync(other, JSON.stringify(bom));
    const r = await verify(ova, '--sbom', other);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('SBOM        sbom.json: CycloneDX 1.6, 3 components');
    expect(r.stdout).toContain('note: no release metadata beside the OVA: sbom.json is summarized, not checked');
  });

  it('metadata whose sha256 is another OVA\'s: exit 1 naming the metadata file', async () => {
    const { dir, ova } = copyOfGood();
    writeFileSync(join(dir, `${NAME}.metadata.json`), JSON.stringify({ sha256: 'cd'.repeat(32) }));
    expectOneLine(await verify(ova), 1, new RegExp(`${NAME}\\.ova does not match ${NAME}\\.metadata\\.json \\(metadata sha256 (cd){32}, content ${packed.sha256}\\)`));
  });
});
