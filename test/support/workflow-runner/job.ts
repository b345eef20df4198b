/**
 * One job on a runner, for the workflow runner STAND-IN (a test double for the GitHub Actions runner; see
 * index.ts). It evaluates `runs-on` and takes a runner the caller declared (none matching: the job fails,
 * where GitHub would queue it forever), gives the job a fresh workspace and RUNNER_TEMP under the run
 * directory, evaluates the workflow and job `env`, `defaults.run`, `concurrency` and `timeout-minutes`
 * (ENFORCED: on expiry the running step's process group is killed, only `always()`/`cancelled()` steps and
 * post phases still run, the job ends `cancelled` with a timeout annotation, as on GitHub), refuses
 * actions without a stand-in before any step runs, runs the steps and then the post phases in reverse
 * order, evaluates the job's `outputs` (dropping those that would reveal a secret, as GitHub does), kills
 * the processes steps left behind and removes RUNNER_TEMP.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isActionStep } from '@actions/workflow-parser/model/type-guards';
import type { Job } from '@actions/workflow-parser/model/workflow-template';
import type { MappingToken } from '@actions/workflow-parser/templates/tokens/index';
import { isGithubHosted, pickRunner, runnerContext, runnerEnv, type RunContext } from './context.js';
import { evaluateNumber, evaluateString, evaluateStringMap, evaluateToken, literalValue, toExpressionString, type Scope } from './expressions.js';
import { prop, rawSteps, type LoadedWorkflow } from './parse.js';
import { ProcessGroups } from './process.js';
import { standInKey } from './standins.js';
import { jobStatus, runPost, runStep, type JobState } from './step.js';
import { UnsupportedError, type Annotation, type JobRun, type JsonObject, type JsonValue } from './types.js';

/** What the jobs of one workflow share: the root run's, or one call's. */
export interface WorkflowScope {
  wf: LoadedWorkflow;
  /** '' for the root workflow, `<caller job>/` for a called one. */
  prefix: string;
  github: JsonObject;
  inputs: JsonObject;
  secrets: Record<string, string>;
  vars: Record<string, string>;
  /** Permissions for jobs that declare none: the workflow's, else the calling job's. */
  permissions: JsonValue;
}

export interface JobSpec {
  scope: WorkflowScope;
  job: Job;
  raw: MappingToken;
  /** Created and placed in the run's job list by the caller; filled here. */
  record: JobRun;
  needs: JsonObject;
  matrix: JsonValue;
  strategy: JsonValue;
}

const DEFAULT_TIMEOUT_MINUTES = 360;

/** A new, empty job record. */
export function newJobRun(id: string, name: string, permissions: JsonValue): JobRun {
  return { id, name, result: 'skipped', runsOn: [], permissions, outputs: {}, steps: [], posts: [], summary: '', annotations: [], timedOut: false, seconds: 0 };
}

/** The permissions of a job: its own `permissions:` else the inherited ones. */
export function permissionsOf(raw: MappingToken, inherited: JsonValue): JsonValue {
  const own = raw.find('permissions');
  return own ? literalValue(own) : inherited;
}

function labelsOf(value: JsonValue): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  if (value && typeof value === 'object' && !Array.isArray(value)) throw new UnsupportedError(`runs-on with a group or labels mapping is not implemented by the runner stand-in (${JSON.stringify(value)})`);
  throw new Error(`runs-on must be a label or a list of labels, got ${JSON.stringify(value)}`);
}

/** Refuses, before anything runs, a step whose action neither is local nor has a stand-in. */
function checkActions(run: RunContext, spec: JobSpec, id: string): void {
  for (const step of spec.job.steps) {
    if (!isActionStep(step)) continue;
    const uses = step.uses.value;
    if (uses.startsWith('./')) continue;
    if (uses.startsWith('docker://')) throw new UnsupportedError(`job ${id}: ${uses}: Docker actions are not implemented by the runner stand-in`);
    if (!run.standins[standInKey(uses)]) {
      throw new UnsupportedError(`job ${id}: the action '${uses}' has no stand-in (known: ${Object.keys(run.standins).join(', ')}); pass one in the 'standins' option`);
    }
  }
}

