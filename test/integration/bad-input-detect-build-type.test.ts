/**
 * Bad input to the bundled detect-build-type action (issue 15): every input gets bad values (names with
 * spaces, quotes, `$()`, line breaks and non-ASCII; devices, symlinks and vanished files where a file is
 * expected). Each case must end with exit 1 and one `::error` line naming the input, within 5 s
 * (see badInputTable in test/support/input-error.ts).
 */
import { afterAll, beforeAll } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { badInputTable, type BadInputCase } from '../support/input-error.js';

const dir = mkdtempSync(join(tmpdir(), 'labforge-bad-detect-'));
const p = (name: string) => join(dir, name);

beforeAll(() => {
  writeFileSync(p('empty'), '');
  writeFileSync(p('text.ova'), 'this is not an OVA\n');
  writeFileSync(p('marker-bogus'), 'bogus\n');
  writeFileSync(p('marker-esc'), '\x1b]0;pwned\x07prewarmed\n');
  writeFileSync(p('marker-cmd'), '::error::pwned\n');
  writeFileSync(p('marker-big'), 'a'.repeat(8 * 1024 * 1024));
  writeFileSync(p('gone'), 'here for a moment');
  symlinkSync(p('vanished-target'), p('dangling'));
  symlinkSync('/dev/zero', p('zero-link.ova'));
  symlinkSync('/dev/urandom', p('urandom-link'));
  mkdirSync(p('a-dir'));
  mkdirSync(p('no-manifest'));
  mkdirSync(p('bad-yaml'));
  writeFileSync(p('bad-yaml/appliance.yml'), 'name: [unclosed\n');
  mkdirSync(p('wrong-schema'));
  writeFileSync(p('wrong-schema/appliance.yml'), 'name: "::error::x"\nos: 7\n');
  mkdirSync(p('a "näme" $(x)'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const demo = { appliance: 'packer/demo-lab' };

const cases: BadInputCase[] = [
  // build-type
  { name: 'capitalized', input: 'build-type', inputs: () => ({ 'build-type': 'Prewarmed' }) },
  { name: 'with a space', input: 'build-type', inputs: () => ({ 'build-type': 'pre warmed' }) },
  { name: 'with quotes', input: 'build-type', inputs: () => ({ 'build-type': '"standard"' }) },
  { name: 'with $()', input: 'build-type', inputs: () => ({ 'build-type': '$(reboot)' }) },
  { name: 'with a line break and a workflow command', input: 'build-type', inputs: () => ({ 'build-type': 'standard\n::error::pwned' }) },
  { name: 'non-ASCII', input: 'build-type', inputs: () => ({ 'build-type': 'ständard' }) },
  // version
  { name: 'two parts', input: 'version', inputs: () => ({ version: '1.0' }) },
  { name: 'with $()', input: 'version', inputs: () => ({ version: '$(id)' }) },
  { name: 'with a line break and a workflow command', input: 'version', inputs: () => ({ version: '1.0.0\n::warning::x' }) },
  { name: 'a path traversal', input: 'version', inputs: () => ({ version: '1.0.0/../../evil' }) },
  { name: 'non-ASCII', input: 'version', inputs: () => ({ version: '1.0.0-bêta' }) },
  { name: 'with a space', input: 'version', inputs: () => ({ version: '1.0.0 rc' }) },
  // ova
  { name: 'does not exist', input: 'ova', inputs: () => ({ ova: p('missing.ova') }) },
  { name: 'a name with spaces, quotes, $() and non-ASCII that does not exist', input: 'ova', inputs: () => ({ ova: p('my "näme" $(touch x).ova') }) },
  { name: 'a path with a line break and a workflow command', input: 'ova', inputs: () => ({ ova: p('x.ova\n::error::pwned') }) },
  { name: 'a directory', input: 'ova', inputs: () => ({ ova: p('a-dir') }) },
  { name: 'an empty file', input: 'ova', inputs: () => ({ ova: p('empty') }) },
  { name: 'a text file', input: 'ova', inputs: () => ({ ova: p('text.ova') }) },
  { name: '/dev/zero', input: 'ova', inputs: () => ({ ova: '/dev/zero' }) },
  { name: '/dev/urandom', input: 'ova', inputs: () => ({ ova: '/dev/urandom' }) },
  { name: 'a symlink to /dev/zero', input: 'ova', inputs: () => ({ ova: p('zero-link.ova') }) },
  { name: 'a symlink whose target is gone', input: 'ova', inputs: () => ({ ova: p('dangling') }) },
  { name: 'a file removed before the step reads it', input: 'ova', inputs: () => ({ ova: p('gone') }), before: () => rmSync(p('gone'), { force: true }) },
  // marker
  { name: 'does not exist', input: 'marker', inputs: () => ({ marker: p('missing-marker') }) },
  { name: 'an unknown word', input: 'marker', inputs: () => ({ marker: p('marker-bogus') }) },
  { name: 'a terminal escape sequence', input: 'marker', inputs: () => ({ marker: p('marker-esc') }) },
  { name: 'a workflow command', input: 'marker', inputs: () => ({ marker: p('marker-cmd') }) },
  { name: 'empty', input: 'marker', inputs: () => ({ marker: p('empty') }) },
  { name: 'a directory', input: 'marker', inputs: () => ({ marker: p('a-dir') }) },
  { name: '8 MiB of text', input: 'marker', inputs: () => ({ marker: p('marker-big') }) },
  { name: '/dev/zero', input: 'marker', message: /not a regular file/, inputs: () => ({ marker: '/dev/zero' }) },
  { name: '/dev/urandom', input: 'marker', message: /not a regular file/, inputs: () => ({ marker: '/dev/urandom' }) },
  { name: 'a symlink to /dev/urandom', input: 'marker', message: /not a regular file/, inputs: () => ({ marker: p('urandom-link') }) },
  { name: 'a symlink whose target is gone', input: 'marker', inputs: () => ({ marker: p('dangling') }) },
  // appliance
  { name: 'does not exist', input: 'appliance', inputs: () => ({ appliance: p('nowhere') }) },
  { name: 'a directory without appliance.yml', input: 'appliance', inputs: () => ({ appliance: p('no-manifest') }) },
  { name: 'a name with spaces, quotes, $() and non-ASCII without a manifest', input: 'appliance', inputs: () => ({ appliance: p('a "näme" $(x)') }) },
  { name: 'a manifest that is not YAML', input: 'appliance', inputs: () => ({ appliance: p('bad-yaml') }) },
  { name: 'a manifest that breaks the schema and holds a workflow command', input: 'appliance', inputs: () => ({ appliance: p('wrong-schema') }) },
  { name: 'a path with a line break', input: 'appliance', inputs: () => ({ appliance: 'packer/demo-lab\n::error::pwned' }) },
  { name: '/dev/zero as the manifest', input: 'appliance', inputs: () => ({ appliance: '/dev/zero' }) },
  { name: '/dev/urandom as the manifest', input: 'appliance', inputs: () => ({ appliance: '/dev/urandom' }) },
  { name: 'a symlink whose target is gone', input: 'appliance', inputs: () => ({ appliance: p('dangling') }) },
  { name: 'an empty file as the manifest', input: 'appliance', inputs: () => ({ appliance: p('empty') }) },
  // runs-on
  { name: 'a label with a space', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': '["self hosted"]' }) },
  { name: 'broken JSON', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': '["arc-kvm"' }) },
  { name: 'a label twice', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': '["kvm","kvm"]' }) },
  { name: 'a number in the array', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': '[1]' }) },
  { name: 'comma-separated labels', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': 'a,b' }) },
  { name: 'a line break and a workflow command', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': 'arc\n::error::pwned' }) },
  { name: 'quotes', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': `"arc'kvm"` }) },
  { name: '$() with a space', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': '$(touch x)' }) },
  { name: 'an empty array', input: 'runs-on', inputs: () => ({ ...demo, 'runs-on': '[]' }) },
];

badInputTable('detect-build-type', cases);
