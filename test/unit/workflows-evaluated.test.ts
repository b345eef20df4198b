/**
 * The workflows users click, evaluated: the Release and Build on demand templates' `with:` and build.yml's
 * expressions are evaluated with GitHub's own expression evaluator (@actions/expressions) for each storage
 * setup the docs offer, and the resulting step inputs are run through the real option parsers of the
 * actions and commands they reach (upload-artifact, labforge release, detect-build-type). A setting that
 * an action refuses fails here, not in a KVM job after an hour of building.
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Evaluator, Lexer, Parser, data } from '@actions/expressions';
import { parseRunnerLabels } from '../../actions/lib/build-decision.js';
import { readBuildReleaseOptions } from '../../actions/lib/build-release.js';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { readUploadOptions } from '../../actions/lib/upload-options.js';
import { readUploadAppliance } from '../../actions/lib/release-upload.js';
import { readUploadInputs } from '../../actions/lib/upload-pack-options.js';
import { repoRoot } from '../support/run-action.js';
import { readYamlFile, type Job, type Step } from '../support/workflow-files.js';

type Context = Record<string, unknown>;

/** Every context a workflow may read; what a test does not set is empty (reads as null, i.e. ''). */
const EMPTY_CONTEXTS: Context = { github: {}, inputs: {}, vars: {}, secrets: {}, needs: {}, steps: {}, env: {}, runner: {}, job: {}, jobs: {}, matrix: {}, strategy: {} };

/** Evaluates one expression (the text inside `${{ }}`) with GitHub's evaluator. */
function evaluate(expression: string, given: Context): data.ExpressionData {
  const context = { ...EMPTY_CONTEXTS, ...given };
  const { tokens } = new Lexer(expression).lex();
  const ast = new Parser(tokens, Object.keys(context), []).parse();
  return new Evaluator(ast, JSON.parse(JSON.stringify(context), data.reviver) as data.Dictionary).evaluate();
}

/** A `with:`/`env:` value as the runner hands it to a step: every `${{ }}` replaced by its string value. */
function asStepInput(value: unknown, context: Context): string {
  if (typeof value !== 'string') return String(value);
  return value.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, e: string) => evaluate(e, context).coerceString());
}

const buildWorkflow = readYamlFile(join(repoRoot, 'workflows-templates', 'build.yml'));
const declaredInputs = ((buildWorkflow.data['on'] as Context)['workflow_call'] as { inputs: Record<string, { type: string; default?: unknown }> }).inputs;
const buildJobs = buildWorkflow.data['jobs'] as Record<string, Job>;
const step = (job: string, id: string): Step => {
  const found = (buildJobs[job]?.steps ?? []).find((s) => s.id === id);
  if (!found) throw new Error(`workflows-templates/build.yml: jobs.${job} has no step ${id}`);
  return found;
};

/**
 * The `inputs` build.yml receives when a caller template calls it with these repository variables: each
 * `with:` value evaluated, typed as build.yml declares it, the declared defaults for the rest.
 */
function callInputs(caller: 'release.yml' | 'build-on-demand.yml', vars: Record<string, string>, dispatchInputs: Context = {}): Context {
  const file = readYamlFile(join(repoRoot, 'workflows-templates', caller));
  const job = Object.values(file.data['jobs'] as Record<string, Job>).find((j) => typeof j.uses === 'string');
  if (!job?.with) throw new Error(`${caller} calls no reusable workflow`);
  const context: Context = { vars, inputs: dispatchInputs, github: { sha: 'f'.repeat(40), repository: 'OWNER/labs' } };
  const inputs: Context = {};
  for (const [name, spec] of Object.entries(declaredInputs)) {
    const given = job.with[name];
    if (given === undefined) {
      inputs[name] = spec.default ?? (spec.type === 'boolean' ? false : spec.type === 'number' ? 0 : '');
      continue;
    }
    const text = asStepInput(given, context);
    inputs[name] = spec.type === 'boolean' ? text === 'true' : spec.type === 'number' ? Number(text) : text;
  }
  return inputs;
}

