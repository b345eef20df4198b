/**
 * The bundled upload-artifact action (INPUT_* variables, as the runner runs it) and `labforge upload` /
 * `labforge portal`, against the GCS emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GcsEmulator } from '../support/gcs-emulator.js';
import { writeOvaWithPayload } from '../support/ova-payload.js';
import { repoRoot, runBundledAction } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';

let emulator: GcsEmulator;
let dir: string;
beforeAll(async () => {
  emulator = await GcsEmulator.start({ buckets: ['action-labs', 'cli-labs'] });
  dir = mkdtempSync(join(tmpdir(), 'labforge-upload-action-'));
});
afterAll(async () => {
  await emulator.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the bundled upload-artifact action', () => {
  it('publishes a release from INPUT_* variables, sets every output and writes a summary', async () => {
    const ova = join(dir, 'hedgehog-lab-prewarmed-1.4.0.ova');
    await writeOvaWithPayload(ova, { appliance: 'hedgehog-lab', buildType: 'prewarmed', version: '1.4.0' }, randomBytes(2 * 1024 * 1024 + 99));
    const data = readFileSync(ova);
    const run = await runBundledAction('upload-artifact', {
      inputs: {
        path: ova,
        destination: 'gs://action-labs/hedgehog',
        version: '1.4.0',
        'build-type': 'prewarmed',
        endpoint: emulator.endpoint,
        'chunk-size-mib': '1',
        portal: 'true',
        reason: 'Spring workshop',
      },
      env: { GITHUB_SHA: 'abcdef1234567890', GITHUB_REPOSITORY: 'octo/labs', GITHUB_RUN_ID: '42' },
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    const sha = createHash('sha256').update(data).digest('hex');
    expect(run.outputs).toMatchObject({
      uri: 'gs://action-labs/hedgehog/releases/v1.4.0/prewarmed/hedgehog-lab-prewarmed-1.4.0.ova',
      url: `${emulator.endpoint}/action-labs/hedgehog/releases/v1.4.0/prewarmed/hedgehog-lab-prewarmed-1.4.0.ova`,
      sha256: sha,
      size: String(data.length),
      'metadata-uri': 'gs://action-labs/hedgehog/releases/v1.4.0/prewarmed/hedgehog-lab-prewarmed-1.4.0.metadata.json',
      'portal-uri': 'gs://action-labs/hedgehog/index.html',
    });
    expect(run.outputs.crc32c).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    expect(JSON.parse(run.outputs.files ?? '[]')).toHaveLength(1);
    expect(run.summary).toContain('Published hedgehog-lab v1.4.0 prewarmed');
    expect(run.outputs.appliance).toBe('hedgehog-lab');
    expect(run.summary).toContain(sha);
    // throughput over the upload phase: MiB/s, with the bytes sent and the seconds it took
    expect(run.summary).toMatch(new RegExp(`<td>throughput</td><td>\\d+\\.\\d MiB/s \\(${data.length} bytes in \\d+\\.\\d\\d s\\)</td>`));
    expect(run.stdout).toMatch(/upload hedgehog-lab-prewarmed-1\.4\.0\.ova: 100\.0% .*MiB\/s/);
    const md = JSON.parse((await emulator.readObject('action-labs', 'hedgehog/releases/v1.4.0/prewarmed/hedgehog-lab-prewarmed-1.4.0.metadata.json')).toString());
    expect(md).toMatchObject({ appliance: 'hedgehog-lab', gitSha: 'abcdef1234567890', workflowRunUrl: 'https://github.com/octo/labs/actions/runs/42', buildType: 'prewarmed', reason: 'Spring workshop' });
    expect(md.firstBoot).toMatch(/first boot only resumes it \(no time stated/);
    // a local copy of the metadata, beside the artifact, for the release step
    expect(run.outputs['metadata-file']).toBe(join(dir, 'hedgehog-lab-prewarmed-1.4.0.metadata.json'));
    expect(JSON.parse(readFileSync(run.outputs['metadata-file']!, 'utf8'))).toEqual(md);
    expect((await emulator.readObject('action-labs', 'hedgehog/index.html')).toString()).toContain(sha);

    // The same release again: a clear failure, nothing replaced.
    const again = await runBundledAction('upload-artifact', {
      inputs: { path: ova, destination: 'gs://action-labs/hedgehog', version: '1.4.0', 'build-type': 'prewarmed', endpoint: emulator.endpoint },
    });
    expect(again.code).toBe(1);
    expect(again.errors.join('\n')).toMatch(/::error title=upload-artifact::gs:\/\/action-labs\/hedgehog\/releases\/v1\.4\.0\/prewarmed\/hedgehog-lab-prewarmed-1\.4\.0\.ova already exists/);
  });

  it('publishes another appliance named by the appliance input beside it, at the same version', async () => {
    const ova = join(dir, 'demo-lab-prewarmed-1.4.0.ova');
    writeFileSync(ova, randomBytes(300_000));
    const run = await runBundledAction('upload-artifact', {
      // Random bytes, not an OVA: allow-non-ova lets them through (without it the upload refuses them).
      inputs: { path: ova, destination: 'gs://action-labs/hedgehog', appliance: 'demo-lab', version: '1.4.0', 'build-type': 'prewarmed', endpoint: emulator.endpoint, portal: 'true', 'allow-non-ova': 'true' },
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ appliance: 'demo-lab', uri: 'gs://action-labs/hedgehog/releases/v1.4.0/prewarmed/demo-lab-prewarmed-1.4.0.ova' });
    expect(run.summary).toContain('Published demo-lab v1.4.0 prewarmed');
    const catalog = JSON.parse((await emulator.readObject('action-labs', 'hedgehog/index.json')).toString());
    expect(catalog.releases.map((r: { appliance: string; version: string }) => `${r.appliance} ${r.version}`)).toEqual(['demo-lab 1.4.0', 'hedgehog-lab 1.4.0']);
  });

  it('refuses an appliance directory where a name belongs, before any request', async () => {
    const before = emulator.requests.length;
    const run = await runBundledAction('upload-artifact', { inputs: { path: join(dir, 'hedgehog-lab-prewarmed-1.4.0.ova'), destination: 'gs://action-labs/hedgehog', appliance: 'packer/demo-lab', endpoint: emulator.endpoint } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([
      "::error title=upload-artifact::appliance: 'packer/demo-lab' looks like a path, but upload-artifact takes the appliance's name (give the name from appliance.yml, e.g. hedgehog-lab, or leave it empty to read it from the OVA)",
    ]);
    expect(emulator.requests.length).toBe(before);
  });

  it('fails on a bad input naming it, before any request', async () => {
    const before = emulator.requests.length;
    const run = await runBundledAction('upload-artifact', { inputs: { path: 'x.ova', destination: 's3://bucket/x' } });
    expect(run.code).toBe(1);
    expect(run.errors[0]).toMatch(/::error title=upload-artifact::destination: 's3:\/\/bucket\/x' is neither gs:\/\/BUCKET\/PREFIX nor file:\/\/\/DIR/);
    expect(emulator.requests.length).toBe(before);
  });
});

describe('labforge upload and labforge portal', () => {
  it('resumes after the process is killed mid-upload and re-sends only the missing parts', async () => {
    const file = join(dir, 'hedgehog-lab-standard-2.0.0.ova');
    const size = 24 * 1024 * 1024;
    writeFileSync(file, randomBytes(size));
    const args = ['upload', '--path', file, '--destination', 'gs://cli-labs/labs', '--version', '2.0.0', '--build-type', 'standard', '--endpoint', emulator.endpoint, '--chunk-size-mib', '1', '--parallelism', '2', '--allow-non-ova'];
    // Slow the emulator's part uploads so that the kill lands mid-upload.
    emulator.injectFault({ match: { object: /part-0000(0[5-9]|1\d|2\d)$/ }, times: 1000, action: { status: 503 } });
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'labforge'), ...args], { stdio: 'ignore' });
    const start = emulator.uploadedBytes;
    for (let i = 0; i < 400 && emulator.uploadedBytes - start < 4 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    emulator.clearFaults();
    const firstRun = emulator.uploadedBytes - start;
    expect(firstRun).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    const staged = emulator.objectNames('cli-labs').filter((n) => n.includes('/part-')).length;
    expect(staged).toBeGreaterThanOrEqual(4);

    const second = await runCli(args);
    expect(second.stderr).toContain('resuming');
    expect(second.code).toBe(0);
    const out = JSON.parse(second.stdout);
    expect(Number(out.size)).toBe(size);
    const resent = emulator.uploadedBytes - start - size;
    expect(resent).toBeLessThan(3 * 1024 * 1024); // at most the parts in flight at the kill, plus companions
    expect(emulator.objectNames('cli-labs').filter((n) => n.includes('.labforge-staging'))).toEqual([]);
  }, 120_000);

  it('regenerates the portal from index.json', async () => {
    const run = await runCli(['portal', '--destination', 'gs://cli-labs/labs', '--endpoint', emulator.endpoint, '--title', 'Workshop downloads']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ 'portal-uri': 'gs://cli-labs/labs/index.html', releases: 1 });
    const html = (await emulator.readObject('cli-labs', 'labs/index.html')).toString();
    expect(html).toContain('<title>Workshop downloads</title>');
    expect(html).toContain('v2.0.0');
  });

  it('exits 2 with the input named on bad flags', async () => {
    const run = await runCli(['upload', '--path', 'x.ova', '--destination', 'gs://cli-labs/labs', '--parallelism', 'many']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("labforge upload: parallelism: 'many' is not a whole number");
  });
});
