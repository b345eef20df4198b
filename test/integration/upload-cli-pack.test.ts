/**
 * `labforge upload-artifact --image` (issue 16, the CLI beside the action): the built command line packs a real
 * qcow2 (made with qemu-img) into the OVA at --path with packer/demo-lab's manifest and publishes it while it
 * is packed — to a file:// directory, where `sha256sum -c` of the published .sha256 must pass and the
 * published OVA must be the local one byte for byte; and SIGINT while it packs (to the GCS emulator, slowed
 * down) must publish nothing and leave no partial OVA. Run `node scripts/build.mjs` first.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOvaProperties } from '../../actions/lib/ova-read.js';
import { GcsEmulator } from '../support/gcs-emulator.js';
import { repoRoot } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';
import { makeDataImage } from '../support/disk-image.js';

const MiB = 1024 * 1024;
const name = 'demo-lab-standard-1.0.0';
let dir: string;
let image: string;


const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The CLI's flags for packing `image` into `out` and publishing it to `destination`. */
const packArgs = (out: string, destination: string, extra: string[] = []) => [
  'upload-artifact',
  '--image',
  image,
  '--appliance-dir',
  'packer/demo-lab',
  '--path',
  out,
  '--destination',
  destination,
  '--version',
  '1.0.0',
  '--build-type',
  'standard',
  ...extra,
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-upload-cli-pack-'));
  image = join(dir, 'guest.qcow2');
  makeDataImage(image, { virtualBytes: 40 * MiB, randomMiB: 4, textLines: 30000 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('labforge upload-artifact --image packs an OVA and publishes it while it packs', () => {
  it('publishes to file:// the OVA it wrote at --path, byte for byte, with a .sha256 that sha256sum -c accepts', async () => {
    mkdirSync(join(dir, 'out'));
    mkdirSync(join(dir, 'bucket'));
    const ova = join(dir, 'out', `${name}.ova`);
    const run = await runCli(packArgs(ova, `file://${join(dir, 'bucket')}`, ['--git-sha', 'b'.repeat(40)]));
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: expect.stringContaining(`upload ${name}.ova: published while packing`) });
    // The OVA and its .sha256 stay at --path; the published release is that file.
    const local = readFileSync(ova);
    const releaseDir = join(dir, 'bucket', 'releases', 'v1.0.0', 'standard');
    expect(readdirSync(releaseDir).sort()).toEqual([`${name}.metadata.json`, `${name}.ova`, `${name}.ova.sha256`]);
    expect(sha256(readFileSync(join(releaseDir, `${name}.ova`)))).toBe(sha256(local));
    expect(execFileSync('sha256sum', ['-c', `${name}.ova.sha256`], { cwd: releaseDir, encoding: 'utf8' })).toBe(`${name}.ova: OK\n`);
    expect(readFileSync(`${ova}.sha256`, 'utf8')).toBe(`${sha256(local)}  ${name}.ova\n`);
    // stdout is the outputs as JSON (as the action sets them); stderr tells where the OVA is and how long packing took.
    const outputs = JSON.parse(run.stdout) as Record<string, string>;
    expect(outputs).toMatchObject({ uri: `file://${join(releaseDir, `${name}.ova`)}`, sha256: sha256(local), size: String(local.length), appliance: 'demo-lab' });
    expect(run.stderr).toMatch(/^packed: .*demo-lab-standard-1\.0\.0\.ova \(\d+\.\d MiB\)/m);
    expect(run.stderr).toMatch(/^published while packed: pack \d+\.\d s \(disk \d+\.\d s, hash \d+\.\d s\)/m);
    expect(run.stderr).toMatch(/^appliance: demo-lab, profile tiny: 2 vCPU, 1024 MiB/m);
    // The OVA carries the identity given on the command line, and so does the metadata.
    expect(await readOvaProperties(ova)).toMatchObject({ appliance: 'demo-lab', version: '1.0.0', buildType: 'standard', gitSha: 'b'.repeat(40) });
    expect(JSON.parse(readFileSync(join(releaseDir, `${name}.metadata.json`), 'utf8'))).toMatchObject({ appliance: 'demo-lab', sha256: sha256(local), gitSha: 'b'.repeat(40) });
  }, 120_000);

  it('stops on SIGINT while it packs: nothing is published at the release name and no partial OVA is left', async () => {
    // A slow destination (512 KiB/s per request, one part at a time): the packing waits on the upload.
    const slow = await GcsEmulator.start({ buckets: ['slow-labs'], streamBytesPerSecond: 512 * 1024 });
    try {
      mkdirSync(join(dir, 'cancel'));
      const ova = join(dir, 'cancel', `${name}.ova`);
      const args = packArgs(ova, 'gs://slow-labs/labs', ['--endpoint', slow.endpoint, '--parallelism', '1', '--chunk-size-mib', '1']);
      const child = spawn(process.execPath, [join(repoRoot, 'bin', 'labforge'), ...args], {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number>((res) => child.on('close', (c) => res(c ?? -1)));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      try {
        // Cancel once the first body part has arrived.
        const staged = () => slow.requests.some((q) => q.query.uploadType === 'multipart' && /\.labforge-staging\/.*part-/.test(q.object ?? '') && q.status === 200);
        for (let i = 0; i < 600 && !staged(); i++) await new Promise((r) => setTimeout(r, 50));
        expect(staged()).toBe(true);
        child.kill('SIGINT');
        expect(await closed).toBe(1);
      } finally {
        clearTimeout(timer);
      }
      expect(stdout).toBe('');
      expect(stderr.split('\n').filter((l) => l.startsWith('labforge upload-artifact: '))).toEqual([expect.stringMatching(/^labforge upload-artifact: OVA packing was cancelled/)]);
      expect(slow.objectNames('slow-labs').filter((n) => !n.includes('.labforge-staging'))).toEqual([]);
      expect(readdirSync(join(dir, 'cancel'))).toEqual([]);
    } finally {
      await slow.stop();
    }
  }, 120_000);
});
