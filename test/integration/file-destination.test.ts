/** The file:///DIR destination: the same guarantees as GCS, on a real directory. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { AlreadyPublishedError } from '../../actions/lib/artifact-store.js';
import { DirectoryStore, PARTIAL_SUFFIX } from '../../actions/lib/file-destination.js';
import { readCatalog, updateCatalog, withRelease, type CatalogRelease } from '../../actions/lib/release-catalog.js';
import { uploadRelease, type UploadReleaseOptions } from '../../actions/lib/release-upload.js';
import { parseDestination } from '../../actions/lib/upload-options.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'labforge-file-dest-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function opts(path: string, dest: string, extra: Partial<UploadReleaseOptions> = {}): UploadReleaseOptions {
  return {
    path: [path], destination: parseDestination(`file://${dest}`), parallelism: 2, chunkSizeMib: 1, overwrite: false, makePublic: false,
    // These cases are about the store: random bytes stand in for an OVA (upload-refusals.test.ts covers the OVA checks).
    signedUrlHours: 0, retentionKeep: 0, retentionDryRun: false, portal: false, allowNonOva: true, log: () => {}, ...extra,
  };
}

describe('publishing to a file:/// directory', () => {
  it('publishes a release with companions that sha256sum -c accepts, and a portal', async () => {
    const src = join(work, 'hedgehog-lab-standard-1.0.0.ova');
    const data = randomBytes(3 * 1024 * 1024 + 5);
    writeFileSync(src, data);
    const dest = join(work, 'share');
    const r = await uploadRelease(opts(src, dest, { version: '1.0.0', buildType: 'standard', portal: true }));
    const rel = join(dest, 'releases/v1.0.0/standard');
    expect(readFileSync(join(rel, 'hedgehog-lab-standard-1.0.0.ova')).equals(data)).toBe(true);
    expect(r.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(r.uri).toBe(`file://${rel}/hedgehog-lab-standard-1.0.0.ova`);
    const check = spawnSync('sha256sum', ['-c', 'hedgehog-lab-standard-1.0.0.ova.sha256'], { cwd: rel, encoding: 'utf8' });
    expect(check.stdout).toContain('hedgehog-lab-standard-1.0.0.ova: OK');
    expect(JSON.parse(readFileSync(join(rel, 'hedgehog-lab-standard-1.0.0.metadata.json'), 'utf8')).sha256).toBe(r.sha256);
    expect(readdirSync(rel).some((n) => n.endsWith(PARTIAL_SUFFIX))).toBe(false);
    const html = readFileSync(join(dest, 'index.html'), 'utf8');
    expect(html).toContain('href="releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova"');
    expect(JSON.parse(readFileSync(join(rel, 'hedgehog-lab-standard-1.0.0.metadata.json'), 'utf8')).appliance).toBe('hedgehog-lab');
    expect(r.release?.appliance).toBe('hedgehog-lab');
    expect(html).toContain('rsync --partial');
    // Links and commands are relative to the portal's folder: nothing names the publisher's path.
    expect(html).toContain('cp releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova.sha256 ~/');
    expect(html).not.toContain(dest);
    expect(readFileSync(join(dest, 'DOWNLOADS.md'), 'utf8')).not.toContain(dest);
    expect(readFileSync(join(dest, 'DOWNLOADS.md'), 'utf8')).toContain(r.sha256);
  });

  it('refuses to overwrite a published release', async () => {
    const src = join(work, 'hedgehog-lab-standard-1.0.0.ova');
    const dest = join(work, 'share');
    const before = readFileSync(join(dest, 'releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova'));
    writeFileSync(src, randomBytes(1000));
    await expect(uploadRelease(opts(src, dest, { version: '1.0.0', buildType: 'standard' }))).rejects.toThrow(AlreadyPublishedError);
    expect(readFileSync(join(dest, 'releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova')).equals(before)).toBe(true);
  });

  it('resumes from a partial file and rewrites only what differs', async () => {
    const src = join(work, 'big.bin');
    const data = randomBytes(6 * 1024 * 1024);
    writeFileSync(src, data);
    const dest = join(work, 'resume');
    mkdirSync(dest, { recursive: true });
    // An earlier run was killed after 4 MiB.
    writeFileSync(join(dest, `big.bin${PARTIAL_SUFFIX}`), data.subarray(0, 4 * 1024 * 1024));
    const store = new DirectoryStore({ dir: dest, blockSize: 1024 * 1024 });
    const r = await store.uploadFile({ localPath: src, key: 'big.bin', overwrite: false });
    expect(r.bytesReused).toBe(4 * 1024 * 1024);
    expect(r.bytesSent).toBe(2 * 1024 * 1024);
    expect(readFileSync(join(dest, 'big.bin')).equals(data)).toBe(true);
    expect(existsSync(join(dest, `big.bin${PARTIAL_SUFFIX}`))).toBe(false);
  });

  it('rewrites a partial file whose bytes differ from the source', async () => {
    const src = join(work, 'big.bin');
    const data = readFileSync(src);
    const dest = join(work, 'stale');
    mkdirSync(dest, { recursive: true });
    writeFileSync(join(dest, `big.bin${PARTIAL_SUFFIX}`), randomBytes(3 * 1024 * 1024));
    const store = new DirectoryStore({ dir: dest, blockSize: 1024 * 1024 });
    const r = await store.uploadFile({ localPath: src, key: 'big.bin', overwrite: false });
    expect(r.bytesReused).toBe(0);
    expect(readFileSync(join(dest, 'big.bin')).equals(data)).toBe(true);
  });

  it('keeps every catalog entry under concurrent updates', async () => {
    const store = new DirectoryStore({ dir: join(work, 'catalog') });
    const entry = (v: string): CatalogRelease => ({
      appliance: 'hedgehog-lab', version: v, buildType: 'prewarmed', tag: `v${v}-prewarmed`, name: 'x.ova', key: `releases/v${v}/prewarmed/x.ova`, uri: '', url: '', size: 1,
      sha256: 'b'.repeat(64), crc32c: 'AAAAAA==', sha256Key: '', metadataKey: '', files: [], buildDate: '', gitSha: '', workflowRunUrl: '', firstBoot: '', publishedAt: '',
    });
    const versions = Array.from({ length: 12 }, (_, i) => `1.${i}.0`);
    await Promise.all(versions.map((v) => updateCatalog(store, withRelease(entry(v)))));
    expect((await readCatalog(store)).catalog.releases.map((r) => r.version).sort()).toEqual([...versions].sort());
  });

  it('applies retention to directories too', async () => {
    const dest = join(work, 'ret');
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) {
      const src = join(work, `hedgehog-lab-prewarmed-${v}.ova`);
      writeFileSync(src, randomBytes(10_000));
      await uploadRelease(opts(src, dest, { version: v, buildType: 'prewarmed', retentionKeep: 2 }));
    }
    expect(readdirSync(join(dest, 'releases')).sort()).toEqual(['v1.1.0', 'v1.2.0']);
    expect((await readCatalog(new DirectoryStore({ dir: dest }))).catalog.releases.map((r) => r.version)).toEqual(['1.2.0', '1.1.0']);
  });
});

describe('two appliances at one version', () => {
  const publish = async (dest: string, appliance: string, version: string, extra: Partial<UploadReleaseOptions> = {}) => {
    const src = join(work, `${appliance}-standard-${version}.ova`);
    writeFileSync(src, randomBytes(20_000));
    return uploadRelease(opts(src, dest, { appliance, version, buildType: 'standard', ...extra }));
  };

  it('keeps demo-lab 1.0.0 standard and hedgehog-lab 1.0.0 standard side by side in one directory and the catalog', async () => {
    const dest = join(work, 'two');
    const hh = await publish(dest, 'hedgehog-lab', '1.0.0');
    const demo = await publish(dest, 'demo-lab', '1.0.0', { portal: true });
    expect(readdirSync(join(dest, 'releases/v1.0.0/standard')).sort()).toEqual([
      'demo-lab-standard-1.0.0.metadata.json',
      'demo-lab-standard-1.0.0.ova',
      'demo-lab-standard-1.0.0.ova.sha256',
      'hedgehog-lab-standard-1.0.0.metadata.json',
      'hedgehog-lab-standard-1.0.0.ova',
      'hedgehog-lab-standard-1.0.0.ova.sha256',
    ]);
    const { catalog } = await readCatalog(new DirectoryStore({ dir: dest }));
    expect(catalog.releases.map((r) => [r.appliance, r.version, r.buildType, r.sha256])).toEqual([
      ['demo-lab', '1.0.0', 'standard', demo.sha256],
      ['hedgehog-lab', '1.0.0', 'standard', hh.sha256],
    ]);
    expect(JSON.parse(readFileSync(join(dest, 'releases/v1.0.0/standard/demo-lab-standard-1.0.0.metadata.json'), 'utf8'))).toMatchObject({ appliance: 'demo-lab', name: 'demo-lab-standard-1.0.0.ova' });
    const html = readFileSync(join(dest, 'index.html'), 'utf8');
    expect(html).toContain('<h2 class="appliance" id="demo-lab">demo-lab</h2>');
    expect(html).toContain('<h2 class="appliance" id="hedgehog-lab">hedgehog-lab</h2>');
    expect(html).toContain('id="demo-lab-standard-1.0.0"');
    expect(html).toContain('id="hedgehog-lab-standard-1.0.0"');
    expect(html).not.toMatch(/<script[^>]*\ssrc=|<(link|img)\b/); // self-contained: one inline script (Copy buttons), nothing loaded
    const md = readFileSync(join(dest, 'DOWNLOADS.md'), 'utf8');
    expect(md).toContain('| appliance | version | build |');
    expect(md).toContain(`| demo-lab | v1.0.0 | standard |`);
    expect(md).toContain('### hedgehog-lab v1.0.0 standard');
  });

  it('refuses to publish the same appliance, version and build type twice, but not another appliance', async () => {
    const dest = join(work, 'twice');
    await publish(dest, 'demo-lab', '2.0.0');
    await expect(publish(dest, 'demo-lab', '2.0.0')).rejects.toThrow(AlreadyPublishedError);
    await expect(publish(dest, 'hedgehog-lab', '2.0.0')).resolves.toMatchObject({ release: { appliance: 'hedgehog-lab' } });
  });

  it('keeps N releases per appliance and never deletes the files of another appliance in a shared directory', async () => {
    const dest = join(work, 'ret-two');
    await publish(dest, 'hedgehog-lab', '1.0.0');
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) await publish(dest, 'demo-lab', v, { retentionKeep: 2 });
    expect(readdirSync(join(dest, 'releases/v1.0.0/standard')).sort()).toEqual(['hedgehog-lab-standard-1.0.0.metadata.json', 'hedgehog-lab-standard-1.0.0.ova', 'hedgehog-lab-standard-1.0.0.ova.sha256']);
    const { catalog } = await readCatalog(new DirectoryStore({ dir: dest }));
    expect(catalog.releases.map((r) => `${r.appliance} ${r.version}`)).toEqual(['demo-lab 1.2.0', 'demo-lab 1.1.0', 'hedgehog-lab 1.0.0']);
    // hedgehog-lab's single release is not counted against demo-lab's, and is kept by its own retention.
    const r = await publish(dest, 'hedgehog-lab', '1.1.0', { retentionKeep: 1, retentionDryRun: true });
    expect(r.retention?.deleted).toEqual([{ version: '1.0.0', keys: ['releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.metadata.json', 'releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova', 'releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova.sha256'] }]);
  });

  it('reads catalog entries written before releases named their appliance as hedgehog-lab', async () => {
    const dest = join(work, 'legacy');
    mkdirSync(dest, { recursive: true });
    const old = { version: '0.9.0', buildType: 'standard', tag: 'v0.9.0', name: 'hedgehog-lab-standard-0.9.0.ova', key: 'releases/v0.9.0/standard/hedgehog-lab-standard-0.9.0.ova', uri: '', url: '', size: 1,
      sha256: 'c'.repeat(64), crc32c: 'AAAAAA==', sha256Key: 'releases/v0.9.0/standard/hedgehog-lab-standard-0.9.0.ova.sha256', metadataKey: '', files: [], buildDate: '', gitSha: '', workflowRunUrl: '', firstBoot: '', publishedAt: '' };
    writeFileSync(join(dest, 'index.json'), JSON.stringify({ schema: 1, updated: '', releases: [old] }));
    await publish(dest, 'demo-lab', '0.9.0');
    const { catalog } = await readCatalog(new DirectoryStore({ dir: dest }));
    expect(catalog.releases.map((r) => `${r.appliance} ${r.version}`)).toEqual(['demo-lab 0.9.0', 'hedgehog-lab 0.9.0']);
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8')).releases.every((r: { appliance?: string }) => typeof r.appliance === 'string')).toBe(true);
  });

  it('takes the appliance from the OVA when no input names it', async () => {
    const { writeOvaFixture } = await import('../support/ova-fixture.js');
    const dest = join(work, 'from-ova');
    const ova = await writeOvaFixture(join(work, 'demo-lab-prewarmed-3.0.0.ova'), { properties: { appliance: 'demo-lab', buildType: 'prewarmed', version: '3.0.0' } });
    const r = await uploadRelease(opts(ova, dest));
    expect(r.release).toMatchObject({ appliance: 'demo-lab', version: '3.0.0', buildType: 'prewarmed', name: 'demo-lab-prewarmed-3.0.0.ova' });
    const legacy = await writeOvaFixture(join(work, 'old-build.ova'), { properties: { buildType: 'standard', version: '3.0.0' } });
    const lines: string[] = [];
    const r2 = await uploadRelease(opts(legacy, dest, { log: (l) => lines.push(l) }));
    expect(r2.release?.appliance).toBe('hedgehog-lab');
    expect(lines).toContain('note: old-build.ova does not follow the hedgehog-lab-standard-3.0.0.ova naming; publishing it under its own name');
  });

  it('refuses an appliance that is not a name before publishing anything', async () => {
    const dest = join(work, 'bad-name');
    const src = join(work, 'named.ova');
    writeFileSync(src, randomBytes(1000));
    await expect(uploadRelease(opts(src, dest, { appliance: 'packer/demo-lab', version: '1.0.0', buildType: 'standard' }))).rejects.toThrow(/^appliance: 'packer\/demo-lab' is not an appliance name/);
    expect(existsSync(dest)).toBe(false);
  });
});
