/**
 * Bad input to the bundled upload-artifact action (issue 15): every input gets bad values, each refused
 * with exit 1 and one `::error` line naming the input, within 5 s, publishing nothing
 * (see badInputTable in test/support/input-error.ts). Destinations are file:// directories: nothing here
 * needs a network. With `image` (pack the OVA and publish it while it is packed) every case is refused before
 * anything is packed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { badInputTable, type BadInputCase } from '../support/input-error.js';
import { writeOvaFixture } from '../support/ova-fixture.js';
import { writeOvaWithPayload } from '../support/ova-payload.js';
import { repoRoot } from '../support/run-action.js';

const dir = mkdtempSync(join(tmpdir(), 'labforge-bad-upload-'));
const p = (name: string) => join(dir, name);

beforeAll(async () => {
  await writeOvaFixture(p('lab.ova'), { properties: { buildType: 'standard', version: '1.0.0' } });
  await writeOvaFixture(p('evil.ova'), { properties: { buildType: 'standard', version: '1.0.0/../../evil' } });
  await writeOvaFixture(p('no-ovf.ova'), { noOvf: true });
  writeFileSync(p('empty.ova'), '');
  writeFileSync(p('text.ova'), 'not an OVA\n');
  writeFileSync(p('gone.ova'), 'here for a moment');
  writeFileSync(p('sbom-bad.json'), '{"not": "cyclonedx"}\n');
  writeFileSync(p('sbom-text.json'), 'hello\n');
  symlinkSync(p('vanished-target'), p('dangling.ova'));
  symlinkSync('/dev/zero', p('zero-link.ova'));
  mkdirSync(p('out'));
  for (const d of ['out-first-boot', 'out-reason', 'out-login']) mkdirSync(p(d));
  execFileSync('mkfifo', [p('fifo.ova')]);
  mkdirSync(p('a-dir.ova'));
  writeFileSync(p('afile'), 'x');
  // With image: a small qcow2 (no data, 16 MiB virtual), disks that are not, and appliance directories.
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', p('disk.qcow2'), '16M']);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', p('zero.qcow2'), '0']);
  writeFileSync(p('notes.qcow2'), 'these are notes, not a disk\n');
  writeFileSync(p('empty.qcow2'), '');
  await writeOvaWithPayload(p('big.ova'), { buildType: 'standard', version: '1.0.0' }, Buffer.alloc(2 * 1024 * 1024, 7));
  symlinkSync(p('vanished-disk'), p('dangling.qcow2'));
  execFileSync('mkfifo', [p('fifo.qcow2')]);
  mkdirSync(p('a-dir.qcow2'));
  mkdirSync(p('no-manifest'));
  mkdirSync(p('bad-yaml'));
  writeFileSync(p('bad-yaml/appliance.yml'), 'name: [unclosed\n');
  mkdirSync(p('pack-out'));
  writeFileSync(p('pack-out/existing.ova'), 'an earlier OVA');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dest = () => `file://${p('out')}`;
const ok = () => ({ path: p('lab.ova'), destination: dest(), version: '1.0.0', 'build-type': 'standard' });

const demoLab = join(repoRoot, 'packer', 'demo-lab');
/** A valid upload with image: pack the qcow2 with demo-lab's manifest into pack-out/ and publish it. */
const pack = () => ({ image: p('disk.qcow2'), 'appliance-dir': demoLab, path: p('pack-out/demo-lab-standard-1.0.0.ova'), destination: dest(), version: '1.0.0', 'build-type': 'standard' });

