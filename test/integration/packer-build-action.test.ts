import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runBundledAction } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'packer', 'fast');
let dir: string;
let image: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-packer-action-'));
  image = join(dir, 'src.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the bundled packer-build action, run as the runner runs it', () => {
  it('builds, packs the OVA, sets every output and writes a summary with phase timings', async () => {
    const run = await runBundledAction('packer-build', {
      cwd: dir,
      inputs: {
        template: join(fixtures, 'image.pkr.hcl'),
        'build-type': 'prewarmed',
        version: '1.4.0',
        vars: `image=${image}`,
        accelerator: 'tcg',
        'expected-image-gib': '1',
        'vm-memory-mib': '128',
        'github-token': 'ghp_secretvalue123',
      },
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.image).toBe(join(dir, 'built', 'appliance.qcow2'));
    expect(run.outputs.ova).toBe(join(dir, 'labforge-output', 'hedgehog-lab-prewarmed-1.4.0.ova'));
    expect(run.outputs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(`${run.outputs.ova}.sha256`, 'utf8')).toBe(`${run.outputs.sha256}  hedgehog-lab-prewarmed-1.4.0.ova\n`);
    expect(Number(run.outputs.size)).toBeGreaterThan(0);
    expect(existsSync(run.outputs['build-log']!)).toBe(true);
    expect(Number(run.outputs['duration-seconds'])).toBeGreaterThanOrEqual(0);
    expect(run.stdout).toContain('::group::packer: provision');
    expect(run.stdout).toMatch(/\[\d\d:\d\d:\d\d\] .*copied the image for prewarmed 1\.4\.0 \(accelerator tcg\)/);
    expect(run.stdout).toContain('note: plugin cache: the template has no required_plugins block; nothing to cache');
    expect(run.stdout).toContain('::add-mask::ghp_secretvalue123');
    // Apart from the mask command (the runner hides the value from then on), the token is never printed.
    expect(run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n')).not.toContain('ghp_secretvalue123');
    expect(run.summary).toContain('Packer build: prewarmed 1.4.0');
    expect(run.summary).toContain('phase provision');
    expect(run.summary).toContain('artifact file.image');
    // The phase timeline right below the table (after a blank line, so that GitHub renders it): one bar per phase.
    expect(run.summary).toMatch(/<\/table>\n\n```mermaid\ngantt\n/);
    const chart = /```mermaid\n[\s\S]*?\n```\n/.exec(run.summary)?.[0] ?? '';
    expect(chart).toContain('\n  dateFormat x\n');
    for (const phase of ['preflight', 'validate', 'provision', 'package']) expect(chart).toMatch(new RegExp(`\\n  ${phase} :p\\d+, \\d{13}, \\d{13}\\n`));
  }, 120_000);

  it('fails in preflight, in one annotation with the fix, when kvm is asked for without /dev/kvm', async () => {
    const run = await runBundledAction('packer-build', {
      cwd: dir,
      inputs: { template: join(fixtures, 'ok.pkr.hcl'), version: '1.0.0', 'kvm-device': join(dir, 'kvm'), 'expected-image-gib': '1', 'vm-memory-mib': '128', package: 'none' },
    });
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toMatch(/^::error title=packer-build::preflight kvm: .*does not exist.*fix: .*accelerator: tcg/);
  });

  it('rejects a bad input before any work', async () => {
    const run = await runBundledAction('packer-build', { cwd: dir, inputs: { template: join(fixtures, 'ok.pkr.hcl'), version: '1.0.0', accelerator: 'qemu' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual(["::error title=packer-build::accelerator: 'qemu' is not one of kvm, tcg, auto (use one of: kvm, tcg, auto)"]);
  });

  it('post: stops a process group and removes the work directory left by a cancelled job', async () => {
    const work = join(dir, 'left-behind');
    mkdirSync(work);
    writeFileSync(join(work, 'packer-shell123'), 'echo');
    const orphan = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    const pgid = orphan.pid!;
    const run = await runBundledAction('packer-build', { post: { 'packer-pgid': String(pgid), 'work-dir': work } });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`post: stopped Packer's process group ${pgid}`);
    expect(run.stdout).toContain(`post: removed ${work}`);
    expect(() => process.kill(-pgid, 0)).toThrow();
    expect(existsSync(work)).toBe(false);
  }, 30_000);
});

describe('labforge build', () => {
  it('runs a build from the command line and prints the outputs as JSON', async () => {
    const out = join(dir, 'cli-out');
    const run = await runCli(['build', '--template', join(fixtures, 'ok.pkr.hcl'), '--version', '1.0.0', '--accelerator', 'tcg', '--package', 'none', '--output-dir', out, '--expected-image-gib', '1', '--vm-memory-mib', '128', '--vars', 'greeting=cli'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('── packer: provision ──');
    expect(JSON.parse(run.stdout)).toMatchObject({ 'build-log': join(out, 'packer-build.log'), ova: '' });
  }, 60_000);

  it('exits 2 when neither an appliance nor a template is given', async () => {
    const run = await runCli(['build', '--version', '1.0.0']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/appliance: is required but empty \(and so is template\)/);
  });
});
