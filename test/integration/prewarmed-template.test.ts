/**
 * packer/hedgehog-lab-prewarmed, built for real with Debian's Packer 1.6.6 under TCG against the tiny guest
 * (as the "standard image"): Packer boots a copy, its shell-local provisioner runs `labforge warm --attach`
 * on the machine Packer runs, and the image Packer writes carries the marker and the warm manifest.
 * The tiny guest has no bootloader and no cloud-init: the test passes direct-kernel-boot qemu_args and the
 * tiny guest's own key; the template and the warm are exactly what a real build runs.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/run-action.js';
import { ensureTinyGuest, type TinyGuest } from '../support/tiny-guest.js';

/** The parts of warm-manifest.json / status --json the tests read. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = Record<string, any>;

let guest: TinyGuest;
let work: string;

beforeAll(async () => {
  guest = await ensureTinyGuest();
  work = mkdtempSync(join(tmpdir(), 'labforge-prewarmed-template-'));
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Reads a file from the ext4 root file system inside a qcow2 without booting or mounting it. */
function readGuestFile(qcow2: string, path: string): string {
  const raw = join(work, 'root.raw');
  spawnSync('qemu-img', ['convert', '-O', 'raw', qcow2, raw], { stdio: 'ignore' });
  const r = spawnSync('debugfs', ['-R', `cat ${path}`, raw], { encoding: 'utf8' });
  rmSync(raw, { force: true });
  return r.stdout;
}

describe('the pre-warmed Packer template', () => {
  it('boots a copy of the standard image, warms it with labforge warm --attach, and writes the pre-warmed image', async () => {
    const template = join(work, 'template');
    mkdirSync(template);
    const src = join(repoRoot, 'packer', 'hedgehog-lab-prewarmed');
    for (const f of readdirSync(src).filter((f) => f.endsWith('.pkr.hcl') && f !== 'plugins.pkr.hcl')) copyFileSync(join(src, f), join(template, f));
    const seed = join(work, 'seed');
    mkdirSync(seed);
    writeFileSync(join(seed, 'user-data'), '#cloud-config\n');
    writeFileSync(join(seed, 'meta-data'), 'instance-id: test\n');
    const output = join(work, 'out');
    const qemuArgs = JSON.stringify([['-kernel', guest.kernel], ['-initrd', guest.initrd], ['-append', `${guest.kernelCmdline} hedgehog-lab.skip`]]);
    const imageBefore = statSync(guest.image).mtimeMs;
    const args = [
      'build',
      `-var=version=3.1.0`,
      `-var=standard_image=${guest.image}`,
      `-var=seed_dir=${seed}`,
      `-var=ssh_private_key_file=${guest.privateKey}`,
      `-var=ssh_username=${guest.user}`,
      `-var=labforge=${process.execPath} ${join(repoRoot, 'bin', 'labforge')}`,
      '-var=accelerator=tcg',
      '-var=cpus=2',
      '-var=memory=1024',
      `-var=output_directory=${output}`,
      `-var=qemu_args=${qemuArgs}`,
      `-var=warm_extra_flags=--seal-command 'sudo -n /usr/local/sbin/hedgehog-lab-seal' --ready-timeout-minutes 10`,
      template,
    ];
    const child = spawn('packer', args, { cwd: work, env: { ...process.env, CHECKPOINT_DISABLE: '1', PACKER_NO_COLOR: '1', PACKER_CACHE_DIR: join(work, 'packer_cache') }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 600_000);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(timer);
    if (code !== 0) throw new Error(`packer build failed (${code}):\n${log.slice(-5000)}`);

    expect(log).toMatch(/Running local shell script[\s\S]*SSH up as lab@127\.0\.0\.1:\d+/);
    expect(log).toContain('mode=build-init');
    expect(log).toContain('marker /etc/hedgehog-lab/build-type = prewarmed');
    const image = join(output, 'hedgehog-lab-prewarmed-3.1.0.qcow2');
    expect(statSync(image).size).toBeGreaterThan(0);
    expect(statSync(guest.image).mtimeMs).toBe(imageBefore);
    expect(readGuestFile(image, '/etc/hedgehog-lab/build-type')).toBe('prewarmed\n');
    const manifest = JSON.parse(readGuestFile(image, '/var/lib/hedgehog-lab/warm-manifest.json')) as Manifest;
    expect(manifest).toMatchObject({ buildType: 'prewarmed', labVersion: '3.1.0', mode: 'attach', readiness: { exitCode: 0 } });
  }, 900_000);
});
