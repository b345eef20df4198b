/**
 * Publishing while packing (issue 16), the store layer: a streamed upload fed the way ova-pack's writer
 * feeds its part sink (body chunks in order from the head's end, then head, tail, size and SHA-256) to the
 * GCS emulator and to a directory. The object must be byte-identical and verified; an abort, a failed part
 * or a mismatch must leave nothing at the release name; a rerun after an abandoned upload re-sends only the
 * missing parts; no-clobber still refuses an existing release.
 */
import { beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AlreadyPublishedError, VerificationError, type ArtifactStore, type StreamUpload } from '../../actions/lib/artifact-store.js';
import { DirectoryStore, PARTIAL_SUFFIX } from '../../actions/lib/file-destination.js';
import { GcsStore, STAGING_DIR } from '../../actions/lib/gcs-upload.js';
import { packOva, type PackOvaOptions } from '../../actions/lib/ova-pack.js';
import { GENERIC_LINUX_64 } from '../../actions/lib/ovf-descriptor.js';
import { PIPELINE_STEPS, readPipelineOptions } from '../../actions/lib/pipeline.js';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { runSteps } from '../../actions/lib/step-sequence.js';
import type { OvaPartSink } from '../../actions/lib/ova-parts.js';
import { uploadRelease, type UploadReleaseOptions } from '../../actions/lib/release-upload.js';
import { parseDestination } from '../../actions/lib/upload-options.js';
import { GcsEmulator } from '../support/gcs-emulator.js';
import { useGcsEmulator } from '../support/gcs-fixture.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const fastRetry = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };
const fx = useGcsEmulator({ bucketPrefix: 'overlap', dirPrefix: 'labforge-overlap-' });

/** An archive-like byte string: a head, a body and a tail, as ova-pack lays an OVA out. */
function archive(size: number, headLen = 3 * KiB, tailLen = 1536): { data: Buffer; headLen: number; tailLen: number } {
  return { data: randomBytes(size), headLen, tailLen };
}

/**
 * Feeds `data` to the sink as ova-pack's writer does: body chunks (of varying size, in a buffer it reuses)
 * from the head's end, then finish() with head, tail, size and SHA-256. `stopAfter` abandons the feed after
 * that many body bytes (what a killed process leaves).
 */
