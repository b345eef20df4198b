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
    signedUrlHours: 0, retentionKeep: 0, retentionDryRun: false, portal: false, log: () => {}, ...extra,
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
    expect(html).toContain('rsync --partial');
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
      version: v, buildType: 'prewarmed', tag: `v${v}-prewarmed`, name: 'x.ova', key: `releases/v${v}/prewarmed/x.ova`, uri: '', url: '', size: 1,
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