const cases: BadInputCase[] = [
  // path
  { name: 'empty', input: 'path', inputs: () => ({ ...ok(), path: '' }) },
  { name: 'does not exist', input: 'path', inputs: () => ({ ...ok(), path: p('missing.ova') }) },
  { name: 'a glob that matches nothing', input: 'path', inputs: () => ({ ...ok(), path: p('*.nothing') }) },
  { name: 'a name with spaces, quotes, $() and non-ASCII that does not exist', input: 'path', inputs: () => ({ ...ok(), path: p('my "läb" $(touch x).ova') }) },
  { name: 'a path with a line break and a workflow command', input: 'path', inputs: () => ({ ...ok(), path: `${p('lab.ova')}\n::error::pwned` }) },
  { name: 'a directory', input: 'path', inputs: () => ({ ...ok(), path: p('a-dir.ova') }) },
  { name: 'an empty file', input: 'path', inputs: () => ({ ...ok(), path: p('empty.ova') }) },
  { name: 'a text file', input: 'path', inputs: () => ({ ...ok(), path: p('text.ova') }) },
  { name: 'an OVA without a descriptor', input: 'path', inputs: () => ({ ...ok(), path: p('no-ovf.ova') }) },
  { name: '/dev/zero', input: 'path', inputs: () => ({ ...ok(), path: '/dev/zero' }) },
  { name: '/dev/urandom', input: 'path', inputs: () => ({ ...ok(), path: '/dev/urandom' }) },
  { name: 'a symlink to /dev/zero', input: 'path', inputs: () => ({ ...ok(), path: p('zero-link.ova') }) },
  { name: 'a symlink whose target is gone', input: 'path', inputs: () => ({ ...ok(), path: p('dangling.ova') }) },
  { name: 'a FIFO (a read would never end)', input: 'path', inputs: () => ({ ...ok(), path: p('fifo.ova') }) },
  { name: 'a file removed before the step reads it', input: 'path', inputs: () => ({ ...ok(), path: p('gone.ova') }), before: () => rmSync(p('gone.ova'), { force: true }) },
  // destination
  { name: 'empty', input: 'destination', inputs: () => ({ ...ok(), destination: '' }) },
  { name: 'an http URL', input: 'destination', inputs: () => ({ ...ok(), destination: 'https://example.com/labs' }) },
  { name: 'gs:// with ..', input: 'destination', inputs: () => ({ ...ok(), destination: 'gs://bucket/../x' }) },
  { name: 'gs:// without a bucket', input: 'destination', inputs: () => ({ ...ok(), destination: 'gs://' }) },
  { name: 'a bucket name with a space', input: 'destination', inputs: () => ({ ...ok(), destination: 'gs://my bucket/x' }) },
  { name: 'file:// with an encoded ..', input: 'destination', inputs: () => ({ ...ok(), destination: `file://${p('out')}/a%2F..%2F..` }) },
  { name: 'file:// naming a file', input: 'destination', inputs: () => ({ ...ok(), destination: `file://${p('afile')}` }) },
  { name: 'with a line break and a workflow command', input: 'destination', inputs: () => ({ ...ok(), destination: `${dest()}\n::error::pwned` }) },
  { name: 'with $()', input: 'destination', inputs: () => ({ ...ok(), destination: 'gs://$(id)/x' }) },
  { name: 'a relative path', input: 'destination', inputs: () => ({ ...ok(), destination: 'out/labs' }) },
  // appliance
  { name: 'with a space', input: 'appliance', inputs: () => ({ ...ok(), appliance: 'hedgehog lab' }) },
  { name: 'a directory path', input: 'appliance', inputs: () => ({ ...ok(), appliance: 'packer/hedgehog-lab' }) },
  { name: 'with $()', input: 'appliance', inputs: () => ({ ...ok(), appliance: '$(reboot)' }) },
  { name: 'with a line break', input: 'appliance', inputs: () => ({ ...ok(), appliance: 'lab\n::error::pwned' }) },
  { name: 'non-ASCII', input: 'appliance', inputs: () => ({ ...ok(), appliance: 'igél-lab' }) },
  { name: 'with ..', input: 'appliance', inputs: () => ({ ...ok(), appliance: '../evil' }) },
  // version, build-type
  { name: 'not semver', input: 'version', inputs: () => ({ ...ok(), version: '1.0' }) },
  { name: 'a path traversal', input: 'version', inputs: () => ({ ...ok(), version: '1.0.0/../../evil' }) },
  { name: 'contradicts the OVA', input: 'version', inputs: () => ({ ...ok(), version: '2.0.0' }) },
  { name: 'with a line break', input: 'version', inputs: () => ({ ...ok(), version: '1.0.0\n::error::x' }) },
  { name: "the OVA's own version is not semver", input: 'path', inputs: () => ({ path: p('evil.ova'), destination: dest() }) },
  { name: 'unknown', input: 'build-type', inputs: () => ({ ...ok(), 'build-type': 'warm' }) },
  { name: 'contradicts the OVA', input: 'build-type', inputs: () => ({ ...ok(), 'build-type': 'prewarmed' }) },
  { name: 'with quotes', input: 'build-type', inputs: () => ({ ...ok(), 'build-type': '"standard"' }) },
  // overwrite, retention-dry-run, make-public, portal, allow-non-ova
  { name: 'not a boolean', input: 'overwrite', inputs: () => ({ ...ok(), overwrite: 'please' }) },
  { name: 'not a boolean', input: 'retention-dry-run', inputs: () => ({ ...ok(), 'retention-dry-run': 'y' }) },
  { name: 'not a boolean', input: 'make-public', inputs: () => ({ ...ok(), 'make-public': 'public' }) },
  { name: 'not a boolean', input: 'portal', inputs: () => ({ ...ok(), portal: 'on' }) },
  { name: 'not a boolean', input: 'allow-non-ova', inputs: () => ({ ...ok(), 'allow-non-ova': 'tru' }) },
  // parallelism, chunk-size-mib, signed-url-hours, retention-keep
  { name: 'zero', input: 'parallelism', inputs: () => ({ ...ok(), parallelism: '0' }) },
  { name: 'above 64', input: 'parallelism', inputs: () => ({ ...ok(), parallelism: '65' }) },
  { name: 'a word', input: 'parallelism', inputs: () => ({ ...ok(), parallelism: 'many' }) },
  { name: 'zero', input: 'chunk-size-mib', inputs: () => ({ ...ok(), 'chunk-size-mib': '0' }) },
  { name: 'above 1024', input: 'chunk-size-mib', inputs: () => ({ ...ok(), 'chunk-size-mib': '4096' }) },
  { name: 'with a unit', input: 'chunk-size-mib', inputs: () => ({ ...ok(), 'chunk-size-mib': '16MiB' }) },
  { name: 'negative', input: 'signed-url-hours', inputs: () => ({ ...ok(), 'signed-url-hours': '-1' }) },
  { name: 'above a week', input: 'signed-url-hours', inputs: () => ({ ...ok(), 'signed-url-hours': '169' }) },
  { name: 'zero', input: 'retention-keep', inputs: () => ({ ...ok(), 'retention-keep': '0' }) },
  { name: 'a word', input: 'retention-keep', inputs: () => ({ ...ok(), 'retention-keep': 'some' }) },
  // endpoint
  { name: 'not a URL', input: 'endpoint', inputs: () => ({ ...ok(), destination: 'gs://labs-bucket/x', endpoint: 'localhost port 8080' }) },
  { name: 'a port that is not a port', input: 'endpoint', inputs: () => ({ ...ok(), destination: 'gs://labs-bucket/x', endpoint: 'http://127.0.0.1:99999' }) },
  { name: 'with a line break', input: 'endpoint', inputs: () => ({ ...ok(), destination: 'gs://labs-bucket/x', endpoint: 'http://127.0.0.1:1\n::error::x' }) },
  // build-date, git-sha, first-boot, reason, login
  { name: 'not a date', input: 'build-date', inputs: () => ({ ...ok(), 'build-date': 'yesterday' }) },
  { name: 'with a line break', input: 'build-date', inputs: () => ({ ...ok(), 'build-date': '2026-01-01\n::error::x' }) },
  { name: 'shell text', input: 'git-sha', inputs: () => ({ ...ok(), 'git-sha': "'; rm -rf /" }) },
  { name: 'too short', input: 'git-sha', inputs: () => ({ ...ok(), 'git-sha': 'abc' }) },
  { name: 'with a terminal escape', input: 'first-boot', inputs: () => ({ ...ok(), destination: `file://${p('out-first-boot')}`, 'first-boot': '5 min\x1b]0;x\x07' }) },
  { name: 'with a line break and a workflow command', input: 'reason', inputs: () => ({ ...ok(), destination: `file://${p('out-reason')}`, reason: 'workshop\n::error::pwned' }) },
  { name: 'with a terminal escape', input: 'login', inputs: () => ({ ...ok(), destination: `file://${p('out-login')}`, login: 'user lab\x1b[2J' }) },
  // source-sha256, source-uri
  { name: 'not 64 hex digits', input: 'source-sha256', inputs: () => ({ ...ok(), 'build-type': 'standard', 'source-sha256': 'abc' }) },
  { name: 'for a standard release', input: 'source-sha256', inputs: () => ({ ...ok(), 'source-sha256': 'a'.repeat(64) }) },
  { name: 'without source-sha256', input: 'source-uri', inputs: () => ({ ...ok(), 'source-uri': 'gs://b/x.ova' }) },
  // sbom
  { name: 'does not exist', input: 'sbom', inputs: () => ({ ...ok(), sbom: p('missing.cdx.json') }) },
  { name: 'not CycloneDX', input: 'sbom', inputs: () => ({ ...ok(), sbom: p('sbom-bad.json') }) },
  { name: 'not JSON', input: 'sbom', inputs: () => ({ ...ok(), sbom: p('sbom-text.json') }) },
  { name: '/dev/zero', input: 'sbom', inputs: () => ({ ...ok(), sbom: '/dev/zero' }) },
  { name: '/dev/urandom', input: 'sbom', inputs: () => ({ ...ok(), sbom: '/dev/urandom' }) },
  { name: 'a FIFO (a read would never end)', input: 'sbom', inputs: () => ({ ...ok(), sbom: p('fifo.ova') }) },
  { name: 'a directory', input: 'sbom', inputs: () => ({ ...ok(), sbom: p('a-dir.ova') }) },
  // image (with image, path is the OVA to write)
  { name: 'does not exist', input: 'image', inputs: () => ({ ...pack(), image: p('missing.qcow2') }) },
  { name: 'a name with spaces, quotes, $() and non-ASCII that does not exist', input: 'image', inputs: () => ({ ...pack(), image: p('my "dïsk" $(touch x).qcow2') }) },
  { name: 'with a line break and a workflow command', input: 'image', inputs: () => ({ ...pack(), image: `${p('disk.qcow2')}\n::error::pwned` }) },
  { name: 'a directory', input: 'image', inputs: () => ({ ...pack(), image: p('a-dir.qcow2') }) },
  { name: 'an empty file', input: 'image', inputs: () => ({ ...pack(), image: p('empty.qcow2') }) },
  { name: 'a text file', input: 'image', inputs: () => ({ ...pack(), image: p('notes.qcow2') }), message: /is not a disk image/ },
  { name: 'a qcow2 of 0 bytes virtual size', input: 'image', inputs: () => ({ ...pack(), image: p('zero.qcow2') }), message: /virtual size of 0 bytes/ },
  { name: 'an OVA', input: 'image', inputs: () => ({ ...pack(), image: p('big.ova') }), message: /is an OVA, not a disk image/ },
  { name: '/dev/zero', input: 'image', inputs: () => ({ ...pack(), image: '/dev/zero' }) },
  { name: 'a FIFO (a read would never end)', input: 'image', inputs: () => ({ ...pack(), image: p('fifo.qcow2') }) },
  { name: 'a symlink whose target is gone', input: 'image', inputs: () => ({ ...pack(), image: p('dangling.qcow2') }) },
  // path with image
  { name: 'empty with image', input: 'path', inputs: () => ({ ...pack(), path: '' }), message: /with image, give the one OVA file to write/ },
  { name: 'two paths with image', input: 'path', inputs: () => ({ ...pack(), path: `${p('pack-out/a.ova')}\n${p('pack-out/b.ova')}` }), message: /names 2 files/ },
  { name: 'a line break and a workflow command with image', input: 'path', inputs: () => ({ ...pack(), path: `${p('pack-out/a.ova')}\n::error::pwned` }) },
  { name: 'a glob with image', input: 'path', inputs: () => ({ ...pack(), path: p('pack-out/*.ova') }), message: /is a glob pattern/ },
  { name: 'not ending in .ova with image', input: 'path', inputs: () => ({ ...pack(), path: p('pack-out/demo.qcow2') }), message: /does not end in \.ova/ },
  { name: 'in a directory that does not exist, with image', input: 'path', inputs: () => ({ ...pack(), path: p('no-such-dir/demo.ova') }), message: /does not exist/ },
  { name: 'below a file, with image', input: 'path', inputs: () => ({ ...pack(), path: p('afile/demo.ova') }) },
  { name: 'an existing file without overwrite, with image', input: 'path', inputs: () => ({ ...pack(), path: p('pack-out/existing.ova') }), message: /already exists/ },
  { name: 'a directory with image', input: 'path', inputs: () => ({ ...pack(), path: p('a-dir.ova') }) },
  { name: 'a FIFO with image', input: 'path', inputs: () => ({ ...pack(), path: p('fifo.ova'), overwrite: 'true' }), message: /not a regular file/ },
  { name: 'a name with quotes, $() and non-ASCII in a directory that does not exist, with image', input: 'path', inputs: () => ({ ...pack(), path: p('gö "x" $(id)/demo.ova') }) },
  // version and build-type with image
  { name: 'missing with image', input: 'version', inputs: () => ({ ...pack(), version: '', 'build-type': '' }), message: /is required with image/ },
  { name: 'missing with image and version', input: 'build-type', inputs: () => ({ ...pack(), 'build-type': '' }), message: /is required with image/ },
  // appliance-dir
  { name: 'without image', input: 'appliance-dir', inputs: () => ({ ...ok(), 'appliance-dir': demoLab }) },
  { name: 'missing with image', input: 'appliance-dir', inputs: () => ({ ...pack(), 'appliance-dir': '' }), message: /is required with image/ },
  { name: 'a directory without appliance.yml', input: 'appliance-dir', inputs: () => ({ ...pack(), 'appliance-dir': p('no-manifest') }), message: /appliance\.yml does not exist/ },
  { name: 'does not exist', input: 'appliance-dir', inputs: () => ({ ...pack(), 'appliance-dir': p('no-such-appliance') }) },
  { name: 'an appliance.yml that is not YAML', input: 'appliance-dir', inputs: () => ({ ...pack(), 'appliance-dir': p('bad-yaml') }), message: /not valid YAML/ },
  { name: 'a file', input: 'appliance-dir', inputs: () => ({ ...pack(), 'appliance-dir': p('afile') }), message: /is a file, expected a directory/ },
  { name: 'with a line break and a workflow command', input: 'appliance-dir', inputs: () => ({ ...pack(), 'appliance-dir': `${demoLab}\n::error::pwned` }) },
  { name: 'with $() and quotes', input: 'appliance-dir', inputs: () => ({ ...pack(), 'appliance-dir': '"$(reboot)"' }) },
  // profile
  { name: 'unknown', input: 'profile', inputs: () => ({ ...pack(), profile: 'huge' }), message: /'huge' is not a resource profile of demo-lab \(use one of: tiny\)/ },
  { name: 'without image', input: 'profile', inputs: () => ({ ...ok(), profile: 'tiny' }) },
  { name: 'with a line break and a workflow command', input: 'profile', inputs: () => ({ ...pack(), profile: 'tiny\n::error::pwned' }) },
  { name: 'non-ASCII with $()', input: 'profile', inputs: () => ({ ...pack(), profile: 'tïny$(id)' }) },
  // appliance and allow-non-ova with image
  { name: 'contradicts appliance-dir', input: 'appliance', inputs: () => ({ ...pack(), appliance: 'hedgehog-lab' }), message: /contradicts appliance-dir, whose appliance\.yml names 'demo-lab'/ },
  { name: 'with image', input: 'allow-non-ova', inputs: () => ({ ...pack(), 'allow-non-ova': 'true' }) },
];

badInputTable('upload-artifact', cases);

describe('after the bad inputs', () => {
  it('nothing was published', () => {
    expect(readdirSync(p('out'))).toEqual([]);
  });

  it('nothing was packed', () => {
    expect(readdirSync(p('pack-out'))).toEqual(['existing.ova']);
  });
});
