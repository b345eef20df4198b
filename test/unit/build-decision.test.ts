import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_VERSION, decisionOutputs, detectBuildType, parseRunnerLabels, readDetectOptions } from '../../actions/lib/build-decision.js';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { writeOvaFixture } from '../support/ova-fixture.js';

let dir: string;
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const dispatch = (inputs: Record<string, string>) => file(`event-${Math.random()}.json`, JSON.stringify({ inputs }));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-decision-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function inputError(p: Promise<unknown>): Promise<InputError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  return e as InputError;
}

describe('each rule decides on its own', () => {
  it('defaults to standard with a development version', async () => {
    const d = await detectBuildType({});
    expect(d).toMatchObject({ buildType: 'standard', source: 'default', version: DEFAULT_VERSION, warm: false });
  });

  it('takes the build-type input', async () => {
    const d = await detectBuildType({ buildType: 'prewarmed', version: '1.2.0' });
    expect(d).toMatchObject({ buildType: 'prewarmed', source: 'input', version: '1.2.0', versionSource: 'input', warm: true });
    expect(d.artifactName).toBe('hedgehog-lab-prewarmed-1.2.0');
    expect(d.storagePrefix).toBe('releases/v1.2.0/prewarmed/');
    expect(d.appliance).toBe('hedgehog-lab');
    expect(d.template).toBe(join('packer', 'hedgehog-lab'));
    expect(d.runnerLabels).toEqual(['self-hosted', 'linux', 'x64', 'kvm']);
    expect(d.timeoutMinutes).toBeGreaterThan(0);
  });

  it('takes a workflow_dispatch payload', async () => {
    const d = await detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ build_type: 'prewarmed', version: '3.1.0' }) });
    expect(d).toMatchObject({ buildType: 'prewarmed', source: 'dispatch', version: '3.1.0', versionSource: 'dispatch' });
  });

  it('takes a standard tag', async () => {
    const d = await detectBuildType({ ref: 'refs/tags/v1.4.0' });
    expect(d).toMatchObject({ buildType: 'standard', source: 'tag', version: '1.4.0', tag: 'v1.4.0' });
  });

  it('takes a pre-warmed tag with a rebuild number', async () => {
    const d = await detectBuildType({ ref: 'refs/tags/v1.4.0-prewarmed.2' });
    expect(d).toMatchObject({ buildType: 'prewarmed', source: 'tag', version: '1.4.0', tag: 'v1.4.0-prewarmed' });
  });

  it('reads an existing OVA', async () => {
    const ova = await writeOvaFixture(join(dir, 'warm.ova'), { properties: { buildType: 'prewarmed', version: '0.9.1' } });
    const d = await detectBuildType({ ova });
    expect(d).toMatchObject({ buildType: 'prewarmed', source: 'ova', version: '0.9.1', versionSource: 'ova' });
  });

  it('reads a guest marker', async () => {
    const d = await detectBuildType({ marker: file('marker', 'prewarmed\n') });
    expect(d).toMatchObject({ buildType: 'prewarmed', source: 'marker' });
  });

  it('ignores branch refs', async () => {
    const d = await detectBuildType({ ref: 'refs/heads/main' });
    expect(d.source).toBe('default');
  });
});

