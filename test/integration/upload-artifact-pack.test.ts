/**
 * The bundled upload-artifact action with `image` (issue 16): it packs a real qcow2 (made with qemu-img) into
 * the OVA at `path` with packer/demo-lab's manifest and publishes it while it is packed — to the GCS emulator
 * (gs://) and to a directory (file://). The published object must be the local OVA byte for byte, a valid
 * OVA whose disk qemu-img reads identical to the image; a refused or cancelled run publishes nothing at the
 * release name.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { readOvaProperties, readOvfDescriptor } from '../../actions/lib/ova-read.js';
import { GcsEmulator } from '../support/gcs-emulator.js';
import { repoRoot, runBundledAction } from '../support/run-action.js';
import { entryRange, vmdkInOva } from '../support/ova-entries.js';
import { makeDataImage } from '../support/disk-image.js';

const MiB = 1024 * 1024;
const VIRTUAL = 40 * MiB;
const demoLab = join(repoRoot, 'packer', 'demo-lab');
const prefix = 'labs/releases/v1.0.0/standard/';
const name = 'demo-lab-standard-1.0.0';
let emulator: GcsEmulator;
let dir: string;
let image: string;


const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');


/**
 * Checks an OVA as an importer would: the descriptor first, the manifest verified with sha256sum, and the
 * disk read by qemu-img in place (clean, identical to the image). Returns its labforge properties.
 */
