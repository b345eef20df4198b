import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSize, parseSha256Line, readReleaseFacts, releaseTitle, renderReleaseNotes } from '../../actions/lib/release-notes.js';
import { publishBuildRelease, readBuildReleaseOptions } from '../../actions/lib/build-release.js';
import { inputsFrom } from '../../actions/lib/inputs.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-notes-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEX = '0123456789abcdef'.repeat(4);

describe('reading the facts of a build', () => {
  it('reads the checksum file in sha256sum format, text or binary mode', () => {
    expect(parseSha256Line(`${HEX}  hedgehog-lab-standard-1.0.0.ova\n`, 'x')).toEqual({ sha256: HEX, fileName: 'hedgehog-lab-standard-1.0.0.ova' });
    expect(parseSha256Line(`${HEX.toUpperCase()} *out/hedgehog-lab-standard-1.0.0.ova\n`, 'x')).toEqual({ sha256: HEX, fileName: 'hedgehog-lab-standard-1.0.0.ova' });
    expect(() => parseSha256Line('deadbeef  x.ova', 'f.sha256')).toThrow("sha256-file: f.sha256 is not in sha256sum format (expected '<64 hex digits>  <file name>', found 'deadbeef  x.ova')");
  });

  it('takes build type and version from the file name when there is no metadata', async () => {
    const sha = join(dir, 'a.sha256');
    writeFileSync(sha, `${HEX}  hedgehog-lab-standard-1.2.3.ova\n`);
    const facts = await readReleaseFacts({ sha256File: sha });
    expect(facts).toMatchObject({ appliance: 'hedgehog-lab', buildType: 'standard', version: '1.2.3', sha256: HEX, size: undefined });
    expect(facts.firstBoot).toContain('the lab is initialized on first boot (no time stated');
    expect((await readReleaseFacts({ sha256File: sha, overrides: { size: 2048 } })).size).toBe(2048);
  });

  it('reads metadata in any key spelling and refuses a checksum that disagrees', async () => {
    const sha = join(dir, 'b.sha256');
    writeFileSync(sha, `${HEX}  hedgehog-lab-prewarmed-2.0.0.ova\n`);
    const meta = join(dir, 'b.json');
    writeFileSync(meta, JSON.stringify({ 'build-type': 'prewarmed', version: '2.0.0', size: '1024', expected_first_boot_minutes: 4, reason: 'workshop' }));
    const facts = await readReleaseFacts({ sha256File: sha, metadataFile: meta });
    expect(facts).toMatchObject({ appliance: 'hedgehog-lab', buildType: 'prewarmed', size: 1024, firstBoot: 'about 4 minutes', reason: 'workshop' });
    writeFileSync(meta, JSON.stringify({ buildType: 'prewarmed', version: '2.0.0', sha256: 'f'.repeat(64) }));
    await expect(readReleaseFacts({ sha256File: sha, metadataFile: meta })).rejects.toThrow(`metadata-file: its sha256 ${'f'.repeat(64)} differs from ${HEX}`);
    writeFileSync(meta, '[1]');
    await expect(readReleaseFacts({ sha256File: sha, metadataFile: meta })).rejects.toThrow('holds JSON but not an object');
  });
});