/** The storage setups the docs (RELEASE_PROCESS.md, "One-time setup") offer. */
const SETUPS = [
  { setup: 'a private gs:// bucket with signed links', vars: { LABFORGE_DESTINATION: 'gs://labs-bucket/hedgehog' }, makePublic: false, hours: 168 },
  { setup: 'a public gs:// bucket', vars: { LABFORGE_DESTINATION: 'gs://labs-bucket/hedgehog', LABFORGE_MAKE_PUBLIC: 'true' }, makePublic: true, hours: 0 },
  { setup: 'a file:// directory', vars: { LABFORGE_DESTINATION: 'file:///srv/labs' }, makePublic: false, hours: 0 },
] as const;

/** The context of build.yml's build job after detect and the OVA step (a pushed rebuild tag unless told otherwise). */
function buildJobContext(inputs: Context, detect: Record<string, string> = {}, github: Context = {}): Context {
  return {
    inputs,
    github: { event_name: 'push', ref_type: 'tag', ref_name: 'v1.4.0', ...github },
    needs: {
      detect: {
        outputs: { appliance: 'hedgehog-lab', 'build-type': 'standard', version: '1.4.0', overwrite: 'false', 'first-boot': '15-20 min (estimated)', login: 'user lab', ...detect },
      },
    },
    steps: { ova: { outputs: { path: '/tmp/work/out/hedgehog-lab-standard-1.4.0.ova' } } },
  };
}

/** upload-artifact's inputs in build.yml's upload step, evaluated. */
function uploadInputs(context: Context, override: Record<string, string> = {}): Record<string, string> {
  const withs = { ...(step('build', 'upload').with ?? {}), ...override };
  return Object.fromEntries(Object.entries(withs).map(([k, v]) => [k, asStepInput(v, context)]));
}

describe('upload settings that upload-artifact accepts, for every storage setup the docs offer', () => {
  it.each(SETUPS)('Release with $setup', ({ vars, makePublic, hours }) => {
    const inputs = callInputs('release.yml', vars);
    expect(inputs['signed_url_hours']).toBe(168); // the template asks for signed links…
    const withs = uploadInputs(buildJobContext(inputs));
    expect(withs['signed-url-hours']).toBe(String(hours)); // …and build.yml passes them on only where they apply
    const options = readUploadOptions(inputsFrom(withs));
    expect(options).toMatchObject({ makePublic, signedUrlHours: hours, overwrite: false, portal: true, version: '1.4.0', buildType: 'standard' });
    expect(options.destination.uri).toBe(vars.LABFORGE_DESTINATION);
  });

  it.each(SETUPS)('Build on demand with $setup', ({ vars, hours }) => {
    const inputs = callInputs('build-on-demand.yml', vars, { build_type: 'prewarmed', version: '1.4.0', upload: true, appliance: '', reason: 'workshop' });
    expect(inputs['upload']).toBe(true);
    const withs = uploadInputs(buildJobContext(inputs, {}, { event_name: 'workflow_dispatch', ref_type: 'branch', ref_name: 'main' }));
    expect(readUploadOptions(inputsFrom(withs)).signedUrlHours).toBe(hours);
  });

  it('the hours passed on before this change were refused for public buckets and file:// directories', () => {
    for (const { vars, hours } of SETUPS) {
      const withs = uploadInputs(buildJobContext(callInputs('release.yml', vars)), { 'signed-url-hours': '${{ inputs.signed_url_hours }}' });
      if (hours === 0) expect(() => readUploadOptions(inputsFrom(withs))).toThrow(InputError);
      else expect(() => readUploadOptions(inputsFrom(withs))).not.toThrow();
    }
  });

  it.each(SETUPS)('the release notes say a signed link\'s validity exactly when there is one ($setup)', ({ vars, hours }) => {
    const inputs = callInputs('release.yml', vars);
    const env = step('release', 'publish').env as Record<string, unknown>;
    const HOURS = asStepInput(env['HOURS'], buildJobContext(inputs));
    expect(HOURS).toBe(String(hours));
    // The step passes --url-expires-hours only when HOURS is not 0; labforge release must accept it then.
    if (HOURS !== '0') {
      const options = readBuildReleaseOptions(inputsFrom({ 'url-expires-hours': HOURS, 'sha256-file': 'x.ova.sha256', 'dry-run': true, repository: 'acme/labs' }), {});
      expect(options.urlExpiresHours).toBe(hours);
    }
  });

  /** Runs the detect job's "Check the request" script as the runner would, with its env evaluated. */
  const checkRequest = (inputs: Context) => {
    const check = (buildJobs['detect']?.steps ?? []).find((s) => s.name === 'Check the request before a KVM runner is taken');
    if (!check || typeof check.run !== 'string') throw new Error('build.yml: the detect job has no "Check the request" step');
    const context = buildJobContext(inputs);
    const env = Object.fromEntries(Object.entries((check.env ?? {}) as Record<string, unknown>).map(([k, v]) => [k, asStepInput(v, context)]));
    return spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', check.run], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' });
  };

  it.each(SETUPS)('the request check before the KVM runner lets $setup through', ({ vars }) => {
    const r = checkRequest(callInputs('release.yml', vars));
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });

  it('the request check refuses make_public for a file:// destination before a KVM runner is taken', () => {
    const r = checkRequest(callInputs('release.yml', { LABFORGE_DESTINATION: 'file:///srv/labs', LABFORGE_MAKE_PUBLIC: 'true' }));
    expect(r.status).toBe(1);
    expect(r.stdout.trim()).toBe(
      '::error title=labforge build::make_public: public links exist only for gs:// destinations, and the destination is file:///srv/labs (set the repository variable LABFORGE_MAKE_PUBLIC to false, or upload to gs://)',
    );
  });
});