async function expectValidOva(ova: string): Promise<Record<string, string>> {
  expect(execFileSync('tar', ['-tf', ova], { encoding: 'utf8' }).trim().split('\n')).toEqual([`${name}.ovf`, `${name}.mf`, `${name}-disk1.vmdk`]);
  const x = mkdtempSync(join(dir, 'x-'));
  execFileSync('tar', ['-C', x, '-xf', ova]);
  writeFileSync(join(x, 'sums'), readFileSync(join(x, `${name}.mf`), 'utf8').replace(/^SHA256\((.+)\)= ([0-9a-f]{64})$/gm, '$2  $1'));
  expect(execFileSync('sha256sum', ['-c', 'sums'], { cwd: x, encoding: 'utf8' })).toBe(`${name}.ovf: OK\n${name}-disk1.vmdk: OK\n`);
  rmSync(x, { recursive: true, force: true });
  const disk = vmdkInOva(ova, entryRange(ova, `${name}-disk1.vmdk`));
  expect(execFileSync('qemu-img', ['compare', image, disk], { encoding: 'utf8' })).toContain('Images are identical');
  expect(execFileSync('qemu-img', ['check', disk], { encoding: 'utf8' })).toContain('No errors were found');
  // The OVF declares demo-lab's OS (Debian 12, CIM id 96) and its default profile (tiny: 2 vCPU, 1024 MiB).
  const { xml } = await readOvfDescriptor(ova);
  const vs = (new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_' }).parse(xml) as Record<string, Record<string, Record<string, unknown>>>)['Envelope']!['VirtualSystem']!;
  const items = (vs['VirtualHardwareSection'] as Record<string, Record<string, unknown>[]>)['Item']!;
  const quantity = (type: number) => Number(items.find((i) => Number(i['rasd:ResourceType']) === type)!['rasd:VirtualQuantity']);
  expect({ os: String((vs['OperatingSystemSection'] as Record<string, unknown>)['@_ovf:id']), cpus: quantity(3), memoryMiB: quantity(4) }).toEqual({ os: '96', cpus: 2, memoryMiB: 1024 });
  return readOvaProperties(ova);
}

const packInputs = (out: string, destination: string, extra: Record<string, string> = {}) => ({
  image,
  'appliance-dir': demoLab,
  path: out,
  destination,
  version: '1.0.0',
  'build-type': 'standard',
  ...(destination.startsWith('gs://') ? { endpoint: emulator.endpoint, 'chunk-size-mib': '1', parallelism: '3' } : {}),
  ...extra,
});

beforeAll(async () => {
  emulator = await GcsEmulator.start({ buckets: ['pack-labs'] });
  dir = mkdtempSync(join(tmpdir(), 'labforge-upload-pack-'));
  image = join(dir, 'guest.qcow2');
  makeDataImage(image, { virtualBytes: VIRTUAL, randomMiB: 4, textLines: 30000 });
});
afterAll(async () => {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('upload-artifact publishes an OVA while it packs it', () => {
  let gsOva: string;

  it('packs the image into the OVA at path and publishes that OVA to gs:// as it is packed', async () => {
    mkdirSync(join(dir, 'gs'));
    gsOva = join(dir, 'gs', `${name}.ova`);
    const run = await runBundledAction('upload-artifact', { inputs: packInputs(gsOva, 'gs://pack-labs/labs', { portal: 'true' }), env: { GITHUB_SHA: 'a'.repeat(40) } });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    // The OVA and its .sha256 stay at path; the published object is that file, byte for byte.
    const local = readFileSync(gsOva);
    const published = await emulator.readObject('pack-labs', `${prefix}${name}.ova`);
    expect(sha256(published)).toBe(sha256(local));
    expect(published.length).toBe(local.length);
    expect(readFileSync(`${gsOva}.sha256`, 'utf8')).toBe(`${sha256(local)}  ${name}.ova\n`);
    expect(run.outputs).toMatchObject({ uri: `gs://pack-labs/${prefix}${name}.ova`, sha256: sha256(local), size: String(local.length), appliance: 'demo-lab', 'metadata-file': join(dir, 'gs', `${name}.metadata.json`) });
    expect(JSON.parse(run.outputs.files ?? '[]')).toEqual([expect.objectContaining({ name: `${name}.ova`, sha256: sha256(local) })]);
    // The body went up in parts while it was compressed (1 MiB parts), head and tail last.
    expect(run.stdout).toContain(`${name}.ova while it is packed`);
    expect(run.stdout).toMatch(new RegExp(`upload ${name}\\.ova: published while packing`));
    const parts = emulator.requests.filter((q) => q.query.uploadType === 'multipart' && q.object?.includes('.labforge-staging/')).map((q) => q.object!.replace(/.*\//, ''));
    expect(parts.length).toBeGreaterThanOrEqual(4);
    expect(new Set(parts.slice(-2))).toEqual(new Set(['head', 'tail']));
    expect(emulator.objectNames('pack-labs').filter((n) => n.includes('.labforge-staging'))).toEqual([]);
    // A valid OVA, with the identity and the build facts the metadata records too.
    const props = await expectValidOva(gsOva);
    expect(props).toMatchObject({ appliance: 'demo-lab', version: '1.0.0', buildType: 'standard', gitSha: 'a'.repeat(40) });
    const meta = JSON.parse((await emulator.readObject('pack-labs', `${prefix}${name}.metadata.json`)).toString());
    expect(meta).toMatchObject({ appliance: 'demo-lab', version: '1.0.0', buildType: 'standard', sha256: sha256(local), size: local.length, buildDate: props.buildDate, gitSha: props.gitSha });
    expect((await emulator.readObject('pack-labs', `${prefix}${name}.ova.sha256`)).toString()).toBe(`${sha256(local)}  ${name}.ova\n`);
    const catalog = JSON.parse((await emulator.readObject('pack-labs', 'labs/index.json')).toString());
    expect(catalog.releases).toEqual([expect.objectContaining({ appliance: 'demo-lab', version: '1.0.0', sha256: sha256(local) })]);
    // The job summary says it was published while packed, and how long packing took.
    expect(run.summary).toContain('Published demo-lab v1.0.0 standard (packed and published at once)');
    expect(run.summary).toMatch(/<td>published while packed<\/td><td>pack \d+\.\d s \(disk \d+\.\d s, hash \d+\.\d s\)/);
    expect(run.summary).toContain(`${gsOva} (`);
  }, 120_000);

  it('packs and publishes to a file:// directory the same way', async () => {
    mkdirSync(join(dir, 'file-out'));
    mkdirSync(join(dir, 'bucket'));
    const ova = join(dir, 'file-out', `${name}.ova`);
    const run = await runBundledAction('upload-artifact', { inputs: packInputs(ova, `file://${join(dir, 'bucket')}`, { profile: 'tiny' }) });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    const releaseDir = join(dir, 'bucket', 'releases', 'v1.0.0', 'standard');
    const local = readFileSync(ova);
    expect(sha256(readFileSync(join(releaseDir, `${name}.ova`)))).toBe(sha256(local));
    expect(run.outputs.sha256).toBe(sha256(local));
    expect(readdirSync(releaseDir).sort()).toEqual([`${name}.metadata.json`, `${name}.ova`, `${name}.ova.sha256`]);
    expect(execFileSync('sha256sum', ['-c', `${name}.ova.sha256`], { cwd: releaseDir, encoding: 'utf8' })).toBe(`${name}.ova: OK\n`);
    expect(readdirSync(join(dir, 'file-out')).sort()).toEqual([`${name}.metadata.json`, `${name}.ova`, `${name}.ova.sha256`]);
    await expectValidOva(ova);
  }, 120_000);

  it('refuses a second run to the same release without overwrite before packing anything', async () => {
    mkdirSync(join(dir, 'again'));
    const ova = join(dir, 'again', `${name}.ova`);
    const before = readFileSync(gsOva);
    const requests = emulator.requests.length;
    const run = await runBundledAction('upload-artifact', { inputs: packInputs(ova, 'gs://pack-labs/labs') });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([expect.stringMatching(new RegExp(`^::error title=upload-artifact::gs://pack-labs/${prefix}${name}\\.ova already exists; a release is published once`))]);
    // Nothing was packed (no OVA, no partial, no work directory) and nothing was sent.
    expect(readdirSync(join(dir, 'again'))).toEqual([]);
    expect(run.stdout).not.toMatch(/^convert: /m);
    expect(emulator.requests.slice(requests).filter((q) => q.method !== 'GET')).toEqual([]);
    expect((await emulator.readObject('pack-labs', `${prefix}${name}.ova`)).equals(before)).toBe(true);
  }, 60_000);

  it('refuses an image that is not a disk, naming image, and publishes nothing', async () => {
    writeFileSync(join(dir, 'notes.qcow2'), 'these are notes, not a disk\n');
    const requests = emulator.requests.length;
    const ova = join(dir, 'gs', 'demo-lab-standard-2.0.0.ova');
    const run = await runBundledAction('upload-artifact', { inputs: { ...packInputs(ova, 'gs://pack-labs/labs'), image: join(dir, 'notes.qcow2'), version: '2.0.0' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([expect.stringMatching(/^::error title=upload-artifact::image: .*notes\.qcow2 is not a disk image/)]);
    expect(emulator.requests.length).toBe(requests);
    expect(existsSync(ova)).toBe(false);
    expect(emulator.objectNames('pack-labs').filter((n) => n.includes('v2.0.0'))).toEqual([]);
  }, 60_000);

  it('a run cancelled while it packs publishes nothing at the release name and leaves no partial OVA', async () => {
    // A slow destination (512 KiB/s per request, one part at a time): the packing waits on the upload.
    const slow = await GcsEmulator.start({ buckets: ['slow-labs'], streamBytesPerSecond: 512 * 1024 });
    try {
      mkdirSync(join(dir, 'cancel'));
      const ova = join(dir, 'cancel', `${name}.ova`);
      const runnerDir = mkdtempSync(join(dir, 'runner-'));
      const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', GITHUB_ACTIONS: 'true', RUNNER_TEMP: runnerDir };
      for (const f of ['output', 'state', 'summary']) writeFileSync(join(runnerDir, f), '');
      Object.assign(env, { GITHUB_OUTPUT: join(runnerDir, 'output'), GITHUB_STATE: join(runnerDir, 'state'), GITHUB_STEP_SUMMARY: join(runnerDir, 'summary') });
      const inputs = { ...packInputs(ova, 'gs://slow-labs/labs'), endpoint: slow.endpoint, parallelism: '1' };
      for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
      const child = spawn(process.execPath, [join(repoRoot, 'actions', 'upload-artifact', 'dist', 'index.js')], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const closed = new Promise<number>((res) => child.on('close', (c) => res(c ?? -1)));
      // Cancel (SIGINT, as the runner does first) once the first body part has arrived.
      const staged = () => slow.requests.some((q) => q.query.uploadType === 'multipart' && /\.labforge-staging\/.*part-/.test(q.object ?? '') && q.status === 200);
      for (let i = 0; i < 600 && !staged(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(staged()).toBe(true);
      child.kill('SIGINT');
      const code = await closed;
      expect(code).toBe(1);
      expect(stdout.split('\n').filter((l) => l.startsWith('::error'))).toEqual([expect.stringMatching(/^::error title=upload-artifact::OVA packing was cancelled/)]);
      expect(slow.objectNames('slow-labs').filter((n) => !n.includes('.labforge-staging'))).toEqual([]);
      expect(readdirSync(join(dir, 'cancel'))).toEqual([]);
    } finally {
      await slow.stop();
    }
  }, 120_000);
});
