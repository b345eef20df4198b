/**
 * `labforge doctor` (the preflight's local mode) against this machine's real tools, and against a PATH that
 * lacks some of them: a temporary directory of symlinks to the real programs, minus packer and genisoimage.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { BASE_IMAGE_TOOLS, BUILD_TOOLS, LOCAL_TOOLS, type PreflightReport } from '../../actions/lib/preflight.js';
import { runCli } from '../support/run-cli.js';
import { repoRoot } from '../support/run-action.js';

let dir: string;
let out: string;
let partialPath: string;
const allTools = [...BUILD_TOOLS, ...LOCAL_TOOLS, ...BASE_IMAGE_TOOLS];
const removed = new Set(['packer', 'genisoimage', 'xorriso']);

/** The real program `name` on this machine's PATH. */
function onPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) if (d && existsSync(join(d, name))) return join(d, name);
  return undefined;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-doctor-'));
  out = join(dir, 'out');
  partialPath = join(dir, 'bin');
  mkdirSync(partialPath);
  for (const name of new Set(allTools.flatMap((t) => [t.command, ...(t.alternatives ?? [])]))) {
    const real = onPath(name);
    if (real && !removed.has(name)) symlinkSync(real, join(partialPath, name));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const json = (text: string) => JSON.parse(text) as PreflightReport;

describe('labforge doctor', () => {
  it('passes with exit 0 on this machine, where everything is installed', async () => {
    const run = await runCli(['doctor', '--out', out]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^labforge doctor: demo-lab, profile tiny \(1024 MiB VM\)\n/);
    for (const tool of ['packer', 'qemu', 'qemu-img', 'genisoimage', 'mmdebstrap', 'kvm', 'disk', 'memory']) expect(run.stdout).toMatch(new RegExp(`^${tool} +ok `, 'm'));
    expect(run.stdout).toMatch(/^packer +ok +packer 1\.6\.6$/m);
    expect(run.stdout).toMatch(/^accelerator: (kvm|tcg)$/m);
    expect(run.stdout).not.toContain('apt-get');
    expect(run.stdout).toMatch(/Ready: labforge pipeline can run here\.\n$/);
  });

  it('names the Debian package of every missing program in ONE apt-get line, and exits 1', async () => {
    const run = await runCli(['doctor', '--out', out], { env: { PATH: partialPath } });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^packer +MISSING +packer was not found$/m);
    expect(run.stdout).toMatch(/^genisoimage +MISSING +genisoimage was not found \(nor xorriso\)$/m);
    expect(run.stdout).toMatch(/^qemu-img +ok /m);
    const aptLines = run.stdout.split('\n').filter((l) => l.includes('apt-get install'));
    expect(aptLines).toEqual(['  apt-get install -y genisoimage packer']);
  });

  it('reports the same as labforge preflight for the same machine (one set of checks)', async () => {
    for (const PATH of [process.env.PATH ?? '', partialPath]) {
      const doctor = json((await runCli(['doctor', '--out', out, '--json'], { env: { PATH } })).stdout);
      // The demo appliance's needs, given to preflight as flags: expected-image-gib 4, the tiny profile's 1024 MiB.
      const pre = json((await runCli(['preflight', '--accelerator', 'auto', '--expected-image-gib', '4', '--vm-memory-mib', '1024', '--output-dir', dir], { env: { PATH } })).stdout);
      expect(doctor.accelerator).toBe(pre.accelerator);
      const common = pre.verdicts.map((v) => v.check);
      expect(common).toEqual(['packer', 'kvm', 'qemu', 'qemu-img', 'disk', 'memory']);
      const comparable = (r: PreflightReport) =>
        r.verdicts.filter((v) => common.includes(v.check)).map((v) => ({ ...v, detail: v.check === 'disk' || v.check === 'memory' ? v.detail.replace(/[\d.]+ (GiB|MiB)/, 'N $1').replace(/under \S+/, 'under DIR') : v.detail }));
      expect(comparable(doctor)).toEqual(comparable(pre));
      expect(doctor.missingPackages).toEqual(expect.arrayContaining(pre.missingPackages));
      expect(pre.missingPackages).toEqual(PATH === partialPath ? ['packer'] : []);
    }
  });

  it('labforge pipeline stops with the same apt-get line before anything slow', async () => {
    const started = Date.now();
    const run = await runCli(['pipeline', '--out', out], { env: { PATH: partialPath } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('preflight packer: packer was not found');
    expect(run.stderr).toContain('preflight genisoimage: genisoimage was not found (nor xorriso)');
    expect(run.stderr).toContain('preflight: install what is missing, as root: apt-get install -y genisoimage packer\n');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(existsSync(join(out, 'work'))).toBe(false);
  });

  it('a bad flag is one line and exit 2', async () => {
    const run = await runCli(['doctor', '--profile', 'huge']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe("labforge doctor: profile: 'huge' is not a resource profile of demo-lab (use one of: tiny)\n");
  });

  it('every package it can name is in scripts/debian-packages.txt (what scripts/setup.sh installs)', () => {
    const listed = readFileSync(join(repoRoot, 'scripts', 'debian-packages.txt'), 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    for (const t of allTools) expect(listed).toContain(t.package);
  });
});