describe('overwrite comes from detect-build-type, not from the ref name', () => {
  const inputs = callInputs('release.yml', SETUPS[0].vars);

  it('the upload overwrites when detect says so (the push of the rebuild tag it names)', () => {
    const withs = uploadInputs(buildJobContext(inputs, { 'build-type': 'prewarmed', overwrite: 'true' }, { ref_name: 'v1.4.0-prewarmed.2' }));
    expect(readUploadOptions(inputsFrom(withs)).overwrite).toBe(true);
  });

  it('a workflow_dispatch run from a rebuild tag with another version does not overwrite', () => {
    const withs = uploadInputs(buildJobContext(inputs, { 'build-type': 'prewarmed', version: '1.1.0', overwrite: 'false' }, { event_name: 'workflow_dispatch', ref_name: 'v1.4.0-prewarmed.2' }));
    expect(readUploadOptions(inputsFrom(withs))).toMatchObject({ overwrite: false, version: '1.1.0' });
  });

  it('build.yml exports detect\'s overwrite output and the upload reads only it', () => {
    expect((buildJobs['detect']?.['outputs'] as Record<string, string>)['overwrite']).toBe('${{ steps.detect.outputs.overwrite }}');
    expect(step('build', 'upload').with?.['overwrite']).toBe('${{ needs.detect.outputs.overwrite }}');
  });
});

