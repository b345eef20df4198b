/**
 * The upload module against the GCS emulator (test/support/gcs-emulator.ts): multi-part round trips with a
 * compose tree, no-clobber publishing, resume, corruption, transient and permanent errors, the catalog
 * under concurrency, retention and the portal.
 */
import { describe, expect, it } from '@jest/globals';
import { CRC32C } from '@google-cloud/storage';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlreadyPublishedError } from '../../actions/lib/artifact-store.js';
import { GcsStore, STAGING_DIR, createStorageClient } from '../../actions/lib/gcs-upload.js';
import { readCatalog, updateCatalog, withRelease, type CatalogRelease } from '../../actions/lib/release-catalog.js';
import { uploadRelease, type UploadReleaseOptions } from '../../actions/lib/release-upload.js';
import { parseDestination } from '../../actions/lib/upload-options.js';
import { useGcsEmulator } from '../support/gcs-fixture.js';

const MiB = 1024 * 1024;
const fastRetry = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

const fx = useGcsEmulator({ bucketPrefix: 'labs', dirPrefix: 'labforge-gcs-upload-' });

function makeFile(name: string, size: number): { path: string; data: Buffer } {
  const data = randomBytes(size);
  const path = join(fx.dir, name);
  writeFileSync(path, data);
  return { path, data };
}

function options(path: string, extra: Partial<UploadReleaseOptions> = {}): UploadReleaseOptions {
  return {
    path: [path],
    destination: parseDestination(`gs://${fx.bucket}/labs`),
    endpoint: fx.emulator.endpoint,
    parallelism: 4,
    chunkSizeMib: 1,
    overwrite: false,
    makePublic: false,
    signedUrlHours: 0,
    retentionKeep: 0,
    retentionDryRun: false,
    portal: false,
    // These cases are about the store: random bytes stand in for an OVA (upload-refusals.test.ts covers the OVA checks).
    allowNonOva: true,
    retry: fastRetry,
    log: () => {},
    ...extra,
  };
}

function libraryCrc(data: Buffer): string {
  const c = new CRC32C();
  c.update(data);
  return c.toString();
}