async function feed(sink: StreamUpload, a: { data: Buffer; headLen: number; tailLen: number }, opts: { stopAfter?: number; failAt?: number } = {}): Promise<void> {
  const { data, headLen, tailLen } = a;
  const end = data.length - tailLen;
  const scratch = Buffer.alloc(300 * KiB);
  let chunk = 17 * KiB;
  for (let at = headLen; at < end; ) {
    if (opts.stopAfter !== undefined && at - headLen >= opts.stopAfter) return;
    if (opts.failAt !== undefined && at - headLen >= opts.failAt) {
      await sink.abort(new Error('the packing failed (injected)'));
      return;
    }
    const n = Math.min(chunk, end - at);
    data.copy(scratch, 0, at, at + n);
    await sink.body(at, scratch.subarray(0, n));
    scratch.fill(0xee, 0, n); // the writer reuses its buffer: the sink must have copied what it keeps
    at += n;
    chunk = chunk >= 256 * KiB ? 9 * KiB : chunk * 2;
  }
  await sink.finish({ head: Buffer.from(data.subarray(0, headLen)), tail: Buffer.from(data.subarray(end)), size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
}

function gcs(partSize = 256 * KiB, parallelism = 3): GcsStore {
  return new GcsStore({ location: { bucket: fx.bucket, prefix: 'labs/' }, parallelism, partSize, endpoint: fx.emulator.endpoint, retry: fastRetry });
}

const key = 'releases/v1.0.0/standard/demo-lab-standard-1.0.0.ova';
const staged = () => fx.emulator.objectNames(fx.bucket).filter((n) => n.includes(STAGING_DIR));
const partUploads = () => fx.emulator.requests.filter((q) => q.path.includes(`/b/${fx.bucket}/`) && q.object?.includes(STAGING_DIR) && q.query.uploadType === 'multipart');

describe('streamed upload to GCS', () => {
  it('publishes an object byte-identical to what was packed, head and tail last, verified, staging gone', async () => {
    const a = archive(2 * MiB + 12_345);
    const before = fx.emulator.requests.length;
    const up = await gcs().uploadStream({ key, overwrite: false, metadata: { labforgeVersion: '1.0.0' } });
    await feed(up, a);
    const r = await up.done;
    expect((await fx.emulator.readObject(fx.bucket, `labs/${key}`)).equals(a.data)).toBe(true);
    expect(r.digests.sha256).toBe(createHash('sha256').update(a.data).digest('hex'));
    expect(r.digests.size).toBe(a.data.length);
    const meta = fx.emulator.objectResource(fx.bucket, `labs/${key}`)!;
    expect(meta.crc32c).toBe(r.digests.crc32cBase64);
    expect(meta.metadata).toMatchObject({ sha256: r.digests.sha256, labforgeVersion: '1.0.0' });
    // 8 full body parts of 256 KiB and the rest, then head and tail: the head and tail are the last uploads.
    const uploads = fx.emulator.requests.slice(before).filter((q) => q.query.uploadType === 'multipart').map((q) => q.object!.replace(/.*\//, ''));
    expect(uploads.length).toBe(9 + 2);
    expect(new Set(uploads.slice(-2))).toEqual(new Set(['head', 'tail']));
    expect(r.parts).toBe(11);
    expect(staged()).toEqual([]);
  });

  it('composes more than 32 parts in a tree', async () => {
    const a = archive(40 * 256 * KiB + 999);
    const up = await gcs(256 * KiB, 4).uploadStream({ key, overwrite: false });
    await feed(up, a);
    const r = await up.done;
    expect(r.parts).toBe(40 + 2);
    expect((await fx.emulator.readObject(fx.bucket, `labs/${key}`)).equals(a.data)).toBe(true);
  });

  it('refuses an existing release before any byte is taken, and leaves it as it was', async () => {
    const a = archive(600 * KiB);
    const first = await gcs().uploadStream({ key, overwrite: false });
    await feed(first, a);
    await first.done;
    const generation = fx.emulator.objectResource(fx.bucket, `labs/${key}`)!.generation;
    await expect(gcs().uploadStream({ key, overwrite: false })).rejects.toThrow(AlreadyPublishedError);
    expect(fx.emulator.objectResource(fx.bucket, `labs/${key}`)!.generation).toBe(generation);
  });

  it('an abort from the packing leaves nothing at the release name and no staging', async () => {
    const up = await gcs().uploadStream({ key, overwrite: false });
    await feed(up, archive(2 * MiB), { failAt: MiB });
    await expect(up.done).rejects.toThrow('the packing failed (injected)');
    expect(fx.emulator.objectResource(fx.bucket, `labs/${key}`)).toBeUndefined();
    expect(staged()).toEqual([]);
    expect(partUploads().length).toBeGreaterThan(0); // parts were on their way when it aborted
  });

  it('a part the destination refuses fails the packing (body rejects) and publishes nothing', async () => {
    fx.emulator.injectFault({ match: { object: /part-000003$/ }, action: { status: 403, message: 'emulated: permission denied' } });
    const up = await gcs().uploadStream({ key, overwrite: false });
    const fed = feed(up, archive(3 * MiB));
    await expect(fed).rejects.toThrow(/permission denied/);
    // The writer aborts when body() rejects.
    await up.abort(new Error('packing stopped: the upload failed'));
    await expect(up.done).rejects.toThrow();
    expect(fx.emulator.objectResource(fx.bucket, `labs/${key}`)).toBeUndefined();
    expect(staged()).toEqual([]);
  });

  it('parts that do not add up to the size are refused at finish: nothing published, no staging', async () => {
    const a = archive(MiB);
    const up = await gcs().uploadStream({ key, overwrite: false });
    await up.body(a.headLen, a.data.subarray(a.headLen, 700 * KiB));
    await up.finish({ head: a.data.subarray(0, a.headLen), tail: a.data.subarray(-a.tailLen), size: a.data.length, sha256: 'x' });
    await expect(up.done).rejects.toThrow(VerificationError);
    expect(fx.emulator.objectResource(fx.bucket, `labs/${key}`)).toBeUndefined();
    expect(staged()).toEqual([]);
  });

  it('a rerun after an abandoned upload re-sends only the missing parts; a different image reuses none', async () => {
    const a = archive(3 * MiB + 5_000);
    const killed = await gcs().uploadStream({ key, overwrite: false });
    await feed(killed, a, { stopAfter: 5 * 256 * KiB + 100 }); // a kill: no finish(), no abort(), no cleanup
    await new Promise((r) => setTimeout(r, 300)); // the parts in flight land
    const left = staged().filter((n) => /part-\d+$/.test(n));
    expect(left.length).toBeGreaterThanOrEqual(3);
    const before = partUploads().length;
    const lines: string[] = [];
    const rerun = await gcs().uploadStream({ key, overwrite: false, log: (l) => lines.push(l) });
    await feed(rerun, a);
    const r = await rerun.done;
    const totalBody = Math.ceil((a.data.length - a.headLen - a.tailLen) / (256 * KiB));
    expect(r.partsReused).toBe(left.length);
    expect(partUploads().length - before).toBe(totalBody - left.length + 2);
    expect(lines.some((l) => /resuming/.test(l))).toBe(true);
    expect((await fx.emulator.readObject(fx.bucket, `labs/${key}`)).equals(a.data)).toBe(true);

    // Another image of the same layout under another name: staged leftovers of it are not taken for this one.
    const other = 'releases/v1.0.1/standard/demo-lab-standard-1.0.1.ova';
    const b = archive(a.data.length);
    const k2 = await gcs().uploadStream({ key: other, overwrite: false });
    await feed(k2, a, { stopAfter: 4 * 256 * KiB }); // leftovers of image a
    await new Promise((r2) => setTimeout(r2, 300));
    const run2 = await gcs().uploadStream({ key: other, overwrite: false });
    await feed(run2, b);
    const r2 = await run2.done;
    expect(r2.partsReused).toBe(0);
    expect((await fx.emulator.readObject(fx.bucket, `labs/${other}`)).equals(b.data)).toBe(true);
  });

  it('keeps staging after transient trouble so that the rerun resumes', async () => {
    fx.emulator.injectFault({ match: { object: /part-000004$/ }, times: 100, action: { status: 503 } });
    const a = archive(2 * MiB);
    const up = await gcs().uploadStream({ key, overwrite: false });
    // The failure reaches the writer through body() or, when the part was among the last, through done.
    await feed(up, a).catch((e: Error) => up.abort(e));
    await expect(up.done).rejects.toThrow(/part-000004/);
    expect(fx.emulator.objectResource(fx.bucket, `labs/${key}`)).toBeUndefined();
    expect(staged().length).toBeGreaterThan(0);
    fx.emulator.clearFaults();
    const rerun = await gcs().uploadStream({ key, overwrite: false });
    await feed(rerun, a);
    expect((await rerun.done).partsReused).toBeGreaterThan(0);
    expect(staged()).toEqual([]);
  });

  it('keeps at most parallelism parts in flight: body() waits for the pool', async () => {
    const slow = await GcsEmulator.start({ buckets: ['slow'], streamBytesPerSecond: 4 * MiB });
    try {
      const store = new GcsStore({ location: { bucket: 'slow', prefix: '' }, parallelism: 2, partSize: 256 * KiB, endpoint: slow.endpoint, retry: fastRetry });
      const up = await store.uploadStream({ key: 'x.ova', overwrite: false });
      let maxOpen = 0;
      const timer = setInterval(() => {
        const open = slow.requests.filter((q) => q.query.uploadType === 'multipart' && q.status === undefined).length;
        maxOpen = Math.max(maxOpen, open);
      }, 5);
      await feed(up, archive(2 * MiB));
      await up.done;
      clearInterval(timer);
      expect(maxOpen).toBeGreaterThanOrEqual(1);
      expect(maxOpen).toBeLessThanOrEqual(2);
    } finally {
      await slow.stop();
    }
  });
});

describe('streamed upload to a directory', () => {
  let root: string;
  let store: ArtifactStore;
  beforeEach(() => {
    root = mkdtempSync(join(fx.dir, 'dest-'));
    store = new DirectoryStore({ dir: root });
  });
  const final = () => join(root, ...key.split('/'));

  it('publishes a file byte-identical to what was packed, and no partial file', async () => {
    const a = archive(MiB + 777);
    const up = await store.uploadStream({ key, overwrite: false });
    await feed(up, a);
    const r = await up.done;
    expect(readFileSync(final()).equals(a.data)).toBe(true);
    expect(r.digests.sha256).toBe(createHash('sha256').update(a.data).digest('hex'));
    expect(existsSync(final() + PARTIAL_SUFFIX)).toBe(false);
  });

  it('an abort leaves nothing at the release name (and no partial file, no new directories)', async () => {
    const up = await store.uploadStream({ key, overwrite: false });
    await feed(up, archive(MiB), { failAt: 300 * KiB });
    await expect(up.done).rejects.toThrow('injected');
    expect(existsSync(final())).toBe(false);
    expect(readdirSync(root)).toEqual([]);
  });

  it('refuses an existing release, and keeps it', async () => {
    const up = await store.uploadStream({ key, overwrite: false });
    await feed(up, archive(200 * KiB));
    await up.done;
    const before = readFileSync(final());
    await expect(store.uploadStream({ key, overwrite: false })).rejects.toThrow(AlreadyPublishedError);
    expect(readFileSync(final()).equals(before)).toBe(true);
  });

  it('with overwrite, replaces a published release (GCS and directory)', async () => {
    for (const st of [store, gcs()]) {
      for (const a of [archive(300 * KiB), archive(400 * KiB)]) {
        const up = await st.uploadStream({ key, overwrite: true });
        await feed(up, a);
        await up.done;
        const got = st === store ? readFileSync(final()) : await fx.emulator.readObject(fx.bucket, `labs/${key}`);
        expect(got.equals(a.data)).toBe(true);
      }
    }
  });

  it('a rerun after an abandoned write reuses the bytes already written; other bytes are rewritten', async () => {
    const a = archive(2 * MiB);
    const killed = await store.uploadStream({ key, overwrite: false });
    await feed(killed, a, { stopAfter: MiB });
    const rerun = await store.uploadStream({ key, overwrite: false });
    await feed(rerun, a);
    const r = await rerun.done;
    expect(r.bytesReused).toBeGreaterThanOrEqual(MiB);
    expect(readFileSync(final()).equals(a.data)).toBe(true);
    // A different image over leftovers of the first: nothing of them survives.
    const other = 'other.ova';
    const k2 = await store.uploadStream({ key: other, overwrite: false });
    await feed(k2, a, { stopAfter: MiB });
    const b = archive(a.data.length);
    const run2 = await store.uploadStream({ key: other, overwrite: false });
    await feed(run2, b);
    expect((await run2.done).bytesReused).toBe(0);
    expect(readFileSync(join(root, other)).equals(b.data)).toBe(true);
  });

  it('parts that do not add up to the size are refused at finish', async () => {
    const a = archive(300 * KiB);
    const up = await store.uploadStream({ key, overwrite: false });
    await up.body(a.headLen, a.data.subarray(a.headLen, 100 * KiB));
    await up.finish({ head: a.data.subarray(0, a.headLen), tail: a.data.subarray(-a.tailLen), size: a.data.length, sha256: 'x' });
    await expect(up.done).rejects.toThrow(VerificationError);
    expect(existsSync(final())).toBe(false);
  });
});

describe('packOva with the streamed upload as its part sink', () => {
  let image: string;
  let n = 0;
  beforeAll(() => {
    // 48 MiB virtual: 6 MiB of random data, a hole, then text (compressible): a few MiB of VMDK.
    image = join(fx.dir, 'disk.qcow2');
    const raw = `${image}.raw`;
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, String(48 * MiB)]);
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=6', 'conv=notrunc', 'status=none']);
    execFileSync('sh', ['-c', `yes 'lab log line: the lab is warming up' | head -c ${4 * MiB} | dd of=${raw} bs=1M seek=20 conv=notrunc status=none`]);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
    rmSync(raw);
  });
  const packOptions = (extra: Partial<PackOvaOptions> = {}): PackOvaOptions => ({
    image,
    out: join(fx.dir, `pack-${++n}`, 'demo-lab-standard-1.2.0.ova'),
    appliance: 'demo-lab',
    buildType: 'standard',
    version: '1.2.0',
    os: GENERIC_LINUX_64,
    cpus: 2,
    memoryMiB: 2048,
    buildDate: new Date('2026-01-01T00:00:00Z'),
    gitSha: 'abc1234',
    ...extra,
  });
  const releaseOptions = (destination: string, extra: Partial<UploadReleaseOptions> = {}): UploadReleaseOptions => ({
    path: [],
    destination: parseDestination(destination),
    endpoint: fx.emulator.endpoint,
    parallelism: 3,
    chunkSizeMib: 1,
    overwrite: false,
    makePublic: false,
    signedUrlHours: 0,
    retentionKeep: 0,
    retentionDryRun: false,
    portal: false,
    retry: fastRetry,
    log: () => {},
    ...extra,
  });
  const relKey = 'releases/v1.2.0/standard/demo-lab-standard-1.2.0.ova';

  it('uploadRelease with the packing publishes to GCS an OVA byte-identical to the packed one, with its companions', async () => {
    const po = packOptions();
    execFileSync('mkdir', ['-p', join(po.out, '..')]);
    let chunks = 0;
    const r = await uploadRelease(
      releaseOptions(`gs://${fx.bucket}/labs`, {
        packing: {
          out: po.out,
          properties: { appliance: 'demo-lab', version: '1.2.0', buildType: 'standard' },
          run: (sink) => packOva({ ...po, partSink: { ...sink, body: (o, b) => (chunks++, sink.body(o, b)) } as OvaPartSink }),
        },
      }),
    );
    const packed = readFileSync(po.out);
    expect(chunks).toBeGreaterThan(1);
    expect((await fx.emulator.readObject(fx.bucket, `labs/${relKey}`)).equals(packed)).toBe(true);
    expect(r.sha256).toBe(createHash('sha256').update(packed).digest('hex'));
    expect(r.size).toBe(packed.length);
    expect(readFileSync(`${po.out}.sha256`, 'utf8')).toBe(`${r.sha256}  demo-lab-standard-1.2.0.ova\n`);
    expect((await fx.emulator.readObject(fx.bucket, `labs/${relKey}.sha256`)).toString()).toBe(`${r.sha256}  demo-lab-standard-1.2.0.ova\n`);
    const catalog = JSON.parse((await fx.emulator.readObject(fx.bucket, 'labs/index.json')).toString());
    expect(catalog.releases).toEqual([expect.objectContaining({ appliance: 'demo-lab', version: '1.2.0', buildType: 'standard', sha256: r.sha256 })]);
    expect(staged()).toEqual([]);
  }, 60_000);

  it('publishes to file:// a file byte-identical to the packed OVA', async () => {
    const root = mkdtempSync(join(fx.dir, 'bucket-'));
    const po = packOptions();
    execFileSync('mkdir', ['-p', join(po.out, '..')]);
    const r = await uploadRelease(
      releaseOptions(`file://${root}`, { packing: { out: po.out, properties: { appliance: 'demo-lab', version: '1.2.0', buildType: 'standard' }, run: (sink) => packOva({ ...po, partSink: sink }) } }),
    );
    const packed = readFileSync(po.out);
    expect(readFileSync(join(root, ...relKey.split('/'))).equals(packed)).toBe(true);
    expect(r.sha256).toBe(createHash('sha256').update(packed).digest('hex'));
    expect(existsSync(join(root, `${relKey}.sha256`))).toBe(true);
  }, 60_000);

  it('a packing cancelled mid-way leaves nothing at the release name, and no staging', async () => {
    const po = packOptions();
    execFileSync('mkdir', ['-p', join(po.out, '..')]);
    const controller = new AbortController();
    const run = (sink: OvaPartSink) =>
      packOva({
        ...po,
        signal: controller.signal,
        partSink: {
          ...sink,
          body: async (o, b) => {
            await sink.body(o, b);
            controller.abort(new Error('cancelled (injected)'));
          },
        },
      });
    await expect(uploadRelease(releaseOptions(`gs://${fx.bucket}/labs`, { packing: { out: po.out, properties: { appliance: 'demo-lab', version: '1.2.0', buildType: 'standard' }, run } }))).rejects.toThrow(/cancel/);
    expect(fx.emulator.objectNames(fx.bucket)).toEqual([]);
    expect(existsSync(po.out)).toBe(false);
  }, 60_000);

  it('a rerun that re-packs the same image after an abandoned upload re-sends only the missing parts', async () => {
    const store = gcs(256 * KiB, 2);
    const po = packOptions();
    execFileSync('mkdir', ['-p', join(po.out, '..')]);
    // The first run dies after 4 body parts (what a SIGKILL leaves: parts in staging, no abort, no cleanup).
    const first = await store.uploadStream({ key, overwrite: false });
    let taken = 0;
    const killed = packOva({
      ...po,
      partSink: {
        body: async (o, b) => {
          if (taken >= 4 * 256 * KiB) throw new Error('killed (injected)');
          taken += b.length;
          return first.body(o, b);
        },
        finish: async () => undefined,
        abort: async () => undefined, // the process is gone: nothing cleans up
      },
    });
    await killed.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const left = staged().filter((x) => /part-\d+$/.test(x)).length;
    expect(left).toBeGreaterThanOrEqual(2);
    const before = partUploads().length;
    const rerun = await store.uploadStream({ key, overwrite: false });
    const po2 = { ...po, out: join(fx.dir, `pack-${++n}`, 'demo-lab-standard-1.2.0.ova') };
    execFileSync('mkdir', ['-p', join(po2.out, '..')]);
    const packed = await packOva({ ...po2, partSink: rerun });
    const r = await rerun.done;
    expect(r.partsReused).toBe(left);
    expect(partUploads().length - before).toBe(r.parts - left);
    expect((await fx.emulator.readObject(fx.bucket, `labs/${key}`)).equals(readFileSync(packed.ova))).toBe(true);
  }, 60_000);

  it('the pipeline publishes overlapped by default and pack-then-upload when told: the same bytes, meaningful phases', async () => {
    const steps = PIPELINE_STEPS.filter((st) => st.name === 'pack' || st.name === 'upload');
    for (const overlapUpload of [true, false]) {
      const outDir = mkdtempSync(join(fx.dir, 'pipeline-'));
      const state = {
        opts: { outDir, overwrite: false, overlapUpload },
        log: () => undefined,
        work: outDir,
        appliance: { name: 'demo-lab', os: GENERIC_LINUX_64 },
        resources: { cpus: 2, memoryMiB: 2048 },
        decision: { artifactName: 'demo-lab-standard-1.2.0', buildType: 'standard', version: '1.2.0', firstBoot: 'about a minute', login: 'ssh lab@HOST' },
        image,
        results: {} as Record<string, string>,
      };
      const timings = await runSteps(steps, state as never);
      expect(timings.map((t) => `${t.step}:${t.status}`)).toEqual(['pack:ok', 'upload:ok']);
      const ova = join(outDir, 'demo-lab-standard-1.2.0.ova');
      const release = join(outDir, 'bucket', ...'releases/v1.2.0/standard/demo-lab-standard-1.2.0.ova'.split('/'));
      expect(readFileSync(release).equals(readFileSync(ova))).toBe(true);
      expect(existsSync(join(outDir, 'bucket', 'index.json'))).toBe(true);
      expect(state.results.pack).toContain(overlapUpload ? 'published while packing' : 'MiB');
      expect(state.results.pack.includes('published while packing')).toBe(overlapUpload);
      expect(state.results.upload.endsWith('(overlapped with pack)')).toBe(overlapUpload);
      // The .sha256 beside the release is the one the packing wrote beside the OVA.
      expect(readFileSync(`${release}.sha256`, 'utf8')).toBe(readFileSync(`${ova}.sha256`, 'utf8'));
    }
  }, 90_000);

  it('reads --overlap-upload: on by default, off with false, a bad value named', () => {
    const out = join(fx.dir, 'never');
    expect(readPipelineOptions(inputsFrom({ out })).overlapUpload).toBe(true);
    expect(readPipelineOptions(inputsFrom({ out, 'overlap-upload': 'false' })).overlapUpload).toBe(false);
    expect(() => readPipelineOptions(inputsFrom({ out, 'overlap-upload': 'sometimes' }))).toThrow(InputError);
    expect(() => readPipelineOptions(inputsFrom({ out, 'overlap-upload': 'sometimes' }))).toThrow(/overlap-upload/);
  });
});
