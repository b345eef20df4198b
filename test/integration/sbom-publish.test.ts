/**
 * The appliance SBOM published with its OVA: beside it in a file:// bucket and in the GCS emulator
 * (test/support/gcs-emulator.ts, a hand-written STAND-IN: no GCS here), recorded in the metadata and the
 * catalog, refused before anything is uploaded when it is not CycloneDX, and attached to the GitHub release
 * (test/support/github-api-standin.ts, a STAND-IN for the GitHub REST API).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { publishBuildRelease, readBuildReleaseOptions } from '../../actions/lib/build-release.js';
import { uploadOutputs, uploadRelease, type UploadReleaseOptions } from '../../actions/lib/release-upload.js';
import { sbomFromInventoryFile, type SbomFile } from '../../actions/lib/sbom.js';
import { parseDestination } from '../../actions/lib/upload-options.js';
import { GcsEmulator } from '../support/gcs-emulator.js';
import { GitHubApiStandIn } from '../support/github-api-standin.js';
import { writeOvaFixture } from '../support/ova-fixture.js';
import { runCli } from '../support/run-cli.js';

const INVENTORY = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sbom', 'inventory.json');
const NAME = 'demo-lab-standard-1.0.0';
const REPO = 'octo-org/labforge';
const TOKEN = 'ghs_write_token_for_the_standin_0123456789';

let work: string;
let ova: string;
let sbom: SbomFile;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'labforge-sbom-publish-'));
  mkdirSync(join(work, 'build'));
  ova = await writeOvaFixture(join(work, 'build', `${NAME}.ova`), { properties: { appliance: 'demo-lab', buildType: 'standard', version: '1.0.0' } });
  sbom = await sbomFromInventoryFile(INVENTORY, { appliance: 'demo-lab', buildType: 'standard', version: '1.0.0', buildDate: '2026-11-30T12:00:00Z' }, join(work, 'build', `${NAME}.cdx.json`));
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

function fileOptions(dest: string, extra: Partial<UploadReleaseOptions> = {}): UploadReleaseOptions {
  return {
    path: [ova], destination: parseDestination(`file://${dest}`), parallelism: 2, chunkSizeMib: 1, overwrite: false, makePublic: false,
    signedUrlHours: 0, retentionKeep: 0, retentionDryRun: false, portal: false, log: () => undefined, ...extra,
  };
}

describe('publishing the SBOM with the OVA (file://)', () => {
  let dest: string;
  const lines: string[] = [];
  beforeAll(async () => {
    dest = join(work, 'bucket');
    mkdirSync(dest);
    const r = await uploadRelease(fileOptions(dest, { portal: true, log: (l) => lines.push(l) }));
    expect(uploadOutputs(r)).toMatchObject({ sbom: `file://${dest}/releases/v1.0.0/standard/${NAME}.cdx.json`, 'sbom-file': sbom.path });
  }, 60_000);

  it('puts <name>.cdx.json beside the OVA, byte for byte, and lists it among the release files', () => {
    const rel = join(dest, 'releases/v1.0.0/standard');
    expect(readdirSync(rel).sort()).toEqual([`${NAME}.cdx.json`, `${NAME}.metadata.json`, `${NAME}.ova`, `${NAME}.ova.sha256`]);
    expect(readFileSync(join(rel, `${NAME}.cdx.json`)).equals(readFileSync(sbom.path))).toBe(true);
  });

  it('records the SBOM in the metadata (file name) and the catalog entry (key under the prefix)', () => {
    const facts = { format: 'CycloneDX 1.6', size: sbom.size, sha256: sbom.sha256, components: 15 };
    const metadata = JSON.parse(readFileSync(join(dest, 'releases/v1.0.0/standard', `${NAME}.metadata.json`), 'utf8')) as { sbom?: unknown };
    expect(metadata.sbom).toEqual({ key: `${NAME}.cdx.json`, ...facts });
    const catalog = JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8')) as { releases: { name: string; sbom?: unknown; files: string[] }[] };
    const entry = catalog.releases.find((r) => r.name === `${NAME}.ova`)!;
    expect(entry.sbom).toEqual({ key: `releases/v1.0.0/standard/${NAME}.cdx.json`, ...facts });
    expect(entry.files).toContain(`releases/v1.0.0/standard/${NAME}.cdx.json`);
  });

  it('uploads the SBOM before the catalog lists the release', () => {
    const sbomLine = lines.findIndex((l) => l.startsWith('SBOM: file://'));
    const catalogLine = lines.findIndex((l) => l.startsWith('catalog: '));
    expect(sbomLine).toBeGreaterThanOrEqual(0);
    expect(sbomLine).toBeLessThan(catalogLine);
  });
});

describe('which SBOM, and refusals', () => {
  it('sbom: none publishes the OVA without one', async () => {
    const dest = join(work, 'none');
    mkdirSync(dest);
    const r = await uploadRelease(fileOptions(dest, { sbom: false }));
    expect(readdirSync(join(dest, 'releases/v1.0.0/standard')).sort()).toEqual([`${NAME}.metadata.json`, `${NAME}.ova`, `${NAME}.ova.sha256`]);
    expect(r.release?.sbom).toBeUndefined();
    expect(r.sbomUri).toBe('');
  });

  it('a given SBOM with another local name is published as <name>.cdx.json', async () => {
    const dest = join(work, 'renamed');
    mkdirSync(dest);
    const other = join(work, 'prewarmed-warm-output.cdx.json');
    copyFileSync(sbom.path, other);
    const r = await uploadRelease(fileOptions(dest, { sbom: other }));
    expect(existsSync(join(dest, 'releases/v1.0.0/standard', `${NAME}.cdx.json`))).toBe(true);
    expect(r.release?.sbom?.sha256).toBe(sbom.sha256);
  });

  it('a file that is not a CycloneDX SBOM is refused before anything is uploaded', async () => {
    const dest = join(work, 'refused');
    mkdirSync(dest);
    const junk = join(work, 'junk.cdx.json');
    writeFileSync(junk, JSON.stringify({ spdxVersion: 'SPDX-2.3' }));
    const p = uploadRelease(fileOptions(dest, { sbom: junk }));
    await expect(p).rejects.toThrow(InputError);
    await expect(uploadRelease(fileOptions(dest, { sbom: junk }))).rejects.toThrow(/^sbom: \S+junk\.cdx\.json is not a CycloneDX JSON document \(no bomFormat CycloneDX with a specVersion\) \(publish the \.cdx\.json that labforge made for this build, or set sbom to none\)$/);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('labforge upload names a missing --sbom file in one line and exits 2', async () => {
    const dest = join(work, 'cli');
    mkdirSync(dest);
    const r = await runCli(['upload', '--path', ova, '--destination', `file://${dest}`, '--sbom', join(work, 'absent.cdx.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(`labforge upload: sbom: ${join(work, 'absent.cdx.json')} does not exist or is not a file (give the SBOM the build wrote (packer-build's or vlab-warm's sbom output), none, or leave it empty)`);
    expect(readdirSync(dest)).toEqual([]);
  }, 60_000);
});

describe('publishing the SBOM to the GCS emulator', () => {
  let emulator: GcsEmulator;
  beforeAll(async () => {
    emulator = await GcsEmulator.start();
    emulator.createBucket('labs');
  });
  afterAll(async () => {
    await emulator.stop();
  });

  it('uploads it beside the OVA as CycloneDX JSON and lists it in the catalog', async () => {
    const r = await uploadRelease({ ...fileOptions(work), destination: parseDestination('gs://labs/p'), endpoint: emulator.endpoint, retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 } });
    const key = `p/releases/v1.0.0/standard/${NAME}.cdx.json`;
    expect((await emulator.readObject('labs', key)).equals(readFileSync(sbom.path))).toBe(true);
    expect(emulator.objectResource('labs', key)!.contentType).toBe('application/vnd.cyclonedx+json');
    expect(r.sbomUri).toBe(`gs://labs/${key}`);
    const catalog = JSON.parse((await emulator.readObject('labs', 'p/index.json')).toString()) as { releases: { sbom?: { key: string } }[] };
    expect(catalog.releases[0]!.sbom?.key).toBe(`releases/v1.0.0/standard/${NAME}.cdx.json`);
  }, 60_000);
});

describe('the GitHub release attaches the SBOM', () => {
  let api: GitHubApiStandIn;
  beforeAll(async () => {
    api = new GitHubApiStandIn({ repositories: [REPO], tokens: { [TOKEN]: 'write' } });
    await api.start();
  });
  afterAll(async () => {
    await api.stop();
  });
  const rel = () => join(work, 'bucket', 'releases/v1.0.0/standard');
  const options = (over: Record<string, string> = {}) =>
    readBuildReleaseOptions(inputsFrom({ 'sha256-file': join(rel(), `${NAME}.ova.sha256`), 'metadata-file': join(rel(), `${NAME}.metadata.json`), 'sbom-file': join(rel(), `${NAME}.cdx.json`), ...over }), {
      GITHUB_REPOSITORY: REPO, GITHUB_API_URL: api.url, GITHUB_REF: 'refs/tags/v1.0.0', GITHUB_SHA: 'abc1234',
    });

  it('as an asset, and the notes name it with its format, component count and SHA-256', async () => {
    await publishBuildRelease(options(), TOKEN);
    const r = api.releasesOf(REPO)[0]!;
    expect(r.assets.map((a) => a.name).sort()).toEqual([`${NAME}.cdx.json`, `${NAME}.metadata.json`, `${NAME}.ova.sha256`]);
    expect(r.assets.find((a) => a.name.endsWith('.cdx.json'))!.content.equals(readFileSync(sbom.path))).toBe(true);
    expect(r.body).toContain(`- SBOM: \`${NAME}.cdx.json\` (CycloneDX 1.6, 15 components: every package of the image with its version), attached below; SHA-256 \`${sha256(sbom.path)}\``);
  });

  it('refuses an SBOM that is not the one the metadata lists', async () => {
    const other = join(work, 'other', `${NAME}.cdx.json`);
    mkdirSync(dirname(other), { recursive: true });
    writeFileSync(other, readFileSync(sbom.path, 'utf8').replace('"demo-lab"', '"demo-lab "'));
    await expect(publishBuildRelease(options({ 'sbom-file': other }), TOKEN)).rejects.toThrow(/^sbom-file: \S+ has SHA-256 [0-9a-f]{64}, but the metadata lists demo-lab-standard-1\.0\.0\.cdx\.json with [0-9a-f]{64} \(give the SBOM published with this build\)$/);
  });
});