describe('the appliance', () => {
  it('defaults to packer/hedgehog-lab and takes everything else from its manifest', async () => {
    const d = await detectBuildType({ ref: 'refs/tags/v1.4.0' });
    expect(d).toMatchObject({ appliance: 'hedgehog-lab', applianceDir: 'packer/hedgehog-lab', template: join('packer', 'hedgehog-lab'), requiresKvm: true, artifactName: 'hedgehog-lab-standard-1.4.0' });
    expect(readDetectOptions(inputsFrom({}), {}).appliance).toBe('packer/hedgehog-lab');
  });

  it('names the demo appliance in the artifact name, with its runner labels and KVM preference', async () => {
    const d = await detectBuildType({ appliance: 'packer/demo-lab', buildType: 'prewarmed', version: '1.0.0' });
    expect(d).toMatchObject({ appliance: 'demo-lab', artifactName: 'demo-lab-prewarmed-1.0.0', template: join('packer', 'demo-lab'), requiresKvm: false, tag: 'v1.0.0-prewarmed', storagePrefix: 'releases/v1.0.0/prewarmed/' });
    expect(d.runnerLabels).toEqual(['self-hosted', 'linux', 'x64', 'kvm']);
  });

  it('gives the template relative when the appliance was given relative, absolute when absolute', async () => {
    expect((await detectBuildType({ appliance: './packer/demo-lab/appliance.yml' })).template).toBe(join('packer', 'demo-lab'));
    expect((await detectBuildType({ appliance: resolve('packer/demo-lab') })).template).toBe(resolve('packer/demo-lab'));
  });

  it("budgets the manifest's build timeout, the warm's timeouts when pre-warmed, and packing and upload", async () => {
    // demo-lab: build 30; warm 5 + 30 + 10 + 2 (120 s); packing and upload at least 10 (4 GiB expected).
    expect((await detectBuildType({ appliance: 'packer/demo-lab', buildType: 'standard' })).timeoutMinutes).toBe(40);
    expect((await detectBuildType({ appliance: 'packer/demo-lab', buildType: 'prewarmed' })).timeoutMinutes).toBe(87);
    // hedgehog-lab: build 180; warm 15 + 60 + 30 + 5 (300 s); packing and upload 40 (40 GiB expected).
    expect((await detectBuildType({ buildType: 'standard' })).timeoutMinutes).toBe(220);
    expect((await detectBuildType({ buildType: 'prewarmed' })).timeoutMinutes).toBe(330);
  });

  it('an invalid manifest is an input error before anything else is read', async () => {
    const bad = join(dir, 'bad-appliance');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'appliance.yml'), readFileSync('packer/demo-lab/appliance.yml', 'utf8').replace('name: demo-lab', 'name: Demo Lab'));
    const e = await inputError(detectBuildType({ appliance: bad, eventName: 'workflow_dispatch', eventPath: file('bad-event.json', '{not json') }));
    expect(e.input).toBe('appliance');
    expect(e.message).toMatch(/^appliance: .*appliance\.yml: name does not match/);
    const missing = await inputError(detectBuildType({ appliance: join(dir, 'no-such-appliance') }));
    expect(missing.message).toMatch(/^appliance: .*appliance\.yml does not exist \(give an appliance directory/);
  });
});

describe('precedence', () => {
  it('input beats dispatch, tag, OVA and marker', async () => {
    const ova = await writeOvaFixture(join(dir, 'p1.ova'), { properties: { buildType: 'prewarmed' } });
    const d = await detectBuildType({
      buildType: 'standard',
      eventName: 'workflow_dispatch',
      eventPath: dispatch({ build_type: 'prewarmed' }),
      ref: 'refs/tags/v1.0.0-prewarmed',
      ova,
      marker: file('m1', 'prewarmed\n'),
    });
    expect(d.source).toBe('input');
    expect(d.buildType).toBe('standard');
    expect(d.version).toBe('1.0.0'); // the tag still names the version
  });

  it('dispatch beats tag', async () => {
    const d = await detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ build_type: 'standard' }), ref: 'refs/tags/v1.0.0-prewarmed' });
    expect(d).toMatchObject({ source: 'dispatch', buildType: 'standard', version: '1.0.0', versionSource: 'tag' });
  });

  it('a dispatch with build_type auto defers to the next rule', async () => {
    const d = await detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ build_type: 'auto' }), marker: file('m2', 'prewarmed') });
    expect(d.source).toBe('marker');
  });

  it('tag beats OVA, OVA beats marker', async () => {
    const ova = await writeOvaFixture(join(dir, 'p2.ova'), { properties: { buildType: 'standard' } });
    expect((await detectBuildType({ ref: 'refs/tags/v2.0.0-prewarmed', ova })).source).toBe('tag');
    expect(await detectBuildType({ ova, marker: file('m3', 'prewarmed\n') })).toMatchObject({ source: 'ova', buildType: 'standard' });
  });

  it('the version input overrides event and tag versions', async () => {
    const d = await detectBuildType({ version: '9.9.9', eventName: 'workflow_dispatch', eventPath: dispatch({ version: '1.0.0' }), ref: 'refs/tags/v2.0.0' });
    expect(d).toMatchObject({ version: '9.9.9', versionSource: 'input', source: 'tag', buildType: 'standard' });
  });

  it('an unmatched tag is fine when a later rule decides', async () => {
    const d = await detectBuildType({ ref: 'refs/tags/nightly', marker: file('m4', 'standard\n') });
    expect(d.source).toBe('marker');
  });
});

