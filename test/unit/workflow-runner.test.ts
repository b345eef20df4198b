/**
 * The workflow runner stand-in (test/support/workflow-runner/) against small fixture workflows
 * (test/fixtures/workflows/runner/), committed to a temporary git repository so that actions/checkout and
 * reusable workflows resolve as they do on GitHub. Each capability the real workflows rely on is shown
 * here on its own: job order and outputs, conditions, calls of reusable workflows, inputs, env, files and
 * commands of steps, masking, timeouts, cancellation, triggers, runners, stand-ins, and the refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/run-action.js';
import { formatTimings, matchesFilters, runWorkflow, type JobRun, type RunWorkflowOptions, type StepRun, type WorkflowRun } from '../support/workflow-runner/index.js';

const FIXTURES = join(repoRoot, 'test', 'fixtures', 'workflows', 'runner');
let root: string;
let repo: string;
let sha: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'labforge-runner-test-'));
  repo = join(root, 'repo');
  mkdirSync(join(repo, '.github', 'workflows'), { recursive: true });
  for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.yml'))) cpSync(join(FIXTURES, f), join(repo, '.github', 'workflows', f));
  cpSync(join(FIXTURES, 'actions'), join(repo, 'actions'), { recursive: true });
  writeFileSync(join(repo, 'README.md'), 'runner stand-in fixture repository\n');
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], { cwd: repo, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'fixtures');
  git('tag', 'v1');
  sha = git('rev-parse', 'HEAD');
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function run(workflow: string, over: Partial<RunWorkflowOptions> = {}): Promise<WorkflowRun> {
  return runWorkflow({
    workflow: `.github/workflows/${workflow}`,
    repoDir: repo,
    repository: 'owner/fixture',
    repositories: { 'acme/tools': repo },
    event: { name: 'workflow_dispatch', ref: 'refs/heads/main' },
    runDir: mkdtempSync(join(root, 'run-')),
    killGraceMs: 1000,
    ...over,
  });
}

const job = (r: WorkflowRun, id: string): JobRun => {
  const j = r.jobs.find((x) => x.id === id);
  if (!j) throw new Error(`no job ${id} (jobs: ${r.jobs.map((x) => x.id).join(', ')})`);
  return j;
};
const step = (j: JobRun, id: string): StepRun => {
  const s = j.steps.find((x) => x.id === id);
  if (!s) throw new Error(`no step ${id} in ${j.id} (steps: ${j.steps.map((x) => x.id).join(', ')})`);
  return s;
};
/** Whether a process still runs (a zombie waiting for its reaper does not). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('jobs', () => {
  let r: WorkflowRun;
  beforeAll(async () => {
    r = await run('jobs.yml');
  });

  it('run in needs order and hand their outputs and results to the jobs that need them', () => {
    expect(r.jobs.filter((j) => !j.matrix).map((j) => j.id)).toEqual(['first', 'second', 'breaks', 'after-failure', 'skipped-by-default', 'transitively-skipped', 'always']);
    expect(job(r, 'first').outputs).toEqual({ word: 'hello', list: '["a","b"]' });
    expect(step(job(r, 'second'), 'echo').outputs['got']).toBe('hello/success');
    expect(step(job(r, 'always'), 'both').outputs['both']).toBe('hello/success failure');
  });

  it("skip a failed job's dependants unless their if: asks for failure() or always()", () => {
    expect(Object.fromEntries(r.jobs.filter((j) => !j.matrix).map((j) => [j.id, j.result]))).toEqual({
      first: 'success',
      second: 'success',
      breaks: 'failure',
      'after-failure': 'success',
      'skipped-by-default': 'skipped',
      'transitively-skipped': 'skipped',
      always: 'success',
    });
    expect(r.conclusion).toBe('failure');
  });

  it('expand a matrix (from a needed output) with exclude and include as GitHub does', () => {
    const combos = r.jobs.filter((j) => j.id === 'matrix');
    expect(combos.map((j) => step(j, 'combo').outputs['combo'])).toEqual(['linux-a-x 0/4', 'linux-b-x 1/4', 'bsd-a- 2/4', 'plan9-- 3/4']);
    expect(combos.map((j) => j.name)).toEqual(['Matrix linux', 'Matrix linux', 'Matrix bsd', 'Matrix plan9']);
    expect(combos.map((j) => j.matrix)).toContainEqual({ os: 'linux', word: 'a', extra: 'x' });
  });

  it('time every job and step, and format the times as a table', () => {
    expect(job(r, 'first').seconds).toBeGreaterThan(0);
    expect(step(job(r, 'first'), 'say').seconds).toBeGreaterThan(0);
    const table = formatTimings(r);
    expect(table).toMatch(/^\| job \| step \| result \| seconds \|/);
    expect(table).toMatch(/\| \*\*breaks\*\* \| breaks \| failure \| \d+\.\d \|/);
  });
});

describe('steps', () => {
  let r: WorkflowRun;
  beforeAll(async () => {
    process.env['LEAK_ME'] = 'the parent environment';
    try {
      r = await run('steps.yml', { env: { FROM_CALLER: 'from-caller' } });
    } finally {
      delete process.env['LEAK_ME'];
    }
  });

  it('see env by precedence workflow < job < GITHUB_ENV < step, and only PATH/HOME/LANG of the parent plus the caller env', () => {
    const env = job(r, 'env');
    const out = step(env, 'with-step-env').outputs;
    expect(out['level']).toBe('step');
    expect(out['ctx']).toBe('step');
    expect(out['others']).toBe('from-workflow from-job plain');
    expect(out['multi']).toBe('line one|line two');
    expect(out['leak']).toBe('none');
    expect(out['caller']).toBe('from-caller');
    expect(out['runner']).toBe('true true workflow_dispatch main branch Linux');
    expect(step(env, 'without').outputs['level']).toBe('from-env-file');
  });

  it('run in the workspace plus defaults.run / working-directory, with GITHUB_PATH prepended, in a fresh workspace and temp per job', () => {
    const env = job(r, 'env');
    const out = step(env, 'with-step-env').outputs;
    expect(out['workspace']).toBe(env.workspace);
    expect(out['pwd']).toBe(join(env.workspace!, 'sub'));
    expect(step(env, 'without').outputs['pwd']).toBe(join(env.workspace!, 'sub', 'deeper'));
    expect(out['tool']).toBe('tool-ran');
    expect(out['temp']).toMatch(new RegExp(`^${r.runDir}/jobs/\\d+-env/temp$`));
    expect(existsSync(out['temp']!)).toBe(false);
    expect(new Set(r.jobs.map((j) => j.workspace)).size).toBe(r.jobs.length);
  });

  it("use GitHub's shells: bash -e by default, pipefail only with shell: bash, custom {0} shells", () => {
    const shells = job(r, 'shells');
    expect(step(shells, 'default').outputs['flags']).toContain('e');
    expect(step(shells, 'default').outputs['pipefail']).toBe('off');
    expect(step(shells, 'bash').outputs['pipefail']).toBe('on');
    expect(step(shells, 'custom').outputs['flags']).toContain('u');
    expect(step(shells, 'custom').outputs['flags']).not.toContain('e');
    expect(step(shells, 'pipe-fails').outcome).toBe('failure');
  });

  it('honour if: with success()/failure()/always()/cancelled() and continue-on-error (outcome vs conclusion)', () => {
    const s = job(r, 'statuses');
    expect(s.steps.map((x) => `${x.id}:${x.outcome}/${x.conclusion}`)).toEqual([
      'ok:success/success',
      'soft:failure/success',
      'after-soft:success/success',
      'hard:failure/failure',
      'skipped:skipped/skipped',
      'on-failure:success/success',
      'on-success:skipped/skipped',
      'always:success/success',
      'on-cancel:skipped/skipped',
    ]);
    expect(step(s, 'after-soft').outputs['soft']).toBe('failure/success');
    expect(step(s, 'on-failure').outputs['seen']).toBe('failure/skipped');
    expect(step(s, 'always').outputs['status']).toBe('failure');
    expect(step(s, 'hard').annotations.map((a) => a.message)).toEqual(['Process completed with exit code 5.']);
    expect(s.result).toBe('failure');
  });

  it('collect the step summaries of a job in order', () => {
    expect(job(r, 'env').summary).toMatch(/### Prepared\n[\s\S]*### Second/);
  });
});

describe('workflow_dispatch inputs', () => {
  it('are typed per their declaration (github.event.inputs stays strings), with defaults', async () => {
    const r = await run('dispatch.yml', { event: { name: 'workflow_dispatch', ref: 'refs/heads/main', inputs: { kind: 'prewarmed', flag: true, count: '5', must: 'x' } } });
    const out = step(job(r, 'show'), 'show').outputs;
    expect(JSON.parse(out['typed']!)).toEqual({ kind: 'prewarmed', flag: true, count: 5, note: '', must: 'x' });
    expect(JSON.parse(out['raw']!)).toEqual({ kind: 'prewarmed', flag: 'true', count: '5', note: '', must: 'x' });
    expect(out['flag_is_true']).toBe('true');
  });

  it('are refused as GitHub refuses them: a choice outside its options, a missing required one, an unknown one', async () => {
    const dispatch = (inputs: Record<string, string | boolean>) => run('dispatch.yml', { event: { name: 'workflow_dispatch', ref: 'refs/heads/main', inputs } });
    await expect(dispatch({ kind: 'lukewarm', must: 'x' })).rejects.toThrow(/'lukewarm' for input 'kind' not in the list of allowed values/);
    await expect(dispatch({ kind: 'standard' })).rejects.toThrow(/Required input 'must' not provided/);
    await expect(dispatch({ must: 'x', extra: 'y' })).rejects.toThrow(/Unexpected inputs provided: \["extra"\]/);
  });
});

describe('reusable workflows (workflow_call)', () => {
  let r: WorkflowRun;
  beforeAll(async () => {
    r = await run('caller.yml', { secrets: { CALLER_TOKEN: 'caller-secret-value', TOKEN: 'inherited-secret-value' } });
  });

  it('run the called jobs as <caller>/<job>, in order, and map their outputs back to the calling job', () => {
    expect(r.jobs.map((j) => `${j.id}:${j.result}`)).toEqual([
      'prepare:success',
      'call:success',
      'call/inner:success',
      'call/second:success',
      'call-remote:success',
      'call-remote/inner:success',
      'call-remote/second:success',
      'after:success',
    ]);
    expect(job(r, 'call').outputs).toEqual({ shout: 'HELLO', inner_result: 'success' });
    expect(step(job(r, 'after'), 'a').outputs['got']).toBe('HELLO/success/success');
    expect(job(r, 'call-remote').uses).toBe('acme/tools/.github/workflows/reusable.yml@v1');
    expect(job(r, 'call-remote').outputs['shout']).toBe('REMOTE');
  });

  it('type the inputs and apply the defaults (expressions too); the github context stays the caller’s', () => {
    const local = step(job(r, 'call/inner'), 's').outputs;
    expect(JSON.parse(local['typed']!)).toEqual({ word: 'hello', flag: true, count: 42, derived: 'workflow_dispatch-default' });
    expect(JSON.parse(step(job(r, 'call-remote/inner'), 's').outputs['typed']!)).toEqual({ word: 'remote', flag: false, count: 7, derived: 'workflow_dispatch-default' });
    expect(local['event']).toBe('workflow_dispatch');
    expect(local['job']).toBe('inner');
  });

  it('pass secrets explicitly or inherited, masked in the called jobs’ logs', () => {
    expect(step(job(r, 'call/inner'), 's').log).toContain('the token is ***');
    expect(step(job(r, 'call-remote/inner'), 's').log).toContain('the token is ***');
    expect(step(job(r, 'call/inner'), 's').outputs['optional']).toBe('unset');
    const logs = r.jobs.flatMap((j) => j.steps.map((s) => s.log)).join('\n');
    expect(logs).not.toContain('caller-secret-value');
    expect(logs).not.toContain('inherited-secret-value');
  });

  it("record the caller's permissions and each called job's own", () => {
    expect(job(r, 'call').permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    expect(job(r, 'call/inner').permissions).toEqual({ contents: 'read' });
    expect(job(r, 'call/second').permissions).toEqual({ contents: 'write' });
    expect(job(r, 'prepare').permissions).toEqual({});
  });

  it('refuse undeclared inputs and secrets and a missing required input, as GitHub does', async () => {
    const err = await run('caller-invalid.yml').then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/Invalid input, wrod is not defined in the referenced workflow/);
    expect(err).toMatch(/Input word is required, but not provided while calling/);
    expect(err).toMatch(/Invalid secret, nope is not defined in the referenced workflow/);
  });

  it('refuse a reference to a ref or a repository the caller did not provide', async () => {
    await expect(run('caller-unknown-ref.yml')).rejects.toThrow(/'no-such-ref' is neither a commit, a tag nor a branch of acme\/tools/);
    await expect(run('caller-unknown-ref.yml', { repositories: {} })).rejects.toThrow(/repository 'acme\/tools' is not known to the runner stand-in/);
  });

  it('fail the calling job for a value of the wrong type', async () => {
    const bad = await run('caller-wrong-type.yml');
    expect(job(bad, 'call').result).toBe('failure');
    expect(job(bad, 'call').annotations[0]?.message).toMatch(/Input flag \(with\): unexpected value "not-a-boolean" of type string, expected a boolean/);
    expect(bad.jobs.map((j) => j.id)).toEqual(['call']);
  });
});

describe('timeouts', () => {
  let r: WorkflowRun;
  beforeAll(async () => {
    r = await run('timeouts.yml');
  }, 30_000);

  it("a step's timeout-minutes kills its process group within the limit and fails the step", () => {
    const j = job(r, 'step-timeout');
    const slow = step(j, 'slow');
    expect([slow.outcome, slow.timedOut]).toEqual(['failure', true]);
    expect(slow.seconds).toBeGreaterThanOrEqual(2.9);
    expect(slow.seconds).toBeLessThan(6);
    expect(slow.annotations[0]?.message).toBe("The action 'Run sleep 600 &' has timed out after 0.05 minutes.");
    expect(alive(Number(readFileSync(join(j.workspace!, 'sleep.pid'), 'utf8')))).toBe(false);
    expect(step(j, 'after').outcome).toBe('success');
    expect(j.result).toBe('failure');
  });

  it("a job's timeout-minutes cancels it: the step is killed, only always() steps still run", () => {
    const j = job(r, 'job-timeout');
    expect(j.steps.map((s) => `${s.id}:${s.outcome}`)).toEqual(['slow:cancelled', 'never:skipped', 'on-failure:skipped', 'cleanup:success']);
    expect(step(j, 'cleanup').log).toContain('status=cancelled');
    expect([j.result, j.timedOut]).toEqual(['cancelled', true]);
    expect(j.seconds).toBeLessThan(7);
    expect(j.annotations.map((a) => a.message)).toContainEqual(expect.stringMatching(/has exceeded the maximum execution time of 0.05 minutes/));
    expect(alive(Number(readFileSync(join(j.workspace!, 'sleep.pid'), 'utf8')))).toBe(false);
    expect(r.conclusion).toBe('failure');
  });
});

describe('workflow commands and masking', () => {
  let r: WorkflowRun;
  let s: StepRun;
  beforeAll(async () => {
    r = await run('masking.yml', { secrets: { PASSWORD: 'hunter2-password', MULTILINE: 'first-line-secret\nsecond-line-secret' } });
    s = step(job(r, 'mask'), 'print');
  });

  it('mask every secret (multi-line ones per line) and add-mask values in logs and summaries', () => {
    const all = [s.log, step(job(r, 'mask'), 'later').log, job(r, 'mask').summary].join('\n');
    for (const secret of ['hunter2-password', 'first-line-secret', 'second-line-secret', 'runtime-value-42']) expect(all).not.toContain(secret);
    expect(s.log).toContain('the password is ***');
    expect(s.log).toContain('now *** appears');
    expect(step(job(r, 'mask'), 'later').log).toContain('prints *** too');
    expect(job(r, 'mask').summary).toContain('summary with *** and ***');
  });

  it('record ::error/::warning/::notice as annotations with their properties', () => {
    expect(s.annotations.map(({ level, message, title, file, line, col }) => ({ level, message, title, file, line, col }))).toEqual([
      { level: 'warning', message: 'watch ***', title: 'Careful', file: 'src/a.ts', line: 3, col: 7 },
      { level: 'notice', message: 'just so you know', title: undefined, file: undefined, line: undefined, col: undefined },
      { level: 'error', message: 'a real error', title: 'Real', file: undefined, line: undefined, col: undefined },
      expect.objectContaining({ level: 'error', message: expect.stringMatching(/set-output` command is deprecated/) }),
    ]);
    expect(s.outcome).toBe('success');
    expect(s.log).toContain('##[group]Details');
  });

  it('do not process commands between ::stop-commands:: and its token', () => {
    expect(s.log).toContain('::error::injected error that must not count');
    expect(r.annotations.map((a) => a.message)).not.toContain('injected error that must not count');
  });

  it('drop a job output that would reveal a secret, as GitHub does', () => {
    expect(job(r, 'mask').outputs).toEqual({ fine: 'nothing secret' });
    expect(job(r, 'mask').annotations.map((a) => a.message)).toContain("Skip output 'leaked' since it may contain secret.");
  });
});

describe('local actions', () => {
  let r: WorkflowRun;
  beforeAll(async () => {
    r = await run('local-action.yml', { githubToken: 'ghs_fixture_token_0123456789' });
  });

  it('run node with INPUT_* from with: and the defaults (an expression default evaluated), in the workspace', () => {
    const probe = step(job(r, 'action'), 'probe');
    expect(probe.outputs['echoed']).toBe('hello standin-actor');
    expect(probe.outputs['token']).toBe('ghs_fixture_token_0123456789');
    expect(probe.outputs['space']).toBe('spaced');
    expect(probe.outputs['cwd']).toBe(job(r, 'action').workspace);
    expect(probe.outputs['action-path']).toBe(join(job(r, 'action').workspace!, 'actions', 'probe'));
    expect(probe.log).toContain('probe says hello standin-actor');
    expect(job(r, 'action').annotations.map((a) => a.message)).toContainEqual(expect.stringMatching(/^Unexpected input\(s\) 'bogus'/));
  });

  it('give the process only the runner variables, not the parent environment', () => {
    const names = step(job(r, 'action'), 'probe').outputs['env-names']!.split(' ');
    expect(names).toEqual(expect.arrayContaining(['GITHUB_WORKSPACE', 'GITHUB_EVENT_PATH', 'GITHUB_SHA', 'GITHUB_REPOSITORY', 'RUNNER_TEMP', 'CI', 'INPUT_GREETING']));
    expect(names.filter((n) => !/^(GITHUB_|RUNNER_|INPUT_|CI$|PATH$|HOME$|LANG$)/.test(n))).toEqual([]);
  });

  it('run the post phases in reverse order with the saved state; a failing post fails the job', () => {
    const j = job(r, 'action');
    expect(j.posts.map((p) => `${p.name}:${p.outcome}:${p.code}`)).toEqual(['Post Run ./actions/probe:failure:1', 'Post Run ./actions/probe:success:0']);
    expect(j.posts[1]?.log).toContain('post saw state: yes hello standin-actor');
    expect(j.summary).toMatch(/post of again\n[\s\S]*post of hello standin-actor/);
    expect(j.result).toBe('failure');
  });

  it('fail the step of an action that is not there', () => {
    expect(step(job(r, 'action'), 'missing').annotations[0]?.message).toMatch(/Can't find 'action.yml'/);
  });
});

describe('cancellation', () => {
  it('kills the running step, runs always()/cancelled() steps and post phases, cancels the rest', async () => {
    const controller = new AbortController();
    const r = await run('cancel.yml', {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'step-start' && p.stepId === 'sleep') setTimeout(() => controller.abort(), 300);
      },
    });
    const j = job(r, 'cancel');
    expect(j.steps.map((s) => `${s.id}:${s.outcome}`)).toEqual(['checkout:success', 'probe:success', 'sleep:cancelled', 'skipped:skipped', 'cleanup:success', 'on-cancel:success']);
    expect(step(j, 'sleep').seconds).toBeLessThan(3);
    expect(step(j, 'cleanup').log).toContain('job.status=cancelled');
    expect(alive(Number(readFileSync(join(j.workspace!, 'sleep.pid'), 'utf8')))).toBe(false);
    expect(j.posts.map((p) => `${p.name}:${p.outcome}`)).toEqual(['Post Run ./actions/probe:success']);
    expect([j.result, job(r, 'later').result, r.conclusion]).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });
});

describe('triggers', () => {
  const push = (ref: string) => run('tags.yml', { event: { name: 'push', ref } });

  it('push tag filters select tags with GitHub patterns (+, [], !) and skip branches', async () => {
    const results = await Promise.all(['refs/tags/v1.2.3', 'refs/tags/v1.2.3-prewarmed.2', 'refs/tags/v1', 'refs/tags/v1.2.3-broken', 'refs/heads/main'].map(push));
    expect(results.map((x) => x.triggered)).toEqual([true, true, false, false, false]);
    expect(results[2]?.notTriggeredReason).toMatch(/tag 'v1' does not match tags/);
    expect(results[2]?.jobs).toEqual([]);
    expect(step(job(results[0]!, 'tag'), 'ref').outputs['ref']).toBe('v1.2.3 tag push');
  });

  it('refuses an event the workflow does not accept', async () => {
    await expect(run('tags.yml')).rejects.toThrow(/does not run on 'workflow_dispatch' \(its on: accepts push\)/);
  });

  it('patterns: * stops at /, ** does not, ? and + repeat the previous character, ! negates', () => {
    expect(matchesFilters('feature/x', ['feature/*'])).toBe(true);
    expect(matchesFilters('feature/x/y', ['feature/*'])).toBe(false);
    expect(matchesFilters('feature/x/y', ['feature/**'])).toBe(true);
    expect(matchesFilters('colour', ['colou?r'])).toBe(true);
    expect(matchesFilters('color', ['colou?r'])).toBe(true);
    expect(matchesFilters('v10.2.0', ['v[0-9]+.[0-9]+.[0-9]+'])).toBe(true);
    expect(matchesFilters('release/old', ['release/**', '!release/old'])).toBe(false);
  });
});

describe('runners', () => {
  it('evaluates runs-on and fails a job no runner can take, naming its labels', async () => {
    const r = await run('runs-on.yml', { runners: [['ubuntu-latest'], ['self-hosted', 'linux', 'x64', 'kvm']] });
    expect(job(r, 'hosted').runsOn).toEqual(['ubuntu-latest']);
    expect(step(job(r, 'hosted'), 'runner').outputs['runner']).toBe('Linux X64 github-hosted');
    expect(job(r, 'kvm').runsOn).toEqual(['self-hosted', 'linux', 'kvm']);
    expect(job(r, 'kvm').runner).toEqual(['self-hosted', 'linux', 'x64', 'kvm']);
    expect(step(job(r, 'kvm'), 'runner').outputs['runner']).toBe('self-hosted');
    expect(job(r, 'gpu').result).toBe('failure');
    expect(job(r, 'gpu').annotations[0]?.message).toMatch(/No runner has all the labels \["self-hosted","gpu"\] of job 'gpu'.*GitHub would wait for one forever/);
    expect(job(r, 'gpu').steps).toEqual([]);
  });
});

describe('third-party actions', () => {
  let r: WorkflowRun;
  beforeAll(async () => {
    r = await run('standins.yml', {
      event: { name: 'push', ref: 'refs/heads/main' },
      vars: { NODE_MAJOR: process.versions.node.split('.')[0]!, DESTINATION: 'file:///tmp/bucket' },
      standins: { 'acme/custom-action': (ctx) => ({ outputs: { echoed: `${ctx.inputs['value']} via ${ctx.uses}` } }) },
    });
  });

  it('checkout clones the mapped repositories at the event sha or the given ref into the given path', () => {
    const produce = job(r, 'produce');
    expect(step(produce, 'self').outputs['commit']).toBe(sha);
    expect(step(produce, 'tools').outputs['commit']).toBe(sha);
    expect(step(produce, 'make').outcome).toBe('success');
    expect(step(job(r, 'consume'), 'bad-ref').annotations[0]?.message).toMatch(/'no-such-branch' could not be found/);
  });

  it('artifacts go to the run directory, once per name, and come back in another job', () => {
    expect(readdirSync(join(r.runDir, 'artifacts', 'files')).sort()).toEqual(['a.txt', 'b.txt']);
    expect(step(job(r, 'produce'), 'again').annotations[0]?.message).toMatch(/\(409\) Conflict: an artifact with this name already exists/);
    expect(step(job(r, 'produce'), 'nothing').annotations[0]?.message).toMatch(/No files were found with the provided path: no-such-dir\//);
    expect(step(job(r, 'consume'), 'check').outputs['fresh']).toBe('yes');
    expect(step(job(r, 'consume'), 'missing').annotations[0]?.message).toBe('Unable to download artifact(s): Artifact not found for name: nope');
  });

  it('provenance is recorded with the sha256 of the subject', () => {
    const digest = createHash('sha256').update('hello\n').digest('hex');
    expect(step(job(r, 'produce'), 'make').outputs['sha']).toBe(digest);
    expect(r.attestations).toEqual([expect.objectContaining({ job: 'produce', subjectName: 'a.txt', digest: `sha256:${digest}` })]);
  });

  it('the Google login is skipped by its if: for file://, and fails when it would run', () => {
    expect(step(job(r, 'produce'), 'gcloud').outcome).toBe('skipped');
    expect(step(job(r, 'consume'), 'gcloud').annotations[0]?.message).toMatch(/no Google Cloud in this stand-in/);
  });

  it('a stand-in given by the caller replaces an action', () => {
    expect(step(job(r, 'produce'), 'custom').outputs['echoed']).toBe('from the workflow via acme/custom-action@v9');
    expect([job(r, 'produce').result, job(r, 'consume').result, r.conclusion]).toEqual(['success', 'success', 'success']);
  });
});

describe('refusals: what the stand-in cannot honour is an error, never a silent skip', () => {
  it('an action without a stand-in, before any step of its job runs', async () => {
    const runDir = mkdtempSync(join(root, 'run-'));
    await expect(run('unknown-action.yml', { runDir })).rejects.toThrow(/the action 'someone\/unknown-action@v3' has no stand-in/);
    expect(readdirSync(runDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('/ran'))).toEqual([]);
  });

  it('an unknown expression function', async () => {
    await expect(run('unknown-function.yml')).rejects.toThrow(/Unrecognized function: 'frobnicate'/);
  });

  it('a workflow that does not match the schema', async () => {
    await expect(run('schema-error.yml')).rejects.toThrow(/does not parse[\s\S]*(runs-on|stepz)/);
  });
});