describe('publishing a release to GCS', () => {
  it('round-trips a multi-part file and publishes it with its companions and catalog entry', async () => {
    const { path, data } = makeFile('hedgehog-lab-standard-1.0.0.ova', 3 * MiB + 12_345);
    const lines: string[] = [];
    const r = await uploadRelease(options(path, { version: '1.0.0', buildType: 'standard', log: (l) => lines.push(l), progressIntervalMs: 0 }));
    const key = 'labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova';
    expect(r.uri).toBe(`gs://${fx.bucket}/${key}`);
    expect(r.size).toBe(data.length);
    expect(r.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(r.crc32c).toBe(libraryCrc(data));
    expect((await fx.emulator.readObject(fx.bucket, key)).equals(data)).toBe(true);
    const meta = fx.emulator.objectResource(fx.bucket, key)!;
    expect(meta.crc32c).toBe(libraryCrc(data));
    expect((meta.metadata as Record<string, string>).sha256).toBe(r.sha256);
    // Companions.
    const sum = (await fx.emulator.readObject(fx.bucket, 'labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova.sha256')).toString();
    expect(sum).toBe(`${r.sha256}  hedgehog-lab-standard-1.0.0.ova\n`);
    const md = JSON.parse((await fx.emulator.readObject(fx.bucket, 'labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.metadata.json')).toString());
    expect(md).toMatchObject({ version: '1.0.0', buildType: 'standard', size: data.length, sha256: r.sha256, crc32c: r.crc32c, tag: 'v1.0.0' });
    expect(r.metadataUri).toBe(`gs://${fx.bucket}/labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.metadata.json`);
    // Catalog.
    const catalog = JSON.parse((await fx.emulator.readObject(fx.bucket, 'labs/index.json')).toString());
    expect(catalog.releases.map((x: CatalogRelease) => `${x.version}/${x.buildType}`)).toEqual(['1.0.0/standard']);
    // Parts were uploaded 4 at a time in one request each, never gzip, and staging is gone.
    expect(fx.emulator.requests.filter((q) => q.object?.includes(STAGING_DIR) && q.query.uploadType === 'multipart').length).toBe(4);
    expect(fx.emulator.requests.filter((q) => q.contentEncoding === 'gzip')).toEqual([]);
    expect(fx.emulator.objectNames(fx.bucket).filter((n) => n.includes(STAGING_DIR))).toEqual([]);
    expect(lines.some((l) => /upload hedgehog-lab-standard-1\.0\.0\.ova: 100\.0% .* MiB\/s, done in/.test(l))).toBe(true);
  });

  it('composes more than 32 parts in a tree', async () => {
    const { path, data } = makeFile('tree.bin', 5 * MiB + 777);
    const store = new GcsStore({ location: { bucket: fx.bucket, prefix: 'x/' }, parallelism: 4, partSize: 128 * 1024, endpoint: fx.emulator.endpoint, retry: fastRetry });
    const r = await store.uploadFile({ localPath: path, key: 'tree.bin', overwrite: false });
    expect(r.parts).toBe(41);
    expect((await fx.emulator.readObject(fx.bucket, 'x/tree.bin')).equals(data)).toBe(true);
    const composes = fx.emulator.requests.filter((q) => q.path.endsWith('/compose') && q.path.includes(fx.bucket));
    expect(composes.length).toBe(2 + 1 + 1); // two level-1 groups, the assembled object, the publish
    expect(fx.emulator.objectResource(fx.bucket, 'x/tree.bin')!.crc32c).toBe(libraryCrc(data));
  });

  it('refuses to overwrite a published release', async () => {
    const { path } = makeFile('hedgehog-lab-standard-1.1.0.ova', 1.5 * MiB);
    await uploadRelease(options(path, { version: '1.1.0', buildType: 'standard' }));
    const key = 'labs/releases/v1.1.0/standard/hedgehog-lab-standard-1.1.0.ova';
    const generation = fx.emulator.objectResource(fx.bucket, key)!.generation;
    const before = fx.emulator.uploadedBytes;
    await expect(uploadRelease(options(path, { version: '1.1.0', buildType: 'standard' }))).rejects.toThrow(AlreadyPublishedError);
    await expect(uploadRelease(options(path, { version: '1.1.0', buildType: 'standard' }))).rejects.toThrow(/already exists; a release is published once \(set overwrite: true/);
    expect(fx.emulator.uploadedBytes).toBe(before); // it failed before sending anything
    expect(fx.emulator.objectResource(fx.bucket, key)!.generation).toBe(generation);
    // overwrite: true replaces it.
    await uploadRelease(options(path, { version: '1.1.0', buildType: 'standard', overwrite: true }));
    expect(fx.emulator.objectResource(fx.bucket, key)!.generation).not.toBe(generation);
  });

  it('loses the race cleanly when another upload publishes the same name first', async () => {
    const { path } = makeFile('race.bin', 2 * MiB);
    const store = new GcsStore({ location: { bucket: fx.bucket, prefix: '' }, parallelism: 2, partSize: MiB, endpoint: fx.emulator.endpoint, retry: fastRetry });
    // Someone else's object appears while our parts are uploading.
    fx.emulator.injectFault({ match: { object: /part-000002$/ }, action: { status: 503 } });
    const publishFirst = createStorageClient({ endpoint: fx.emulator.endpoint }).bucket(fx.bucket).file('race.bin').save('theirs', { resumable: false });
    await publishFirst;
    await expect(store.uploadFile({ localPath: path, key: 'race.bin', overwrite: false })).rejects.toThrow(AlreadyPublishedError);
    expect((await fx.emulator.readObject(fx.bucket, 'race.bin')).toString()).toBe('theirs');
  });

  it('resumes after an interrupted upload and re-sends only the parts not yet verified', async () => {
    const { path, data } = makeFile('hedgehog-lab-prewarmed-2.0.0.ova', 8 * MiB);
    // Part 5 keeps failing (the connection "drops" for good): the run gives up, keeping verified parts.
    fx.emulator.injectFault({ match: { object: /part-000005$/ }, times: 100, action: { status: 503 } });
    const logs: string[] = [];
    await expect(uploadRelease(options(path, { version: '2.0.0', buildType: 'prewarmed', parallelism: 2, log: (l) => logs.push(l) }))).rejects.toThrow(/run the same upload again to resume/);
    expect(logs.some((l) => l.includes('kept the verified parts'))).toBe(true);
    const staged = fx.emulator.objectNames(fx.bucket).filter((n) => n.includes('/part-'));
    expect(staged.length).toBeGreaterThanOrEqual(4);
    expect(staged.length).toBeLessThan(8);
    fx.emulator.clearFaults();
    const before = fx.emulator.uploadedBytes;
    const r = await uploadRelease(options(path, { version: '2.0.0', buildType: 'prewarmed', parallelism: 2 }));
    const resent = fx.emulator.uploadedBytes - before;
    expect(r.files[0]!.bytesReused).toBe(staged.length * MiB);
    // Only the missing parts went again (plus the small companions and catalog).
    expect(resent).toBeLessThan((8 - staged.length) * MiB + 64 * 1024);
    expect(resent).toBeGreaterThanOrEqual((8 - staged.length) * MiB);
    expect((await fx.emulator.readObject(fx.bucket, 'labs/releases/v2.0.0/prewarmed/hedgehog-lab-prewarmed-2.0.0.ova')).equals(data)).toBe(true);
    expect(fx.emulator.objectNames(fx.bucket).filter((n) => n.includes(STAGING_DIR))).toEqual([]);
  });

  it('detects a part corrupted in transit and publishes nothing', async () => {
    const { path } = makeFile('hedgehog-lab-standard-3.0.0.ova', 4 * MiB);
    // Every attempt at part 3 arrives with one flipped byte (a bad link, not a one-off).
    fx.emulator.injectFault({ match: { object: /part-000003$/ }, times: 100, action: { corrupt: { atByte: 1000 } } });
    await expect(uploadRelease(options(path, { version: '3.0.0', buildType: 'standard' }))).rejects.toThrow(/CRC32C/);
    expect(fx.emulator.requests.filter((q) => q.object?.endsWith('part-000003') && q.status === 400).length).toBe(fastRetry.attempts);
    expect(fx.emulator.objectNames(fx.bucket).filter((n) => !n.includes(STAGING_DIR))).toEqual([]);
  });

  it('re-sends a part that was corrupted once and succeeds', async () => {
    const { path, data } = makeFile('once-corrupt.bin', 3 * MiB);
    fx.emulator.injectFault({ match: { object: /part-000002$/ }, action: { corrupt: { atByte: 5 } } });
    const r = await uploadRelease(options(path));
    expect(r.crc32c).toBe(libraryCrc(data));
    expect((await fx.emulator.readObject(fx.bucket, 'labs/once-corrupt.bin')).equals(data)).toBe(true);
  });

  it('retries 429, 503 and a connection reset mid-part', async () => {
    const { path, data } = makeFile('flaky.bin', 3 * MiB);
    fx.emulator.injectFault({ match: { object: /part-000001$/ }, action: { status: 429 } });
    fx.emulator.injectFault({ match: { path: /\/compose$/ }, action: { status: 503 } });
    fx.emulator.injectFault({ match: { object: /part-000003$/ }, action: { reset: { afterBodyBytes: 300_000 } } });
    await uploadRelease(options(path));
    expect((await fx.emulator.readObject(fx.bucket, 'labs/flaky.bin')).equals(data)).toBe(true);
    const faulted = fx.emulator.requests.filter((q) => q.fault && q.path.includes(fx.bucket));
    expect(faulted.length).toBe(3);
  });

  it('fails at once with what to check on 403 and on an unknown bucket', async () => {
    const { path } = makeFile('denied.bin', 100);
    fx.emulator.createBucket('locked-bucket', { forbidden: true });
    const before = fx.emulator.requests.length;
    await expect(uploadRelease(options(path, { destination: parseDestination('gs://locked-bucket/labs') }))).rejects.toThrow(/permission denied \(HTTP 403.*roles\/storage\.objectAdmin/);
    expect(fx.emulator.requests.length - before).toBe(1);
    await expect(uploadRelease(options(path, { destination: parseDestination('gs://no-such-bucket/labs') }))).rejects.toThrow(/not found \(HTTP 404.*check the bucket name/);
  });

  it('keeps every entry when releases update the catalog at the same time', async () => {
    const store = new GcsStore({ location: { bucket: fx.bucket, prefix: 'labs/' }, parallelism: 2, partSize: MiB, endpoint: fx.emulator.endpoint, retry: fastRetry });
    const entry = (v: string): CatalogRelease => ({
      appliance: 'hedgehog-lab', version: v, buildType: 'standard', tag: `v${v}`, name: `hedgehog-lab-standard-${v}.ova`, key: `releases/v${v}/standard/x.ova`, uri: '', url: '', size: 1,
      sha256: 'a'.repeat(64), crc32c: 'AAAAAA==', sha256Key: '', metadataKey: '', files: [], buildDate: '', gitSha: '', workflowRunUrl: '', firstBoot: '', publishedAt: '',
    });
    const versions = ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0', '2.0.0', '2.1.0'];
    await Promise.all(versions.map((v) => updateCatalog(store, withRelease(entry(v)))));
    const { catalog } = await readCatalog(store);
    expect(catalog.releases.map((r) => r.version).sort()).toEqual(versions);
    expect(fx.emulator.requests.some((q) => q.object === 'labs/index.json' && q.status === 412)).toBe(true);
  });
});

describe('retention and the portal on GCS', () => {
  it('keeps the newest N of a build type, lists in a dry run, and the portal lists what is left', async () => {
    for (const v of ['1.0.0', '1.2.0', '1.10.0']) {
      const { path } = makeFile(`hedgehog-lab-standard-${v}.ova`, 300_000);
      await uploadRelease(options(path, { version: v, buildType: 'standard' }));
    }
    const { path: warm } = makeFile('hedgehog-lab-prewarmed-1.0.0.ova', 200_000);
    await uploadRelease(options(warm, { version: '1.0.0', buildType: 'prewarmed' }));

    const { path: p } = makeFile('hedgehog-lab-standard-1.1.0.ova', 300_000);
    const dry = await uploadRelease(options(p, { version: '1.1.0', buildType: 'standard', retentionKeep: 2, retentionDryRun: true }));
    expect(dry.retention!.deleted.map((d) => d.version)).toEqual(['1.1.0'].filter(() => false).concat(['1.0.0']));
    expect(fx.emulator.objectNames(fx.bucket)).toContain('labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova');

    const { path: p2 } = makeFile('hedgehog-lab-standard-1.11.0.ova', 300_000);
    const r = await uploadRelease(options(p2, { version: '1.11.0', buildType: 'standard', retentionKeep: 2, portal: true }));
    expect(r.retention!.deleted.map((d) => d.version).sort()).toEqual(['1.0.0', '1.1.0', '1.2.0']);
    const names = fx.emulator.objectNames(fx.bucket);
    expect(names.filter((n) => n.includes('/standard/')).map((n) => n.split('/')[2])).toEqual(expect.arrayContaining(['v1.10.0', 'v1.11.0']));
    expect(names.some((n) => n.includes('v1.0.0/standard'))).toBe(false);
    expect(names).toContain('labs/releases/v1.0.0/prewarmed/hedgehog-lab-prewarmed-1.0.0.ova'); // other build type untouched
    const catalog = JSON.parse((await fx.emulator.readObject(fx.bucket, 'labs/index.json')).toString());
    expect(catalog.releases.map((x: CatalogRelease) => `${x.version}/${x.buildType}`)).toEqual(['1.11.0/standard', '1.10.0/standard', '1.0.0/prewarmed']);

    const html = (await fx.emulator.readObject(fx.bucket, 'labs/index.html')).toString();
    const md = (await fx.emulator.readObject(fx.bucket, 'labs/DOWNLOADS.md')).toString();
    for (const x of catalog.releases as CatalogRelease[]) {
      expect(html).toContain(`v${x.version}`);
      expect(html).toContain(x.sha256);
      expect(html).toContain(`href="${x.key}"`);
      expect(md).toContain(`| v${x.version} | ${x.buildType} |`);
      expect(md).toContain(x.sha256);
    }
    expect(html).toContain('curl -fL -C - -o hedgehog-lab-standard-1.11.0.ova');
    expect(html).toContain('wget -c -O');
    expect(html).toContain('aria2c -c');
    expect(html).toContain('sha256sum -c hedgehog-lab-standard-1.11.0.ova.sha256');
    expect(html).toContain('shasum -a 256 -c');
    expect(html).toContain('Get-FileHash');
    expect(html).toContain('Which build should I pick?');
    expect(html).toContain('name="viewport"');
    expect(html).not.toMatch(/<script[^>]*\ssrc=|<link |src="http/); // self-contained: one inline script (Copy buttons), nothing loaded
    expect(md).not.toContain('v1.0.0 | standard');
  });

  it('keeps two appliances at one version apart: both catalog entries, retention per appliance, only its own objects deleted', async () => {
    const publish = async (appliance: string, version: string, extra: Partial<UploadReleaseOptions> = {}) => {
      const { path } = makeFile(`${appliance}-standard-${version}.ova`, 100_000);
      return uploadRelease(options(path, { appliance, version, buildType: 'standard', ...extra }));
    };
    await publish('hedgehog-lab', '1.0.0');
    await publish('demo-lab', '1.0.0');
    await publish('demo-lab', '1.1.0');
    const r = await publish('demo-lab', '1.2.0', { retentionKeep: 2, portal: true });
    expect(r.retention!.deleted).toEqual([{ version: '1.0.0', keys: ['releases/v1.0.0/standard/demo-lab-standard-1.0.0.metadata.json', 'releases/v1.0.0/standard/demo-lab-standard-1.0.0.ova', 'releases/v1.0.0/standard/demo-lab-standard-1.0.0.ova.sha256'] }]);
    expect(fx.emulator.objectNames(fx.bucket).filter((n) => n.includes('releases/v1.0.0/')).sort()).toEqual([
      'labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.metadata.json',
      'labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova',
      'labs/releases/v1.0.0/standard/hedgehog-lab-standard-1.0.0.ova.sha256',
    ]);
    const catalog = JSON.parse((await fx.emulator.readObject(fx.bucket, 'labs/index.json')).toString());
    expect(catalog.releases.map((x: CatalogRelease) => `${x.appliance} ${x.version} ${x.buildType}`)).toEqual(['demo-lab 1.2.0 standard', 'demo-lab 1.1.0 standard', 'hedgehog-lab 1.0.0 standard']);
    const md = JSON.parse((await fx.emulator.readObject(fx.bucket, 'labs/releases/v1.2.0/standard/demo-lab-standard-1.2.0.metadata.json')).toString());
    expect(md).toMatchObject({ appliance: 'demo-lab', name: 'demo-lab-standard-1.2.0.ova' });
    const html = (await fx.emulator.readObject(fx.bucket, 'labs/index.html')).toString();
    expect(html.indexOf('id="demo-lab"')).toBeLessThan(html.indexOf('id="hedgehog-lab"'));
    expect(html).toContain('Download hedgehog-lab-standard-1.0.0.ova');
  });

  it('makes objects public on a fine-grained bucket and explains uniform bucket-level access', async () => {
    const { path } = makeFile('public.bin', 1000);
    const r = await uploadRelease(options(path, { makePublic: true }));
    expect(r.url).toBe(`${fx.emulator.endpoint}/${fx.bucket}/labs/public.bin`);
    const res = await fetch(r.url);
    expect(res.status).toBe(200);
    fx.emulator.createBucket('ubla', { uniformAccess: true });
    await expect(uploadRelease(options(path, { makePublic: true, destination: parseDestination('gs://ubla/labs') }))).rejects.toThrow(/uniform bucket-level access.*allUsers roles\/storage\.objectViewer/);
  });

  it('puts V4 signed URLs in the outputs when signed-url-hours is set (signed with ADC, here a throwaway key file)', async () => {
    // A service-account key generated for this test only, used as Application Default Credentials.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = join(fx.dir, 'throwaway-adc.json');
    writeFileSync(
      keyFile,
      JSON.stringify({ type: 'service_account', project_id: 'labforge-test', client_email: 'uploader@labforge-test.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), client_id: '1' }),
      { mode: 0o600 },
    );
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile;
    try {
      const { path } = makeFile('signed.bin', 1000);
      const r = await uploadRelease(options(path, { signedUrlHours: 2 }));
      const url = new URL(r.url);
      expect(url.searchParams.get('X-Goog-Algorithm')).toBe('GOOG4-RSA-SHA256');
      expect(url.searchParams.get('X-Goog-Expires')).toBe('7200');
      expect(url.searchParams.get('X-Goog-Credential')).toContain('uploader@labforge-test.iam.gserviceaccount.com');
      expect((await fetch(r.url)).status).toBe(200); // the emulator serves it (it does not check signatures)
    } finally {
      delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      rmSync(keyFile, { force: true });
    }
  });
});
