import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBundledAction, unexpectedCommandLines } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';
import { writeOvaFixture } from '../support/ova-fixture.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-detect-action-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the bundled detect-build-type action, run as the runner runs it', () => {
  it('decides a workflow_dispatch build and writes every output and a summary', async () => {
    const run = await runBundledAction('detect-build-type', {
      event: { name: 'workflow_dispatch', payload: { inputs: { build_type: 'prewarmed', version: '2.1.0', reason: 'workshop' } } },
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({
      'build-type': 'prewarmed',
      version: '2.1.0',
      source: 'dispatch',
      warm: 'true',
      'requires-kvm': 'true',
      appliance: 'hedgehog-lab',
      'artifact-name': 'hedgehog-lab-prewarmed-2.1.0',
      'storage-prefix': 'releases/v2.1.0/prewarmed/',
      template: 'packer/hedgehog-lab',
    });
    expect(JSON.parse(run.outputs['runner-labels'] ?? '')).toEqual(['self-hosted', 'linux', 'x64', 'kvm']);
    expect(Number(run.outputs['timeout-minutes'])).toBe(330);
    expect(run.summary).toContain('Build decision: hedgehog-lab prewarmed 2.1.0');
    expect(run.summary).toContain('workflow was dispatched with build_type=prewarmed');
  });

  it('writes the summary as text: markup in an input is shown, never rendered', async () => {
    const run = await runBundledAction('detect-build-type', {
      inputs: { 'runs-on': '["self-hosted","kvm<img/src=x/onerror=alert(1)>"]' },
      event: { name: 'workflow_dispatch', payload: { inputs: { build_type: 'standard', version: '2.1.0' } } },
    });
    expect(run.errors).toEqual([]);
    expect(run.summary).toContain('kvm&lt;img/src=x/onerror=alert(1)&gt;');
    expect(run.summary).not.toContain('<img');
  });

  it('reads another appliance from its directory', async () => {
    const run = await runBundledAction('detect-build-type', { inputs: { appliance: 'packer/demo-lab', version: '1.0.0' }, env: { GITHUB_EVENT_NAME: 'push' } });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ appliance: 'demo-lab', template: 'packer/demo-lab', 'artifact-name': 'demo-lab-standard-1.0.0', 'requires-kvm': 'false', 'timeout-minutes': '40', 'storage-prefix': 'releases/v1.0.0/standard/' });
    expect(JSON.parse(run.outputs['runner-labels'] ?? '')).toEqual(['self-hosted', 'linux', 'x64', 'kvm']);
  });

  it('fails with one ::error line on an appliance without a manifest, before anything else', async () => {
    const run = await runBundledAction('detect-build-type', { inputs: { appliance: 'packer/guest' }, env: { GITHUB_REF: 'refs/tags/nightly-7' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([
      '::error title=detect-build-type::appliance: packer/guest/appliance.yml does not exist (give an appliance directory holding appliance.yml, e.g. packer/demo-lab)',
    ]);
  });

  it('decides a tag push', async () => {
    const run = await runBundledAction('detect-build-type', { env: { GITHUB_REF: 'refs/tags/v1.4.0-prewarmed', GITHUB_EVENT_NAME: 'push' } });
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ 'build-type': 'prewarmed', version: '1.4.0', source: 'tag', tag: 'v1.4.0-prewarmed' });
  });

  it('says overwrite=true only for the push of a rebuild tag, never for a dispatch from it', async () => {
    const push = await runBundledAction('detect-build-type', { env: { GITHUB_REF: 'refs/tags/v1.2.0-prewarmed.2', GITHUB_EVENT_NAME: 'push' } });
    expect(push.errors).toEqual([]);
    expect(push.outputs).toMatchObject({ 'build-type': 'prewarmed', version: '1.2.0', overwrite: 'true' });
    expect(push.summary).toContain('`overwrite`');
    const dispatch = await runBundledAction('detect-build-type', {
      event: { name: 'workflow_dispatch', payload: { inputs: { build_type: 'prewarmed', version: '1.1.0' } } },
      env: { GITHUB_REF: 'refs/tags/v1.2.0-prewarmed.2' },
    });
    expect(dispatch.outputs).toMatchObject({ 'build-type': 'prewarmed', version: '1.1.0', overwrite: 'false' });
    const release = await runBundledAction('detect-build-type', { env: { GITHUB_REF: 'refs/tags/v1.2.0', GITHUB_EVENT_NAME: 'push' } });
    expect(release.outputs['overwrite']).toBe('false');
  });

  it('refuses the push of a moving tag such as v1 with one ::error line', async () => {
    const run = await runBundledAction('detect-build-type', { inputs: { 'build-type': 'standard' }, env: { GITHUB_REF: 'refs/tags/v1', GITHUB_EVENT_NAME: 'push' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([
      "::error title=detect-build-type::ref: tag 'v1' is neither vX.Y.Z nor vX.Y.Z-prewarmed[.N], and a pushed tag must name a release (push a release tag such as v1.4.0 or v1.4.0-prewarmed; a moving tag such as v1 is never built)",
    ]);
  });

  it('takes runner labels from the runs-on input, and refuses bad ones naming the input', async () => {
    const arc = await runBundledAction('detect-build-type', { inputs: { 'runs-on': 'arc-kvm' }, env: { GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/heads/main' } });
    expect(arc.errors).toEqual([]);
    expect(JSON.parse(arc.outputs['runner-labels'] ?? '')).toEqual(['arc-kvm']);
    expect(arc.stdout).toContain('runner labels (from the runs-on input): ["arc-kvm"]');
    const list = await runBundledAction('detect-build-type', { inputs: { 'runs-on': '["self-hosted","linux","x64","kvm","prewarm"]' } });
    expect(JSON.parse(list.outputs['runner-labels'] ?? '')).toEqual(['self-hosted', 'linux', 'x64', 'kvm', 'prewarm']);
    const bad = await runBundledAction('detect-build-type', { inputs: { 'runs-on': '[self-hosted, kvm]' } });
    expect(bad.code).toBe(1);
    expect(bad.errors).toHaveLength(1);
    expect(bad.errors[0]).toMatch(/^::error title=detect-build-type::runs-on: '\[self-hosted, kvm\]' is not a JSON array \(give a JSON array of runner labels/);
  });

  it('decides from an existing OVA', async () => {
    const ova = await writeOvaFixture(join(dir, 'standard.ova'), { properties: { buildType: 'standard', version: '1.0.3' } });
    const run = await runBundledAction('detect-build-type', { inputs: { ova } });
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ 'build-type': 'standard', version: '1.0.3', source: 'ova' });
  });

  it('reads only the descriptor: a truncated OVA whose disk is cut off still decides', async () => {
    const ova = await writeOvaFixture(join(dir, 'cut.ova'), { properties: { buildType: 'prewarmed', version: '1.0.0' } });
    truncateSync(ova, 4096); // descriptor header + body survive, the disk entry does not
    const run = await runBundledAction('detect-build-type', { inputs: { ova } });
    expect(run.outputs['build-type']).toBe('prewarmed');
  });

  it('fails with one ::error line naming the input, and no stack trace', async () => {
    const run = await runBundledAction('detect-build-type', { inputs: { 'build-type': 'lukewarm' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual(["::error title=detect-build-type::build-type: 'lukewarm' is not one of standard, prewarmed, auto (use one of: standard, prewarmed, auto)"]);
    expect(run.stdout + run.stderr).not.toMatch(/\n\s+at /);
  });

  it('fails clearly on a dispatch payload that is not JSON', async () => {
    const run = await runBundledAction('detect-build-type', { event: { name: 'workflow_dispatch', raw: '{"inputs": ' } });
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toMatch(/event-path: .* is not JSON/);
  });

  it('fails clearly on a tag that matches neither pattern', async () => {
    const run = await runBundledAction('detect-build-type', { env: { GITHUB_REF: 'refs/tags/nightly-7' } });
    expect(run.code).toBe(1);
    expect(run.errors[0]).toMatch(/ref: tag 'nightly-7' is neither vX.Y.Z nor vX.Y.Z-prewarmed/);
  });
});

describe('labforge detect-build-type', () => {
  it('gives the same decision as the action, as JSON', async () => {
    const event = join(dir, 'event.json');
    writeFileSync(event, JSON.stringify({ inputs: { build_type: 'prewarmed', version: '2.1.0' } }));
    const cli = await runCli(['detect-build-type', '--event-name', 'workflow_dispatch', '--event-path', event]);
    expect(cli.code).toBe(0);
    const action = await runBundledAction('detect-build-type', { event: { name: 'workflow_dispatch', payload: { inputs: { build_type: 'prewarmed', version: '2.1.0' } } } });
    expect(JSON.parse(cli.stdout)).toEqual(action.outputs);
    const demo = await runCli(['detect-build-type', '--appliance', 'packer/demo-lab', '--ref', 'refs/tags/v1.0.0-prewarmed']);
    expect(JSON.parse(demo.stdout)).toMatchObject({ appliance: 'demo-lab', 'artifact-name': 'demo-lab-prewarmed-1.0.0', 'timeout-minutes': '87' });
  });

  it('decides a tag and an OVA', async () => {
    const tag = await runCli(['detect-build-type', '--ref', 'refs/tags/v3.0.0']);
    expect(JSON.parse(tag.stdout)).toMatchObject({ 'build-type': 'standard', version: '3.0.0', source: 'tag' });
    const ova = await writeOvaFixture(join(dir, 'cli.ova'), { properties: { buildType: 'prewarmed', version: '3.0.1' } });
    const fromOva = await runCli(['detect-build-type', '--ova', ova]);
    expect(JSON.parse(fromOva.stdout)).toMatchObject({ 'build-type': 'prewarmed', version: '3.0.1', source: 'ova' });
  });

  it('exits 2 with a message on bad input', async () => {
    const bad = await runCli(['detect-build-type', '--version', 'one']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/version: 'one' is not a semantic version/);
    const unknown = await runCli(['detect-build-type', '--colour', 'red']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('labforge detect-build-type: unknown option --colour (see labforge detect-build-type --help)\n');
    const cmd = await runCli(['launch']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/unknown command 'launch'/);
  });

  it('takes runner labels from --runs-on like the action, and exits 2 naming runs-on for bad ones', async () => {
    const labels = await runCli(['detect-build-type', '--ref', 'refs/heads/main', '--runs-on', '["self-hosted","big"]']);
    expect(labels.code).toBe(0);
    expect(JSON.parse(JSON.parse(labels.stdout)['runner-labels'])).toEqual(['self-hosted', 'big']);
    const bad = await runCli(['detect-build-type', '--ref', 'refs/heads/main', '--runs-on', '[self-hosted, big]']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^labforge detect-build-type: runs-on: '\[self-hosted, big\]' is not a JSON array \(give a JSON array of runner labels/m);
  });

  it('has --help for the program and the command', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('detect-build-type');
    const sub = await runCli(['detect-build-type', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--marker VALUE');
    expect(sub.stdout).toContain('--appliance VALUE');
    expect(sub.stdout).toContain('--runs-on VALUE');
  });
});

describe('every action, run with no inputs at all', () => {
  it.each(['packer-build', 'vlab-warm', 'upload-artifact', 'ssh-diagnose'])('%s fails with one ::error naming an input, never a silent success', async (name) => {
    const run = await runBundledAction(name, { timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    expect(run.errors.length).toBeGreaterThanOrEqual(1);
    expect(run.errors[0]).toMatch(new RegExp(`^::error title=${name}::[a-z-]+: `));
    expect(run.stdout + run.stderr).not.toMatch(/not implemented/);
  });
});

describe('workflow-command injection through detect-build-type inputs and files', () => {
  it('logs the decision from an OVA whose path holds a line break and ::error:: as one harmless line', async () => {
    const ova = await writeOvaFixture(join(dir, 'x\n::error::pwned.ova'), { properties: { buildType: 'prewarmed', version: '1.2.3' } });
    const run = await runBundledAction('detect-build-type', { inputs: { ova } });
    expect(run.code).toBe(0);
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ 'build-type': 'prewarmed', version: '1.2.3', source: 'ova' });
    expect(run.stdout).toContain('x\\u000a::error::pwned.ova was built as prewarmed');
    expect(unexpectedCommandLines(run, 'detect-build-type')).toEqual([]);
  });

  it('keeps a line break of a missing OVA path inside its one annotation (%0A)', async () => {
    const run = await runBundledAction('detect-build-type', { inputs: { ova: `${dir}/missing\n::error::pwned.ova` } });
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toBe(`::error title=detect-build-type::ova: ${dir}/missing%0A::error::pwned.ova does not exist (give the path of an OVA built by labforge (labforge pack-ova))`);
    expect(unexpectedCommandLines(run, 'detect-build-type')).toEqual([]);
  });

  it('refuses a version holding a line break, naming the input', async () => {
    const run = await runBundledAction('detect-build-type', { inputs: { version: '1.0.0\n::error::pwned' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([
      "::error title=detect-build-type::version: '1.0.0\\u000a::error::pwned' is not a semantic version (use MAJOR.MINOR.PATCH such as 1.4.0 or 1.4.0-rc.1)",
    ]);
    expect(unexpectedCommandLines(run, 'detect-build-type')).toEqual([]);
  });

  it('quotes a marker file holding a command and an escape sequence inside the annotation', async () => {
    const marker = join(dir, 'hostile-marker');
    writeFileSync(marker, '::error::from-the-marker \x1b]0;owned\x07\n');
    const run = await runBundledAction('detect-build-type', { inputs: { marker } });
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toContain("says '::error::from-the-marker \\u001b]0;owned\\u0007', which is not a build type");
    expect(unexpectedCommandLines(run, 'detect-build-type')).toEqual([]);
    // eslint-disable-next-line no-control-regex
    expect(run.stdout).not.toMatch(/[\x07\x1b]/);
  });
});
