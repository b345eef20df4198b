/**
 * A minimal STAND-IN for the GitHub Actions runner, enough to run one job of our own workflows here
 * (no runner can be installed on the test machines): it runs the steps in order, `uses: ./actions/X`
 * through the committed bundle exactly as the runner does (INPUT_* with action.yml's defaults, the
 * GITHUB_OUTPUT/STATE files, then the `post:` phases in reverse order at the end of the job), and `run:`
 * scripts with `bash --noprofile --norc -eo pipefail`. It honours `env:`, `continue-on-error:` and the
 * `if:` conditions `always()`, `success()` and `failure()`, and evaluates only the expressions our
 * self-test uses: `runner.temp`, `steps.<id>.outputs.<name>`, `steps.<id>.outcome`. Anything else is an
 * error, so a workflow that needs more cannot pass by accident.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandFile, repoRoot, runBundledAction } from './run-action.js';
import { labforgeActionName, readYamlFile, type Step } from './workflow-files.js';

export interface StepResult {
  id?: string;
  name: string;
  /** `success`, `failure` or `skipped` (before continue-on-error, as `steps.<id>.outcome`). */
  outcome: 'success' | 'failure' | 'skipped';
  outputs: Record<string, string>;
  /** What the step printed (stdout and stderr), for failure messages. */
  log: string;
}

export interface JobRun {
  steps: StepResult[];
  /** Whether the job succeeded (no failed step without continue-on-error). */
  success: boolean;
  /** Outcomes of the post phases, by step id or name. */
  posts: { name: string; code: number; log: string }[];
}

function evaluate(expr: string, ctx: { temp: string; steps: Map<string, StepResult> }): string {
  const e = expr.trim();
  if (e === 'runner.temp') return ctx.temp;
  const m = /^steps\.([A-Za-z0-9_-]+)\.(outputs\.([A-Za-z0-9_-]+)|outcome)$/.exec(e);
  if (m) {
    const step = ctx.steps.get(m[1] ?? '');
    if (!step) return '';
    return m[3] !== undefined ? (step.outputs[m[3]] ?? '') : step.outcome;
  }
  throw new Error(`the runner stand-in cannot evaluate \${{ ${e} }}`);
}

function substitute(text: string, ctx: { temp: string; steps: Map<string, StepResult> }): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, expr: string) => evaluate(expr, ctx));
}

function shouldRun(cond: unknown, jobFailed: boolean): boolean {
  if (cond === undefined) return !jobFailed;
  const c = String(cond).replace(/^\$\{\{\s*|\s*\}\}$/g, '').trim();
  if (c === 'always()') return true;
  if (c === 'success()') return !jobFailed;
  if (c === 'failure()') return jobFailed;
  throw new Error(`the runner stand-in cannot evaluate if: ${c}`);
}

/** Runs `jobs.<jobId>` of a workflow file (path relative to the repository) in the repository checkout. */
export async function runWorkflowJob(workflowPath: string, jobId: string, opts: { timeoutMs?: number } = {}): Promise<JobRun> {
  const file = readYamlFile(join(repoRoot, workflowPath));
  const job = (file.data['jobs'] as Record<string, { steps?: Step[] }>)[jobId];
  if (!job) throw new Error(`${workflowPath} has no job ${jobId}`);
  const temp = mkdtempSync(join(tmpdir(), 'labforge-runner-standin-'));
  const steps = new Map<string, StepResult>();
  const results: StepResult[] = [];
  const posts: { name: string; action: string; inputs: Record<string, string>; state: Record<string, string> }[] = [];
  let jobFailed = false;
  const ctx = { temp, steps };
  const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', RUNNER_TEMP: temp, GITHUB_WORKSPACE: repoRoot, GITHUB_ACTIONS: 'true', CI: 'true' };
  try {
    for (const [i, step] of (job.steps ?? []).entries()) {
      const name = step.name ?? step.id ?? `step ${i}`;
      let result: StepResult;
      if (!shouldRun(step['if'], jobFailed)) {
        result = { id: step.id, name, outcome: 'skipped', outputs: {}, log: '' };
      } else {
        const env: Record<string, string> = { ...baseEnv };
        for (const [k, v] of Object.entries((step['env'] ?? {}) as Record<string, unknown>)) env[k] = substitute(String(v), ctx);
        if (typeof step.uses === 'string' && step.uses.startsWith('actions/checkout@')) {
          result = { id: step.id, name, outcome: 'success', outputs: {}, log: 'checkout: the repository is already here' };
        } else if (typeof step.uses === 'string') {
          const action = labforgeActionName(step.uses);
          if (!action || !step.uses.startsWith('./')) throw new Error(`the runner stand-in runs only local labforge actions, not ${step.uses}`);
          const spec = readYamlFile(join(repoRoot, 'actions', action, 'action.yml')).data;
          const inputs: Record<string, string> = {};
          for (const [k, v] of Object.entries((spec['inputs'] ?? {}) as Record<string, { default?: unknown } | null>)) {
            if (v?.default !== undefined) inputs[k] = String(v.default);
          }
          for (const [k, v] of Object.entries((step.with ?? {}) as Record<string, unknown>)) inputs[k] = substitute(String(v), ctx);
          const run = await runBundledAction(action, { inputs, env, timeoutMs: opts.timeoutMs ?? 300_000 });
          result = { id: step.id, name, outcome: run.code === 0 ? 'success' : 'failure', outputs: run.outputs, log: run.stdout + run.stderr };
          const runs = spec['runs'] as { post?: string } | undefined;
          if (runs?.post) posts.push({ name, action, inputs, state: run.state });
        } else {
          const script = join(temp, `step-${i}.sh`);
          const output = join(temp, `step-${i}.output`);
          writeFileSync(script, substitute(String(step.run ?? ''), ctx));
          writeFileSync(output, '');
          const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
            cwd: repoRoot,
            env: { ...env, GITHUB_OUTPUT: output, GITHUB_STEP_SUMMARY: join(temp, 'summary.md') },
            encoding: 'utf8',
            timeout: opts.timeoutMs ?? 300_000,
          });
          result = { id: step.id, name, outcome: r.status === 0 ? 'success' : 'failure', outputs: parseCommandFile(readFileSync(output, 'utf8')), log: (r.stdout ?? '') + (r.stderr ?? '') };
        }
        if (result.outcome === 'failure' && step['continue-on-error'] !== true) jobFailed = true;
      }
      results.push(result);
      if (step.id) steps.set(step.id, result);
    }
    const postResults: JobRun['posts'] = [];
    for (const p of posts.reverse()) {
      const run = await runBundledAction(p.action, { inputs: p.inputs, env: { ...baseEnv }, post: p.state, timeoutMs: opts.timeoutMs ?? 300_000 });
      postResults.push({ name: p.name, code: run.code, log: run.stdout + run.stderr });
    }
    return { steps: results, success: !jobFailed, posts: postResults };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