describe('with upload, the upload step packs the built disk and publishes it while it packs (issue 16)', () => {
  const inputs = { ...callInputs('build-on-demand.yml', { LABFORGE_DESTINATION: 'file:///srv/labs' }, { build_type: 'prewarmed', version: '1.4.0', upload: true }), appliance: join(repoRoot, 'packer', 'demo-lab') };
  /** Packer's `package` for a run: what the Packer step packs itself. */
  const packerPackage = (warm: boolean, upload: boolean) => asStepInput(step('build', 'packer').with?.['package'], { inputs: { ...inputs, upload }, needs: { detect: { outputs: { warm: String(warm) } } } });

  it('Packer packs only a standard build without upload; pack-ova only a pre-warmed one without upload', () => {
    expect([packerPackage(false, false), packerPackage(false, true), packerPackage(true, false), packerPackage(true, true)]).toEqual(['ova', 'none', 'none', 'none']);
    const packStep = (buildJobs['build']?.steps ?? []).find((s) => s.name === 'Pack the pre-warmed OVA');
    const runs = (warm: boolean, upload: boolean) => evaluate(String(packStep?.if), { inputs: { ...inputs, upload }, needs: { detect: { outputs: { warm: String(warm) } } } }).coerceString() === 'true';
    expect([runs(false, false), runs(false, true), runs(true, false), runs(true, true)]).toEqual([false, false, true, false]);
  });

  it.each([
    ['prewarmed', 'warm'],
    ['standard', 'packer'],
  ] as const)('%s: upload-artifact accepts the evaluated inputs and packs %s\'s image into the OVA the next step locates', async (buildType, from) => {
    const work = mkdtempSync(join(tmpdir(), 'labforge-wf-eval-'));
    try {
      mkdirSync(join(work, 'out'));
      const image = join(work, 'disk.qcow2');
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
      const name = `demo-lab-${buildType}-1.4.0`;
      const context: Context = {
        inputs,
        env: { LABFORGE_WORK: work },
        github: { event_name: 'workflow_dispatch', ref_type: 'branch', ref_name: 'main' },
        needs: { detect: { outputs: { appliance: 'demo-lab', 'build-type': buildType, version: '1.4.0', overwrite: 'false', warm: String(buildType === 'prewarmed'), 'artifact-name': name } } },
        steps: { [from]: { outputs: { image } } },
      };
      const get = inputsFrom(uploadInputs(context));
      const { upload, pack } = await readUploadInputs(get, readUploadAppliance(get));
      expect(pack).toMatchObject({ image, out: join(work, 'out', `${name}.ova`), appliance: { name: 'demo-lab' } });
      expect(upload).toMatchObject({ version: '1.4.0', buildType, overwrite: false });
      // The step after the upload looks for the OVA exactly there.
      const locate = step('build', 'ova');
      const env = Object.fromEntries(Object.entries(locate.env ?? {}).map(([k, v]) => [k, asStepInput(v, context)]));
      expect(env).toMatchObject({ NAME: name, UPLOAD: 'true' });
      expect(String(locate.run)).toContain('if [ "$WARM" = true ] || [ "$UPLOAD" = true ]; then ova="$LABFORGE_WORK/out/$NAME.ova"');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('runs_on: the repository variable LABFORGE_RUNS_ON reaches detect-build-type', () => {
  const detectRunsOn = (inputs: Context) => asStepInput(step('detect', 'detect').with?.['runs-on'], { inputs });

  it.each(['release.yml', 'build-on-demand.yml'] as const)('%s passes it, and passes nothing when it is unset', (caller) => {
    const arc = detectRunsOn(callInputs(caller, { LABFORGE_RUNS_ON: '["arc-kvm"]' }));
    expect(parseRunnerLabels(arc)).toEqual(['arc-kvm']);
    expect(detectRunsOn(callInputs(caller, { LABFORGE_RUNS_ON: 'prewarm-host' }))).toBe('prewarm-host');
    expect(detectRunsOn(callInputs(caller, {}))).toBe(''); // detect then takes the manifest's labels
  });

  it('the build job runs on what detect decided', () => {
    expect(buildJobs['build']?.['runs-on']).toBe('${{ fromJSON(needs.detect.outputs.runner-labels) }}');
    const labels = evaluate('fromJSON(needs.detect.outputs.runner-labels)', { needs: { detect: { outputs: { 'runner-labels': JSON.stringify(['arc-kvm']) } } } });
    expect(labels.coerceString()).toBe('Array');
  });
});