describe('overwrite: only the push of a rebuild tag may replace the published build it names', () => {
  const push = (tag: string, more: Parameters<typeof detectBuildType>[0] = {}) => detectBuildType({ eventName: 'push', ref: `refs/tags/${tag}`, ...more });

  it('a push of v1.2.0-prewarmed.2 with build-type auto overwrites', async () => {
    const d = await push('v1.2.0-prewarmed.2', { buildType: 'auto' });
    expect(d).toMatchObject({ buildType: 'prewarmed', version: '1.2.0', overwrite: true });
    expect(decisionOutputs(d).overwrite).toBe('true');
  });

  it('a workflow_dispatch run from that tag does not', async () => {
    const d = await detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ build_type: 'prewarmed', version: '1.2.0' }), ref: 'refs/tags/v1.2.0-prewarmed.2' });
    expect(d).toMatchObject({ buildType: 'prewarmed', version: '1.2.0', overwrite: false });
    const other = await detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ build_type: 'prewarmed', version: '1.1.0' }), ref: 'refs/tags/v1.2.0-prewarmed.2' });
    // The dispatch's version wins over the tag's: a build of 1.1.0 from the tag v1.2.0-prewarmed.2 must never
    // replace the published pre-warmed 1.1.0 (the old `contains(github.ref_name, '-prewarmed.')` would have).
    expect(other).toMatchObject({ version: '1.1.0', versionSource: 'dispatch', overwrite: false });
  });

  it('a push of that tag whose version input says 1.3.0 builds 1.3.0 (the input wins, as always) and does not overwrite', async () => {
    const d = await push('v1.2.0-prewarmed.2', { version: '1.3.0' });
    expect(d).toMatchObject({ buildType: 'prewarmed', version: '1.3.0', versionSource: 'input', overwrite: false });
  });

  it('a push of that tag whose build-type input says standard does not overwrite', async () => {
    expect(await push('v1.2.0-prewarmed.2', { buildType: 'standard' })).toMatchObject({ buildType: 'standard', overwrite: false });
  });

  it('a push of v1.2.0 or v1.2.0-prewarmed does not', async () => {
    expect(await push('v1.2.0')).toMatchObject({ buildType: 'standard', overwrite: false });
    expect(await push('v1.2.0-prewarmed')).toMatchObject({ buildType: 'prewarmed', overwrite: false });
  });

  it('a branch push, or no event at all, does not', async () => {
    expect(await detectBuildType({ eventName: 'push', ref: 'refs/heads/main' })).toMatchObject({ overwrite: false });
    expect(await detectBuildType({ ref: 'refs/tags/v1.2.0-prewarmed.2' })).toMatchObject({ buildType: 'prewarmed', overwrite: false });
  });
});

describe('a pushed tag must name a release', () => {
  it.each(['v1', 'v1.4', 'nightly', 'v1.2.3-prewarmed.x', 'v1.2.3-'])('a push of %s is refused, whatever else decides', async (tag) => {
    const e = await inputError(detectBuildType({ eventName: 'push', ref: `refs/tags/${tag}`, buildType: 'standard', version: '1.0.0' }));
    expect(e.input).toBe('ref');
    expect(e.message).toBe(`ref: tag '${tag}' is neither vX.Y.Z nor vX.Y.Z-prewarmed[.N], and a pushed tag must name a release (push a release tag such as v1.4.0 or v1.4.0-prewarmed; a moving tag such as v1 is never built)`);
  });

  it.each([
    ['v1.2.3', 'standard', '1.2.3'],
    ['v1.2.3-rc.1', 'standard', '1.2.3-rc.1'],
    ['v1.2.3-prewarmed', 'prewarmed', '1.2.3'],
    ['v1.2.3-prewarmed.4', 'prewarmed', '1.2.3'],
    ['v1.2.3-rc.1-prewarmed', 'prewarmed', '1.2.3-rc.1'],
  ])('a push of %s builds %s %s', async (tag, buildType, version) => {
    expect(await detectBuildType({ eventName: 'push', ref: `refs/tags/${tag}` })).toMatchObject({ buildType, version, source: 'tag' });
  });

  it('a workflow_dispatch run from a moving tag is not a push of it: the inputs decide', async () => {
    const d = await detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ build_type: 'standard', version: '1.0.0' }), ref: 'refs/tags/v1' });
    expect(d).toMatchObject({ buildType: 'standard', version: '1.0.0' });
  });
});

describe('runs-on: runner labels instead of the manifest\'s', () => {
  it('takes a JSON array or one label, and says where the labels came from', async () => {
    const arc = await detectBuildType({ ...readDetectOptions(inputsFrom({ 'runs-on': '["arc-kvm"]' }), {}) });
    expect(arc).toMatchObject({ runnerLabels: ['arc-kvm'], runnerLabelsSource: 'input' });
    expect(decisionOutputs(arc)['runner-labels']).toBe('["arc-kvm"]');
    const one = await detectBuildType(readDetectOptions(inputsFrom({ 'runs-on': ' prewarm-host ' }), {}));
    expect(one.runnerLabels).toEqual(['prewarm-host']);
    const many = readDetectOptions(inputsFrom({ 'runs-on': '["self-hosted", "linux", "x64", "kvm", "prewarm"]' }), {});
    expect(many.runnerLabels).toEqual(['self-hosted', 'linux', 'x64', 'kvm', 'prewarm']);
    const none = await detectBuildType(readDetectOptions(inputsFrom({ 'runs-on': '' }), {}));
    expect(none).toMatchObject({ runnerLabels: ['self-hosted', 'linux', 'x64', 'kvm'], runnerLabelsSource: 'manifest' });
  });

  it.each([
    ['[]', "runs-on: '[]' names no runner label"],
    ['["kvm", ""]', "runs-on: '' is not a runner label"],
    ['["kvm", 3]', 'runs-on: 3 is not a runner label'],
    ['[self-hosted, kvm]', "runs-on: '[self-hosted, kvm]' is not a JSON array"],
    ['self-hosted, kvm', "runs-on: 'self-hosted, kvm' is not a runner label"],
    ['self hosted', "runs-on: 'self hosted' is not a runner label"],
    ['{"group":"kvm"}', 'runs-on: is a JSON object (a runner group), which labforge does not take'],
    ['["kvm","kvm"]', "runs-on: names the label 'kvm' twice"],
  ])('refuses %s, naming the input', (raw, message) => {
    expect(() => parseRunnerLabels(raw)).toThrow(InputError);
    expect(() => readDetectOptions(inputsFrom({ 'runs-on': raw }), {})).toThrow(message);
  });
});