/** Runs a job (one matrix combination) to its end. */
export async function runJob(run: RunContext, spec: JobSpec): Promise<void> {
  const t0 = performance.now();
  const rec = spec.record;
  const { scope } = spec;
  const seq = ++run.sequence;
  const jobDir = join(run.runDir, 'jobs', `${String(seq).padStart(2, '0')}-${rec.id.replace(/[^A-Za-z0-9_.-]+/g, '_')}`);
  const workspace = join(jobDir, 'workspace');
  const temp = join(jobDir, 'temp');
  const annotate = (a: Annotation) => (rec.annotations.push(a), run.annotations.push(a));
  const jobError = (message: string) => annotate({ level: 'error', message: run.masker.mask(message), job: rec.id });
  const done = (result: JobRun['result']) => {
    rec.result = result;
    rec.seconds = (performance.now() - t0) / 1000;
    run.onProgress?.({ phase: 'job-end', job: rec.id, result });
  };
  run.onProgress?.({ phase: 'job-start', job: rec.id });
  checkActions(run, spec, rec.id);
  const github: JsonObject = { ...scope.github, job: spec.job.id.value, workspace };
  const pre: JsonObject = { github, inputs: scope.inputs, vars: scope.vars, needs: spec.needs, strategy: spec.strategy, matrix: spec.matrix };
  let timeoutMinutes: number;
  let runnerLabels: string[] | undefined;
  try {
    rec.runsOn = labelsOf(evaluateToken(spec.job['runs-on']!, { contexts: pre }));
    runnerLabels = pickRunner(run.runners, rec.runsOn);
    timeoutMinutes = evaluateNumber(spec.raw.find('timeout-minutes'), { contexts: pre }, 'timeout-minutes') ?? DEFAULT_TIMEOUT_MINUTES;
    const concurrency = spec.job.concurrency;
    if (concurrency) rec.concurrency = evaluateString(prop(concurrency, 'group') ?? concurrency, { contexts: pre }, 'concurrency.group');
  } catch (e) {
    if (e instanceof UnsupportedError) throw e;
    jobError(`Error when evaluating the job '${rec.id}': ${(e as Error).message}`);
    return done('failure');
  }
  if (!runnerLabels) {
    jobError(`No runner has all the labels ${JSON.stringify(rec.runsOn)} of job '${rec.id}' (runners: ${JSON.stringify(run.runners)}); GitHub would wait for one forever`);
    return done('failure');
  }
  rec.runner = runnerLabels;
  mkdirSync(workspace, { recursive: true });
  mkdirSync(temp, { recursive: true });
  rec.workspace = workspace;
  const runnerName = isGithubHosted(runnerLabels) ? `GitHub Actions ${seq}` : `standin-${runnerLabels.join('-')}-${seq}`;
  const runner = runnerContext(runnerLabels, runnerName, temp, run.toolCache);
  const abort = new AbortController();
  const onRunAbort = () => abort.abort();
  if (run.signal.aborted) abort.abort();
  else run.signal.addEventListener('abort', onRunAbort, { once: true });
  const js: JobState = {
    run,
    jobId: rec.id,
    workspace,
    temp,
    github,
    contexts: { ...pre, runner, secrets: scope.secrets },
    env: {},
    path: [],
    steps: {},
    defaults: {},
    runnerVars: runnerEnv(github, runner, workspace),
    permissions: rec.permissions,
    failed: false,
    signal: abort.signal,
    timedOut: false,
    groups: new ProcessGroups(),
    posts: [],
    summary: [],
    annotate,
  };
  const timer = setTimeout(() => {
    js.timedOut = true;
    abort.abort();
  }, timeoutMinutes * 60_000);
  try {
    try {
      const wfScope: Scope = { contexts: { github, inputs: scope.inputs, vars: scope.vars, secrets: scope.secrets } };
      Object.assign(js.env, evaluateStringMap(scope.wf.template.env, wfScope, 'env'));
      Object.assign(js.env, evaluateStringMap(spec.job.env, { contexts: { ...pre, secrets: scope.secrets } }, `jobs.${spec.job.id.value}.env`));
      const defScope: Scope = { contexts: { ...pre, env: js.env } };
      const defaults = { ...evaluateStringMap(prop(prop(scope.wf.root, 'defaults'), 'run'), defScope, 'defaults.run'), ...evaluateStringMap(prop(prop(spec.raw, 'defaults'), 'run'), defScope, 'defaults.run') };
      js.defaults = { shell: defaults['shell'], workingDirectory: defaults['working-directory'] };
    } catch (e) {
      if (e instanceof UnsupportedError) throw e;
      jobError(`Error when evaluating the job '${rec.id}': ${(e as Error).message}`);
      return done('failure');
    }
    const raws = rawSteps(spec.raw);
    if (raws.length !== spec.job.steps.length) throw new UnsupportedError(`job ${rec.id}: the parsed steps do not align with the converted ones`);
    for (const [i, step] of spec.job.steps.entries()) rec.steps.push(await runStep(js, step, raws[i]!));
    for (const p of [...js.posts].reverse()) rec.posts.push(await runPost(js, p));
    if (js.timedOut) jobError(`The job running on runner ${runnerName} has exceeded the maximum execution time of ${timeoutMinutes} minutes.`);
    const outScope: Scope = { contexts: { ...js.contexts, github: { ...github }, job: { status: js.failed ? 'failure' : 'success' }, steps: js.steps, env: js.env } };
    for (const p of spec.job.outputs ?? []) {
      const name = p.key.toString();
      try {
        const value = toExpressionString(evaluateToken(p.value, outScope), `outputs.${name}`);
        if (run.masker.reveals(value)) annotate({ level: 'warning', message: `Skip output '${name}' since it may contain secret.`, job: rec.id });
        else rec.outputs[name] = value;
      } catch (e) {
        if (e instanceof UnsupportedError) throw e;
        jobError(`Error when evaluating output '${name}' of job '${rec.id}': ${(e as Error).message}`);
        js.failed = true;
      }
    }
    rec.summary = js.summary.join('\n');
    const status = jobStatus(js);
    done(status.cancelled() ? 'cancelled' : js.failed ? 'failure' : 'success');
    rec.timedOut = js.timedOut;
  } finally {
    clearTimeout(timer);
    run.signal.removeEventListener('abort', onRunAbort);
    js.groups.killAll();
    rmSync(temp, { recursive: true, force: true });
  }
}
