/**
 * `labforge pipeline` (`npm run demo`) end to end on local defaults: the demo appliance, the accelerator that
 * works here, a file:// bucket: a real Packer build in process, the OVA packed, published with its checksum and
 * metadata, the catalog and portal, the closing phase table, and the OVA's build type read back by
 * detect-build-type. The pre-warmed build type, the published OVAs' seal and their first boots are proven
 * through the workflows users click (test/e2e/workflows.test.ts), which run the same modules through build.yml;
 * running both build types here too would build the appliance a second and third time in CI for no new path.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/run-cli.js';
import { ensureDemoBase } from '../support/tiny-guest.js';

const VERSION = '0.9.0';
/** The console password the build takes as a secret (LABFORGE_CONSOLE_PASSWORD); only its hash may reach the image. */
const CONSOLE_PASSWORD = 'workshop-Console-9';
let out: string;

const sha256 = (file: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });

const findFiles = (dir: string, pattern: RegExp): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => pattern.test(f));

beforeAll(async () => {
  // The base image is cached by the hash of its inputs: built here so that the pipelines below time only themselves.
  await ensureDemoBase();
  out = mkdtempSync(join(tmpdir(), 'labforge-pipeline-e2e-'));
}, 900_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('labforge pipeline input', () => {
  it('refuses an unknown build type before any work (exit 2, the input named)', async () => {
    const r = await runCli(['pipeline', '--build-type', 'fast', '--out', join(out, 'never')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("build-type: 'fast' is not one of standard, prewarmed");
    expect(existsSync(join(out, 'never'))).toBe(false);
  });
});

describe.each(['standard'] as const)('labforge pipeline --build-type %s', (buildType) => {
  const name = `demo-lab-${buildType}-${VERSION}`;
  const releaseDir = () => join(out, 'bucket', 'releases', `v${VERSION}`, buildType);
  let run: { code: number; stdout: string; stderr: string };

  beforeAll(async () => {
    run = await runCli(['pipeline', '--build-type', buildType, '--version', VERSION, '--out', out], { timeoutMs: 1_200_000, env: { LABFORGE_CONSOLE_PASSWORD: CONSOLE_PASSWORD } });
  }, 1_250_000);

  it('succeeds and ends with the phase table and where the outputs are', () => {
    if (run.code !== 0) throw new Error(`pipeline failed (${run.code}):\n${run.stderr.slice(-4000)}`);
    const table = run.stdout;
    for (const phase of ['detect', 'build', 'warm', 'pack', 'upload', 'portal', 'total']) expect(table).toMatch(new RegExp(`^${phase}\\s`, 'm'));
    // packer-build streamed Packer's phases as groups: a real qemu build booted, waited for SSH, provisioned.
    for (const group of ['packer: boot', 'packer: wait-ssh', 'packer: provision', 'packer: shutdown']) expect(run.stderr).toContain(`── ${group} ──`);
    expect(run.stderr).toMatch(/seed: nocloud user-data authorizing a new ed25519 key for labforge; login user lab \(console password set/);
    if (buildType === 'standard') expect(table).toMatch(/^warm\s+-\s+\(standard build: no warm\)/m);
    else expect(table).toMatch(/^warm\s+\d+\.\d s\s+\S+prewarmed-0\.9\.0\.qcow2/m);
    expect(table).toContain(`file://${releaseDir()}/${name}.ova`);
    expect(table).toContain(`Portal: file://${join(out, 'bucket', 'index.html')}`);
  });

  it('publishes the OVA with its checksum and metadata companions, and the checksums match', async () => {
    const ova = join(releaseDir(), `${name}.ova`);
    expect(readdirSync(releaseDir()).sort()).toEqual([`${name}.metadata.json`, `${name}.ova`, `${name}.ova.sha256`]);
    const digest = await sha256(ova);
    expect(readFileSync(`${ova}.sha256`, 'utf8')).toBe(`${digest}  ${name}.ova\n`);
    expect(spawnSync('sha256sum', ['-c', `${name}.ova.sha256`], { cwd: releaseDir(), encoding: 'utf8' }).stdout).toBe(`${name}.ova: OK\n`);
    const metadata = JSON.parse(readFileSync(join(releaseDir(), `${name}.metadata.json`), 'utf8')) as Record<string, unknown>;
    expect(metadata).toMatchObject({ name: `${name}.ova`, appliance: 'demo-lab', version: VERSION, buildType, sha256: digest });
    // the local copy next to the bucket is the same file
    expect(await sha256(join(out, `${name}.ova`))).toBe(digest);
  });

  it('the OVA says its build type, read back by detect-build-type', async () => {
    const r = await runCli(['detect-build-type', '--ova', join(releaseDir(), `${name}.ova`)]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ 'build-type': buildType, version: VERSION, source: 'ova' });
    // The OVF declares the manifest's OS and profile: Debian 64-bit, 2 vCPUs, 1024 MiB.
    const ovf = spawnSync('tar', ['-xOf', join(releaseDir(), `${name}.ova`), `${name}.ovf`], { encoding: 'utf8' }).stdout;
    expect(ovf).toContain('ovf:id="96"');
    expect(ovf).toContain('vmw:osType="debian11_64Guest"');
    expect(ovf).toMatch(/<rasd:VirtualQuantity>2<\/rasd:VirtualQuantity>/);
    expect(ovf).toMatch(/<rasd:VirtualQuantity>1024<\/rasd:VirtualQuantity>/);
  });

  it('lists the release in the catalog and the portal', () => {
    const catalog = JSON.parse(readFileSync(join(out, 'bucket', 'index.json'), 'utf8')) as { releases: { version: string; buildType: string }[] };
    expect(catalog.releases).toEqual(expect.arrayContaining([expect.objectContaining({ appliance: 'demo-lab', version: VERSION, buildType })]));
    expect(readFileSync(join(out, 'bucket', 'index.html'), 'utf8')).toContain(`${name}.ova`);
    expect(readFileSync(join(out, 'bucket', 'DOWNLOADS.md'), 'utf8')).toContain(`${name}.ova`);
  });

  it('leaves no QEMU and no overlay behind', () => {
    expect(findFiles(out, /overlay\.qcow2$/)).toEqual([]);
    expect(spawnSync('pgrep', ['-f', `qemu-system.*${out}`]).status).toBe(1);
    expect(existsSync(join(out, 'bucket', 'releases', `v${VERSION}`, buildType, `${name}.ova.labforge-partial`))).toBe(false);
  });
});