describe('bad input names the input and the fix', () => {
  it('an unknown build type', () => {
    expect(() => readDetectOptions(inputsFrom({ 'build-type': 'warm' }), {})).toThrow(/build-type: 'warm' is not one of standard, prewarmed, auto/);
  });

  it('a version that is not semver', () => {
    expect(() => readDetectOptions(inputsFrom({ version: '1.2' }), {})).toThrow(/version: '1.2' is not a semantic version/);
  });

  it('a dispatch version that is not semver', async () => {
    const e = await inputError(detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ version: 'latest' }) }));
    expect(e.input).toBe('inputs.version');
  });

  it('an unknown dispatch build type', async () => {
    const e = await inputError(detectBuildType({ eventName: 'workflow_dispatch', eventPath: dispatch({ build_type: 'fast' }) }));
    expect(e.message).toMatch(/inputs.build_type: the workflow_dispatch input build_type is 'fast'/);
  });

  it('a tag that matches neither pattern when nothing else decides', async () => {
    const e = await inputError(detectBuildType({ ref: 'refs/tags/nightly' }));
    expect(e.input).toBe('ref');
    expect(e.fix).toMatch(/v1.4.0-prewarmed/);
  });

  it('a dispatch payload that is not JSON', async () => {
    const e = await inputError(detectBuildType({ eventName: 'workflow_dispatch', eventPath: file('bad.json', '{not json') }));
    expect(e.message).toMatch(/event-path: .* is not JSON/);
  });

  it('a missing OVA', async () => {
    const e = await inputError(detectBuildType({ ova: join(dir, 'nope.ova') }));
    expect(e.message).toMatch(/ova: .*nope.ova does not exist/);
  });

  it('an OVA that is not a tar', async () => {
    const e = await inputError(detectBuildType({ ova: file('text.ova', 'hello, I am not a tar archive\n'.repeat(40)) }));
    expect(e.message).toMatch(/ova: .*(not a tar|no OVF)/);
  });

  it('an OVA with no OVF', async () => {
    const ova = await writeOvaFixture(join(dir, 'noovf.ova'), { noOvf: true });
    const e = await inputError(detectBuildType({ ova }));
    expect(e.message).toMatch(/ova: .*first entry is 'disk1.vmdk'/);
  });

  it('an OVA whose disk comes before the descriptor', async () => {
    const ova = await writeOvaFixture(join(dir, 'diskfirst.ova'), { diskFirst: true });
    await expect(detectBuildType({ ova })).rejects.toThrow(/OVF descriptor \(\*\.ovf\) must come first/);
  });

  it('an OVA without the buildType property', async () => {
    const ova = await writeOvaFixture(join(dir, 'noprop.ova'), { properties: { version: '1.0.0' } });
    const e = await inputError(detectBuildType({ ova }));
    expect(e.message).toMatch(/no ProductSection property 'buildType'/);
  });

  it('an OVA with an unknown build type', async () => {
    const ova = await writeOvaFixture(join(dir, 'weird.ova'), { properties: { buildType: 'lukewarm' } });
    await expect(detectBuildType({ ova })).rejects.toThrow(/buildType='lukewarm'/);
  });

  it('an OVA descriptor that is not XML', async () => {
    const ova = await writeOvaFixture(join(dir, 'badxml.ova'), { ovfText: '<Envelope><VirtualSystem>' });
    await expect(detectBuildType({ ova })).rejects.toThrow(/ova: .*not well-formed XML/);
  });

  it('a marker with an unknown word', async () => {
    const e = await inputError(detectBuildType({ marker: file('m5', 'hot\n') }));
    expect(e.message).toMatch(/marker: .* says 'hot', which is not a build type/);
  });

  it('a missing marker', async () => {
    const e = await inputError(detectBuildType({ marker: join(dir, 'missing-marker') }));
    expect(e.message).toMatch(/^marker: .*missing-marker does not exist \(give the path of a build-type marker file/);
  });
});
