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
import { createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/run-cli.js';
import { ensureDemoBase } from '../support/tiny-guest.js';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatBytes } from '../../actions/lib/transfer-progress.js';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { launchChromium, openPortal, shownLinks, shownReleases } from '../support/portal-browser.js';

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

  // As in a workflow step: the runner's job summary file exists and GITHUB_STEP_SUMMARY names it.
  const stepSummary = () => join(out, `step-summary-${buildType}.md`);

  beforeAll(async () => {
    writeFileSync(stepSummary(), '');
    run = await runCli(['pipeline', '--build-type', buildType, '--version', VERSION, '--out', out], { timeoutMs: 1_200_000, env: { LABFORGE_CONSOLE_PASSWORD: CONSOLE_PASSWORD, GITHUB_STEP_SUMMARY: stepSummary() } });
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

  it('in a workflow step also writes a job summary: the phases and their timeline as a Gantt chart', () => {
    const summary = readFileSync(stepSummary(), 'utf8');
    expect(summary).toContain(`<h3>labforge pipeline: demo-lab ${buildType} ${VERSION} in `);
    for (const phase of ['detect', 'build', 'pack', 'upload']) expect(summary).toContain(`<td>phase ${phase}</td>`);
    expect(summary).toMatch(/<\/table>\n\n```mermaid\ngantt\n {2}title Pipeline timeline\n/);
    const bars = summary.split('\n').filter((l) => / :p\d+, \d{13}, \d{13}$/.test(l)).map((l) => l.trim().split(' ')[0]);
    expect(bars).toEqual(expect.arrayContaining(['detect', 'build', 'pack', 'upload']));
  });

  it('publishes the OVA with its checksum and metadata companions, and the checksums match', async () => {
    const ova = join(releaseDir(), `${name}.ova`);
    expect(readdirSync(releaseDir()).sort()).toEqual([`${name}.cdx.json`, `${name}.metadata.json`, `${name}.ova`, `${name}.ova.sha256`]);
    const digest = await sha256(ova);
    expect(readFileSync(`${ova}.sha256`, 'utf8')).toBe(`${digest}  ${name}.ova\n`);
    expect(spawnSync('sha256sum', ['-c', `${name}.ova.sha256`], { cwd: releaseDir(), encoding: 'utf8' }).stdout).toBe(`${name}.ova: OK\n`);
    const metadata = JSON.parse(readFileSync(join(releaseDir(), `${name}.metadata.json`), 'utf8')) as Record<string, unknown>;
    expect(metadata).toMatchObject({ name: `${name}.ova`, appliance: 'demo-lab', version: VERSION, buildType, sha256: digest });
    // the local copy next to the bucket is the same file
    expect(await sha256(join(out, `${name}.ova`))).toBe(digest);
  });

  it("publishes the appliance's SBOM beside the OVA: CycloneDX 1.6, valid, listing the image's dpkg packages", async () => {
    const file = join(releaseDir(), `${name}.cdx.json`);
    const text = readFileSync(file, 'utf8');
    // The library's own validator against the CycloneDX 1.6 schema.
    expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text)).toBeNull();
    const bom = JSON.parse(text) as { specVersion: string; metadata: { component: { name: string; version: string } }; components: { name: string; purl?: string; version?: string }[] };
    expect(bom.specVersion).toBe('1.6');
    expect(bom.metadata.component).toMatchObject({ name: 'demo-lab', version: VERSION });
    const debs = bom.components.filter((c) => c.purl?.startsWith('pkg:deb/debian/'));
    // the guest's real dpkg database (the seal's inventory, fetched by the template after the seal)
    for (const pkg of ['openssh-server', 'cloud-init', 'systemd', 'jq']) expect(debs.map((c) => c.name)).toContain(pkg);
    expect(debs.length).toBeGreaterThan(100);
    expect(debs.find((c) => c.name === 'openssh-server')!.purl).toMatch(/^pkg:deb\/debian\/openssh-server@1:9\.[^?]+\?arch=amd64&distro=debian-12&upstream=openssh$/);
    expect(bom.components.map((c) => c.name)).toEqual(expect.arrayContaining(['hedgehog-lab', 'hedgehog-lab-driver-test-lab']));
    // listed, with the same facts, in the metadata and the catalog entry
    const digest = await sha256(file);
    const facts = { format: 'CycloneDX 1.6', size: statSync(file).size, sha256: digest, components: bom.components.length };
    const metadata = JSON.parse(readFileSync(join(releaseDir(), `${name}.metadata.json`), 'utf8')) as { sbom?: unknown };
    expect(metadata.sbom).toEqual({ key: `${name}.cdx.json`, ...facts });
    const catalog = JSON.parse(readFileSync(join(out, 'bucket', 'index.json'), 'utf8')) as { releases: { name: string; sbom?: unknown; files: string[] }[] };
    const entry = catalog.releases.find((r) => r.name === `${name}.ova`)!;
    expect(entry.sbom).toEqual({ key: `releases/v${VERSION}/${buildType}/${name}.cdx.json`, ...facts });
    expect(entry.files).toContain(`releases/v${VERSION}/${buildType}/${name}.cdx.json`);
    expect(run.stderr).toMatch(/SBOM: \S+\.cdx\.json \(CycloneDX 1\.6, \d+ components, sha256 [0-9a-f]{64}; validated against the CycloneDX 1\.6 JSON schema\)/);
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

  it('shows the release in Chromium with its size, SHA-256 and build type, and its links resolve', async () => {
    const ova = join(releaseDir(), `${name}.ova`);
    const browser = await launchChromium();
    try {
      const p = await openPortal(browser, join(out, 'bucket', 'index.html'));
      const shown = (await shownReleases(p.page)).find((s) => s.id === `demo-lab-${buildType}-${VERSION}`);
      expect(shown).toMatchObject({
        download: `Download ${name}.ova`, buildType: buildType.replace('prewarmed', 'pre-warmed'), size: formatBytes(statSync(ova).size), sha256: await sha256(ova),
        href: pathToFileURL(ova).href, sha256Href: pathToFileURL(`${ova}.sha256`).href,
      });
      for (const href of await shownLinks(p.page)) expect(existsSync(fileURLToPath(href))).toBe(true);
      expect(p.requests).toEqual([pathToFileURL(join(out, 'bucket', 'index.html')).href]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('leaves no QEMU and no overlay behind', () => {
    expect(findFiles(out, /overlay\.qcow2$/)).toEqual([]);
    expect(spawnSync('pgrep', ['-f', `qemu-system.*${out}`]).status).toBe(1);
    expect(existsSync(join(out, 'bucket', 'releases', `v${VERSION}`, buildType, `${name}.ova.labforge-partial`))).toBe(false);
  });
});