describe('the appliance of a build', () => {
  it('comes from the file name of another appliance', async () => {
    const sha = join(dir, 'demo.sha256');
    writeFileSync(sha, `${HEX}  demo-lab-prewarmed-1.0.0.ova\n`);
    expect(await readReleaseFacts({ sha256File: sha })).toMatchObject({ appliance: 'demo-lab', buildType: 'prewarmed', version: '1.0.0', fileName: 'demo-lab-prewarmed-1.0.0.ova' });
  });

  it('comes from the metadata, and metadata made before appliances were recorded reads as hedgehog-lab', async () => {
    const sha = join(dir, 'odd.sha256');
    writeFileSync(sha, `${HEX}  my-build.ova\n`);
    const meta = join(dir, 'odd.json');
    writeFileSync(meta, JSON.stringify({ appliance: 'demo-lab', buildType: 'standard', version: '1.1.0' }));
    expect((await readReleaseFacts({ sha256File: sha, metadataFile: meta })).appliance).toBe('demo-lab');
    writeFileSync(meta, JSON.stringify({ buildType: 'standard', version: '1.1.0' }));
    expect((await readReleaseFacts({ sha256File: sha, metadataFile: meta })).appliance).toBe('hedgehog-lab');
  });

  it('refuses metadata of one appliance beside the checksum of another', async () => {
    const sha = join(dir, 'mix.sha256');
    writeFileSync(sha, `${HEX}  hedgehog-lab-standard-1.0.0.ova\n`);
    const meta = join(dir, 'mix.json');
    writeFileSync(meta, JSON.stringify({ appliance: 'demo-lab', buildType: 'standard', version: '1.0.0' }));
    await expect(readReleaseFacts({ sha256File: sha, metadataFile: meta })).rejects.toThrow(/^metadata-file: it says appliance demo-lab, but hedgehog-lab-standard-1\.0\.0\.ova in .* is a build of hedgehog-lab \(/);
    writeFileSync(meta, JSON.stringify({ appliance: 'Demo Lab', buildType: 'standard', version: '1.0.0' }));
    await expect(readReleaseFacts({ sha256File: sha, metadataFile: meta })).rejects.toThrow(/^metadata-file: appliance is 'Demo Lab', which is not an appliance name/);
  });
});

describe('how attendees log in', () => {
  it('comes from the metadata (the manifest\'s login.how) and is a row of the notes, table-safe', async () => {
    const sha = join(dir, 'login.sha256');
    writeFileSync(sha, `${HEX}  demo-lab-standard-1.2.0.ova\n`);
    const meta = join(dir, 'login.json');
    writeFileSync(meta, JSON.stringify({ appliance: 'demo-lab', buildType: 'standard', version: '1.2.0', login: 'Log in on the console as `lab` | with the console password.' }));
    const facts = await readReleaseFacts({ sha256File: sha, metadataFile: meta });
    expect(facts.login).toBe('Log in on the console as `lab` | with the console password.');
    const notes = renderReleaseNotes(facts);
    expect(notes).toContain('| How to log in | Log in on the console as `lab` \\| with the console password. |');
  });
});

describe('the release notes', () => {
  it('name the appliance in the title and the table', () => {
    const facts = { appliance: 'demo-lab', buildType: 'standard' as const, version: '1.0.0', fileName: 'demo-lab-standard-1.0.0.ova', sha256: HEX, firstBoot: 'about a minute' };
    expect(releaseTitle(facts)).toBe('demo-lab 1.0.0 (standard)');
    const notes = renderReleaseNotes(facts);
    expect(notes).toContain('## demo-lab 1.0.0 (standard)');
    expect(notes).toContain('| Appliance | `demo-lab` |');
    expect(notes).toContain('sha256sum -c demo-lab-standard-1.0.0.ova.sha256');
    expect(notes).toContain('| Expected first boot | about a minute |');
  });

  it('state build type, size, checksum, first boot, link and verification', () => {
    const notes = renderReleaseNotes({
      appliance: 'hedgehog-lab',
      buildType: 'prewarmed',
      version: '1.4.0',
      fileName: 'hedgehog-lab-prewarmed-1.4.0.ova',
      sha256: HEX,
      size: 3 * 1024 ** 3,
      downloadUrl: "https://storage.example/o?sig=a'b",
      firstBoot: 'under 5 minutes',
      reason: 'a | b\nc',
    });
    expect(notes).toContain('| Build type | `prewarmed` — pre-warmed');
    expect(notes).toContain('| Size | 3.0 GiB (3,221,225,472 bytes) |');
    expect(notes).toContain(`| SHA-256 | \`${HEX}\` |`);
    expect(notes).toContain('| Expected first boot | under 5 minutes |');
    expect(notes).toContain('| Reason | a \\| b c |');
    expect(notes).toContain("curl -fL -C - -o hedgehog-lab-prewarmed-1.4.0.ova 'https://storage.example/o?sig=a'\\''b'");
    expect(notes).toContain('sha256sum -c hedgehog-lab-prewarmed-1.4.0.ova.sha256');
  });

  it('show how to check the download with labforge verify, and the provenance only when the OVA was attested', () => {
    const facts = { appliance: 'hedgehog-lab', buildType: 'standard' as const, version: '1.4.0', fileName: 'hedgehog-lab-standard-1.4.0.ova', sha256: HEX, firstBoot: 'about 15 minutes' };
    const plain = renderReleaseNotes(facts);
    expect(plain).toContain('labforge verify hedgehog-lab-standard-1.4.0.ova');
    expect(plain).not.toContain('gh attestation');
    expect(plain).not.toContain('### Provenance');
    const attested = renderReleaseNotes({ ...facts, attestationRepo: 'acme/labs' });
    expect(attested).toContain('### Provenance');
    expect(attested).toContain('gh attestation verify hedgehog-lab-standard-1.4.0.ova --repo acme/labs');
    // The commands come in this order: checksum, labforge verify, provenance.
    const at = (t: string) => attested.indexOf(t);
    expect(at('sha256sum -c')).toBeLessThan(at('labforge verify'));
    expect(at('labforge verify')).toBeLessThan(at('gh attestation verify'));
  });

  it('take the attesting repository from labforge release --attestation-repo, and refuse anything but owner/name', async () => {
    {
      const sum = join(dir, 'demo-lab-standard-1.0.0.ova.sha256');
      writeFileSync(sum, `${HEX}  demo-lab-standard-1.0.0.ova\n`);
      const options = readBuildReleaseOptions(inputsFrom({ 'sha256-file': sum, 'dry-run': true, repository: 'acme/labs', 'attestation-repo': 'acme/labs' }), {});
      const { notes } = await publishBuildRelease(options, 'dry-run-token');
      expect(notes).toContain('gh attestation verify demo-lab-standard-1.0.0.ova --repo acme/labs');
      expect(() => readBuildReleaseOptions(inputsFrom({ 'sha256-file': sum, 'dry-run': true, repository: 'acme/labs', 'attestation-repo': 'acme/labs; rm -rf /' }), {})).toThrow(/^attestation-repo: 'acme\/labs; rm -rf \/' is not owner\/name/);
    }
  });

  it('formats sizes', () => {
    expect(formatSize(512)).toBe('512 bytes');
    expect(formatSize(1536)).toBe('1.5 KiB (1,536 bytes)');
  });
});

describe('a release published to a file:// destination', () => {
  it('says where the OVA is stored instead of a link', async () => {
    const sha = join(dir, 'file-dest.sha256');
    writeFileSync(sha, `${HEX}  demo-lab-standard-0.3.0.ova\n`);
    const meta = join(dir, 'file-dest.json');
    writeFileSync(meta, JSON.stringify({ buildType: 'standard', version: '0.3.0', url: 'file:///srv/labs/releases/v0.3.0/standard/demo-lab-standard-0.3.0.ova' }));
    const notes = renderReleaseNotes(await readReleaseFacts({ sha256File: sha, metadataFile: meta }));
    expect(notes).toContain('- demo-lab-standard-0.3.0.ova: stored at `/srv/labs/releases/v0.3.0/standard/demo-lab-standard-0.3.0.ova` (a file:// destination; copy it from there).');
    expect(notes).not.toContain('](file://');
  });
});
