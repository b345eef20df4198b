/**
 * Checks the GCS emulator (test/support/gcs-emulator.ts) against the real @google-cloud/storage 7 client:
 * every operation here is the library's own (bucket.upload, file.save, createReadStream, compose, getFiles),
 * so the emulator is held to what the client sends and expects, not to labforge's upload module.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Storage, CRC32C } from '@google-cloud/storage';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GcsEmulator } from '../support/gcs-emulator.js';

let emulator: GcsEmulator;
let storage: Storage;
let dir: string;

beforeAll(async () => {
  emulator = await GcsEmulator.start({ buckets: ['emu'] });
  storage = freshStorage();
  dir = mkdtempSync(join(tmpdir(), 'labforge-emulator-test-'));
});

afterAll(async () => {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A new client. The library switches retries off on its shared options after a non-idempotent upload (one
 * without a generation precondition), so tests that count on retries use a client of their own.
 */
function freshStorage(): Storage {
  return new Storage({ apiEndpoint: emulator.endpoint, projectId: 'labforge-test', retryOptions: { maxRetries: 3, retryDelayMultiplier: 1.1, totalTimeout: 30, maxRetryDelay: 2 } });
}

async function download(name: string, opts: { start?: number; end?: number } = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of storage.bucket('emu').file(name).createReadStream(opts)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('the GCS emulator, driven by the real @google-cloud/storage client', () => {
  it('stores a file.save() multipart upload with the CRC32C and MD5 the client computes', async () => {
    const data = randomBytes(100_000);
    await storage.bucket('emu').file('small.bin').save(data, { resumable: false, contentType: 'application/x-test' });
    const [meta] = await storage.bucket('emu').file('small.bin').getMetadata();
    expect(Number(meta.size)).toBe(data.length);
    expect(meta.md5Hash).toBe(createHash('md5').update(data).digest('base64'));
    const c = new CRC32C();
    c.update(data);
    expect(meta.crc32c).toBe(c.toString());
    expect(meta.contentType).toBe('application/x-test');
    expect(emulator.requests.some((r) => r.query.uploadType === 'multipart')).toBe(true);
  });

  it('takes a multi-chunk resumable upload (bucket.upload with chunkSize) through 308 Resume Incomplete', async () => {
    const data = randomBytes(3 * 256 * 1024 + 12_345);
    const path = join(dir, 'chunked.bin');
    writeFileSync(path, data);
    const before = emulator.requests.length;
    await storage.bucket('emu').upload(path, { destination: 'chunked.bin', resumable: true, chunkSize: 256 * 1024 });
    const puts = emulator.requests.slice(before).filter((r) => r.method === 'PUT' && r.query.upload_id);
    expect(puts.length).toBe(4);
    expect(puts.slice(0, 3).map((r) => r.status)).toEqual([308, 308, 308]);
    expect(puts[3]!.status).toBe(200);
    expect((await download('chunked.bin')).equals(data)).toBe(true);
  });

  it('resumes a resumable upload after a connection reset mid-chunk, keeping only whole 256 KiB units', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const path = join(dir, 'reset.bin');
    writeFileSync(path, data);
    // 300 KiB into the first 512 KiB chunk: the emulator keeps 256 KiB and the client resumes from there.
    emulator.injectFault({ match: { method: 'PUT', uploadType: 'resumable', object: /^reset\.bin$/ }, action: { reset: { afterBodyBytes: 300 * 1024 } } });
    const before = emulator.requests.length;
    // The library retries uploads only when they are idempotent (a generation precondition).
    await freshStorage().bucket('emu').upload(path, { destination: 'reset.bin', resumable: true, chunkSize: 512 * 1024, preconditionOpts: { ifGenerationMatch: 0 } });
    emulator.clearFaults();
    const log = emulator.requests.slice(before);
    expect(log.some((r) => r.fault?.includes('reset'))).toBe(true);
    expect((await download('reset.bin')).equals(data)).toBe(true);
    // The client re-sent what the emulator had not persisted, not the whole file.
    const puts = log.filter((r) => r.method === 'PUT');
    expect(puts.map((r) => r.contentRange)).toContain('bytes */*');
    expect(puts.map((r) => r.contentRange)).toContain('bytes 262144-786431/*');
    const sent = puts.reduce((n, r) => n + r.bodyBytes, 0);
    expect(sent).toBe(300 * 1024 + data.length - 256 * 1024);
  });

  it('answers 503 and 429 on the Nth request and the client retries', async () => {
    emulator.injectFault({ match: { method: 'GET', object: /^small\.bin$/ }, nth: 1, times: 1, action: { status: 503 } });
    emulator.injectFault({ match: { method: 'GET', object: /^small\.bin$/ }, nth: 2, times: 1, action: { status: 429 } });
    const [meta] = await freshStorage().bucket('emu').file('small.bin').getMetadata();
    emulator.clearFaults();
    expect(meta.name).toBe('small.bin');
    expect(emulator.requests.filter((r) => r.object === 'small.bin' && r.fault).map((r) => r.status)).toEqual([503, 429]);
  });

  it('serves ranged reads and full reads that the client validates with x-goog-hash', async () => {
    const full = await download('chunked.bin');
    const part = await download('chunked.bin', { start: 1000, end: 1999 });
    expect(part.equals(full.subarray(1000, 2000))).toBe(true);
  });

  it('lets the client detect a corrupted byte on download', async () => {
    emulator.injectFault({ match: { method: 'GET', object: /^chunked\.bin$/ }, action: { corrupt: { atByte: 5 } } });
    await expect(download('chunked.bin')).rejects.toThrow(/did not match the data from the server/);
    emulator.clearFaults();
  });

  it('rejects an upload whose bytes were corrupted in transit when the client sent a checksum', async () => {
    const data = randomBytes(50_000);
    emulator.injectFault({ match: { uploadType: 'multipart', object: /^corrupt\.bin$/ }, action: { corrupt: { atByte: 40_000 } } });
    const c = new CRC32C();
    c.update(data);
    await expect(storage.bucket('emu').file('corrupt.bin').save(data, { resumable: false, metadata: { crc32c: c.toString() } })).rejects.toThrow(/CRC32C/);
    emulator.clearFaults();
    expect(emulator.objectNames('emu')).not.toContain('corrupt.bin');
  });

  it('enforces ifGenerationMatch: 0 (no clobber) with 412', async () => {
    const file = storage.bucket('emu').file('once.txt');
    await file.save('first', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    await expect(file.save('second', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })).rejects.toMatchObject({ code: 412 });
    expect((await download('once.txt')).toString()).toBe('first');
  });

  it('composes objects with a combined CRC32C and no MD5, like GCS', async () => {
    const a = randomBytes(300_000);
    const b = randomBytes(123_457);
    await storage.bucket('emu').file('part-a').save(a, { resumable: false });
    await storage.bucket('emu').file('part-b').save(b, { resumable: false });
    const [composed] = await storage.bucket('emu').combine(['part-a', 'part-b'], 'composed.bin');
    const [meta] = await composed.getMetadata();
    const c = new CRC32C();
    c.update(Buffer.concat([a, b]));
    expect(meta.crc32c).toBe(c.toString());
    expect(meta.md5Hash).toBeUndefined();
    expect(meta.componentCount).toBe(2);
    expect((await download('composed.bin')).equals(Buffer.concat([a, b]))).toBe(true);
    // Deleting the sources keeps the composite's data.
    await storage.bucket('emu').file('part-a').delete();
    await storage.bucket('emu').file('part-b').delete();
    expect((await download('composed.bin')).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('refuses to compose more than 32 sources', async () => {
    const names = Array.from({ length: 33 }, (_, i) => `many/${i}`);
    await Promise.all(names.map((n) => storage.bucket('emu').file(n).save('x', { resumable: false })));
    await expect(storage.bucket('emu').combine(names, 'too-many')).rejects.toMatchObject({ code: 400 });
  });

  it('lists with prefix, delimiter and pages (getFiles autoPaginate)', async () => {
    const [files] = await storage.bucket('emu').getFiles({ prefix: 'many/', maxResults: 1000 });
    expect(files.length).toBe(33);
    const [page1, next] = await storage.bucket('emu').getFiles({ prefix: 'many/', autoPaginate: false, maxResults: 10 });
    expect(page1.length).toBe(10);
    expect(next).toHaveProperty('pageToken');
    let token: string | undefined;
    let total = 0;
    do {
      const [page, nextQuery] = await storage.bucket('emu').getFiles({ prefix: 'many/', autoPaginate: false, maxResults: 7, ...(token ? { pageToken: token } : {}) });
      total += page.length;
      token = (nextQuery as { pageToken?: string } | null)?.pageToken;
    } while (token);
    expect(total).toBe(33);
    const [, , api] = await storage.bucket('emu').getFiles({ delimiter: '/', autoPaginate: false });
    expect((api as { prefixes?: string[] }).prefixes).toContain('many/');
  });

  it('updates custom metadata and honours ifMetagenerationMatch', async () => {
    const file = storage.bucket('emu').file('once.txt');
    await file.setMetadata({ metadata: { release: '1.0.0' } });
    const [meta] = await file.getMetadata();
    expect(meta.metadata).toEqual({ release: '1.0.0' });
    await expect(file.setMetadata({ metadata: { x: '1' } }, { ifMetagenerationMatch: 1 })).rejects.toMatchObject({ code: 412 });
  });

  it('returns 404 for an unknown bucket and 403 for a forbidden one', async () => {
    await expect(storage.bucket('nope').file('x').getMetadata()).rejects.toMatchObject({ code: 404 });
    emulator.createBucket('locked', { forbidden: true });
    await expect(storage.bucket('locked').file('x').save('x', { resumable: false })).rejects.toMatchObject({ code: 403 });
  });

  it('works through STORAGE_EMULATOR_HOST as well', async () => {
    process.env.STORAGE_EMULATOR_HOST = emulator.endpoint;
    try {
      const viaEnv = new Storage({ projectId: 'labforge-test' });
      await viaEnv.bucket('emu').file('env.txt').save('via env', { resumable: false });
      const [data] = await viaEnv.bucket('emu').file('env.txt').download();
      expect(data.toString()).toBe('via env');
    } finally {
      delete process.env.STORAGE_EMULATOR_HOST;
    }
  });

  it('keeps object data on disk and removes it with the object', async () => {
    const before = readdirSync(emulator.dataDir).length;
    await storage.bucket('emu').file('disk.bin').save(randomBytes(10_000), { resumable: false });
    expect(readdirSync(emulator.dataDir).length).toBe(before + 1);
    await storage.bucket('emu').file('disk.bin').delete();
    expect(readdirSync(emulator.dataDir).length).toBe(before);
  });

  it('never sees a gzip-encoded request from these operations', () => {
    expect(emulator.requests.filter((r) => r.contentEncoding === 'gzip')).toEqual([]);
  });
});
