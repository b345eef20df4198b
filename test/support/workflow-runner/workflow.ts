/**
 * The jobs of a workflow, for the workflow runner STAND-IN (a test double for GitHub's job scheduling; see
 * index.ts). Jobs run one at a time in `needs` order (declaration order among the ready ones). A job's
 * `if:` (default success(): every needed job, transitively, succeeded) is evaluated with the needed jobs'
 * results and outputs; a skipped job's dependants are skipped. `strategy.matrix` is expanded as GitHub
 * does (product of the lists, then `exclude`, then `include` extending matching combinations or adding
 * new ones; fail-fast cancels the remaining combinations). A job with `uses:` calls a reusable workflow
 * (`./path` from the same commit as the caller, `OWNER/REPO/path@REF` from the caller's local repository
 * map): its inputs are typed and defaulted, its secrets passed explicitly or inherited, its jobs run here
 * with ids `<caller>/<job>`, and its `on.workflow_call.outputs` become the calling job's outputs.
 */
import { isMapping } from '@actions/workflow-parser';
import { isReusableWorkflowJob } from '@actions/workflow-parser/model/type-guards';
import type { ReusableWorkflowJob, WorkflowJob } from '@actions/workflow-parser/model/workflow-template';
import type { RunContext } from './context.js';
import { evaluateStringMap, evaluateToken, isTruthy, literalValue, toExpressionString, type Scope, type StatusFunctions } from './expressions.js';
import { callInputs, callSecrets, inputDefinitions } from './inputs.js';
import { newJobRun, permissionsOf, runJob, type WorkflowScope } from './job.js';
import { loadWorkflow, prop, rawJob, resolveWorkflowRef, workflowCallDefinition } from './parse.js';
import { UnsupportedError, type JobResult, type JobRun, type JsonObject, type JsonValue } from './types.js';

/** What a finished job leaves to the jobs that need it. */
export interface JobOutcome {
  result: JobResult;
  outputs: Record<string, string>;
}

const deepEqual = (a: JsonValue | undefined, b: JsonValue | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Expands `strategy.matrix` (lists, exclude, include) into its combinations. */
export function expandMatrix(matrix: JsonValue): JsonObject[] {
  if (matrix === null || typeof matrix !== 'object' || Array.isArray(matrix)) throw new UnsupportedError(`strategy.matrix must be a mapping, got ${JSON.stringify(matrix)}`);
  const { include = [], exclude = [], ...lists } = matrix;
  if (!Array.isArray(include) || !Array.isArray(exclude)) throw new UnsupportedError('strategy.matrix include/exclude must be lists');
  let combos: JsonObject[] = Object.keys(lists).length > 0 ? [{}] : [];
  for (const [key, values] of Object.entries(lists)) {
    if (!Array.isArray(values)) throw new UnsupportedError(`strategy.matrix.${key} must be a list, got ${JSON.stringify(values)}`);
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  for (const ex of exclude) {
    if (!ex || typeof ex !== 'object' || Array.isArray(ex)) throw new UnsupportedError('strategy.matrix.exclude entries must be mappings');
    combos = combos.filter((c) => !Object.entries(ex).every(([k, v]) => deepEqual(c[k], v)));
  }
  const original = new Set(Object.keys(lists));
  const extended = combos.map((c) => ({ base: c, extra: {} as JsonObject }));
  for (const inc of include) {
    if (!inc || typeof inc !== 'object' || Array.isArray(inc)) throw new UnsupportedError('strategy.matrix.include entries must be mappings');
    let matched = false;
    for (const e of extended) {
      if (Object.entries(inc).every(([k, v]) => !original.has(k) || deepEqual(e.base[k], v))) {
        Object.assign(e.extra, Object.fromEntries(Object.entries(inc).filter(([k]) => !original.has(k))));
        matched = true;
      }
    }
    if (!matched) extended.push({ base: inc, extra: {} });
  }
  return extended.map((e) => ({ ...e.base, ...e.extra }));
}

function aggregate(results: JobResult[]): JobResult {
  if (results.includes('failure')) return 'failure';
  if (results.includes('cancelled')) return 'cancelled';
  if (results.includes('success')) return 'success';
  return 'skipped';
}

function ancestorsOf(id: string, jobs: Map<string, WorkflowJob>): Set<string> {
  const out = new Set<string>();
  const visit = (j: string) => {
    for (const n of jobs.get(j)?.needs ?? []) {
      if (!out.has(n.value)) {
        out.add(n.value);
        visit(n.value);
      }
    }
  };
  visit(id);
  return out;
}

/** Runs the jobs of a workflow (only those in `only`, when given); returns every job's outcome by id. */
export async function runWorkflowJobs(run: RunContext, scope: WorkflowScope, only?: string[]): Promise<Map<string, JobOutcome>> {
  const all = new Map(scope.wf.template.jobs.map((j) => [j.id.value, j]));
  let pending = [...all.values()];
  if (only) {
    for (const id of only) if (!all.has(id)) throw new Error(`${scope.wf.source.path} has no job ${id}`);
    pending = pending.filter((j) => only.includes(j.id.value));
    for (const j of pending) {
      for (const n of j.needs ?? []) if (!only.includes(n.value)) throw new Error(`job ${j.id.value} needs ${n.value}, which the jobs filter leaves out`);
    }
  }
  const done = new Map<string, JobOutcome>();
  while (pending.length > 0) {
    const i = pending.findIndex((j) => (j.needs ?? []).every((n) => done.has(n.value)));
    if (i < 0) throw new Error(`jobs ${pending.map((j) => j.id.value).join(', ')} wait for each other`);
    const job = pending.splice(i, 1)[0]!;
    done.set(job.id.value, await runWorkflowJob(run, scope, job, done, ancestorsOf(job.id.value, all)));
  }
  return done;
}

async function runWorkflowJob(run: RunContext, scope: WorkflowScope, job: WorkflowJob, done: Map<string, JobOutcome>, ancestors: Set<string>): Promise<JobOutcome> {
  const id = scope.prefix + job.id.value;
  const raw = rawJob(scope.wf, job.id.value);
  const permissions = permissionsOf(raw, scope.permissions);
  const needs: JsonObject = {};
  for (const n of job.needs ?? []) needs[n.value] = { result: done.get(n.value)!.result, outputs: done.get(n.value)!.outputs };
  const status: StatusFunctions = {
    success: (ids) => !run.signal.aborted && (ids.length > 0 ? ids : [...ancestors]).every((n) => done.get(n)?.result === 'success'),
    failure: (ids) => (ids.length > 0 ? ids : [...ancestors]).some((n) => done.get(n)?.result === 'failure'),
    cancelled: () => run.signal.aborted,
  };
  const base: JsonObject = { github: scope.github, inputs: scope.inputs, vars: scope.vars, needs };
  const skip = (record: JobRun, result: JobResult): JobOutcome => {
    record.result = result;
    return { result, outputs: {} };
  };
  const record = newJobRun(id, job.id.value, permissions);
  if (isReusableWorkflowJob(job)) record.uses = job.ref.value;
  record.name = jobName(job, { contexts: { ...base, strategy: null, matrix: null } }, null);
  run.jobs.push(record);
  let wanted: boolean;
  try {
    wanted = isTruthy(evaluateToken(job.if, { contexts: base, status }));
  } catch (e) {
    if (e instanceof UnsupportedError) throw e;
    record.annotations.push({ level: 'error', message: `Error when evaluating 'if' for job '${id}': ${(e as Error).message}`, job: id });
    run.annotations.push(...record.annotations);
    return skip(record, 'failure');
  }
  if (!wanted) return skip(record, run.signal.aborted ? 'cancelled' : 'skipped');

  const strategy = job.strategy ? evaluateToken(job.strategy, { contexts: base }) : null;
  if (strategy !== null && (typeof strategy !== 'object' || Array.isArray(strategy))) throw new UnsupportedError(`job ${id}: strategy must be a mapping`);
  const combos: (JsonObject | null)[] = strategy && strategy['matrix'] !== undefined ? expandMatrix(strategy['matrix']) : [null];
  const failFast = strategy?.['fail-fast'] !== false;
  const records: JobRun[] = [];
  const outputs: Record<string, string> = {};
  for (const [index, matrix] of combos.entries()) {
    const rec = index === 0 ? record : newJobRun(id, job.id.value, permissions);
    if (index > 0) run.jobs.push(rec);
    records.push(rec);
    if (matrix) rec.matrix = matrix;
    const strategyCtx: JsonValue = strategy ? { 'fail-fast': failFast, 'job-index': index, 'job-total': combos.length, 'max-parallel': Number(strategy['max-parallel'] ?? combos.length) } : null;
    const contexts: JsonObject = { ...base, strategy: strategyCtx, matrix };
    rec.name = jobName(job, { contexts }, matrix);
    if (failFast && records.some((r) => r.result === 'failure')) {
      rec.result = 'cancelled';
      continue;
    }
    if (isReusableWorkflowJob(job)) {
      Object.assign(outputs, await callWorkflow(run, scope, job, rec, contexts));
    } else {
      await runJob(run, { scope, job, raw, record: rec, needs, matrix, strategy: strategyCtx });
      Object.assign(outputs, rec.outputs);
    }
  }
  return { result: aggregate(records.map((r) => r.result)), outputs };
}

function jobName(job: WorkflowJob, scope: Scope, matrix: JsonObject | null): string {
  let name = job.id.value;
  try {
    if (job.name) name = toExpressionString(evaluateToken(job.name, scope), 'name') || name;
  } catch {
    name = job.name?.toString() ?? name;
  }
  const usesMatrix = job.name !== undefined && JSON.stringify(job.name).includes('matrix');
  if (matrix && !usesMatrix) name += ` (${Object.values(matrix).map((v) => (typeof v === 'object' ? JSON.stringify(v) : toExpressionString(v, 'matrix'))).join(', ')})`;
  return name;
}

/** Runs the workflow a `uses:` job calls; returns the calling job's outputs (fills its record). */
async function callWorkflow(run: RunContext, scope: WorkflowScope, job: ReusableWorkflowJob, rec: JobRun, contexts: JsonObject): Promise<Record<string, string>> {
  const t0 = performance.now();
  const fail = (message: string): Record<string, string> => {
    const a = { level: 'error' as const, message, job: rec.id };
    rec.annotations.push(a);
    run.annotations.push(a);
    rec.result = 'failure';
    rec.seconds = (performance.now() - t0) / 1000;
    return {};
  };
  run.onProgress?.({ phase: 'job-start', job: rec.id });
  const called = await loadWorkflow(resolveWorkflowRef(job.ref.value, scope.wf.source, run.repos), run.repos);
  const definition = workflowCallDefinition(called);
  let given: JsonObject = {};
  let secrets: Record<string, string>;
  try {
    const withToken = job['input-values'];
    if (withToken && isMapping(withToken)) given = evaluateToken(withToken, { contexts }) as JsonObject;
    secrets = callSecrets(prop(definition, 'secrets'), job['inherit-secrets'] ? 'inherit' : evaluateStringMap(job['secret-values'], { contexts: { ...contexts, secrets: scope.secrets } }, 'secrets'), scope.secrets);
  } catch (e) {
    if (e instanceof UnsupportedError) throw e;
    return fail(`Error when evaluating the call of ${job.ref.value} by job '${rec.id}': ${(e as Error).message}`);
  }
  const { typed, errors } = callInputs(inputDefinitions(prop(definition, 'inputs')), given, { contexts: { github: scope.github, vars: scope.vars } });
  if (errors.length > 0) return fail(`The workflow ${job.ref.value} called by job '${rec.id}' is not valid: ${errors.join('; ')}`);
  const topPermissions = called.root.find('permissions');
  const nested: WorkflowScope = {
    wf: called,
    prefix: `${rec.id}/`,
    github: scope.github,
    inputs: typed,
    secrets,
    vars: scope.vars,
    permissions: topPermissions ? literalValue(topPermissions) : rec.permissions,
  };
  const results = await runWorkflowJobs(run, nested);
  const jobsCtx: JsonObject = {};
  for (const [k, v] of results) jobsCtx[k] = { result: v.result, outputs: v.outputs };
  const outputs: Record<string, string> = {};
  const outDefs = prop(definition, 'outputs');
  if (outDefs && isMapping(outDefs)) {
    for (const p of outDefs) {
      const value = prop(p.value, 'value');
      if (!value) continue;
      try {
        outputs[p.key.toString()] = toExpressionString(evaluateToken(value, { contexts: { github: scope.github, inputs: typed, vars: scope.vars, jobs: jobsCtx } }), `outputs.${p.key.toString()}`);
      } catch (e) {
        if (e instanceof UnsupportedError) throw e;
        fail(`Error when evaluating output '${p.key.toString()}' of ${job.ref.value}: ${(e as Error).message}`);
      }
    }
  }
  rec.outputs = outputs;
  const nestedResults = [...results.values()].map((r) => r.result);
  const result = rec.result === 'failure' ? 'failure' : nestedResults.includes('failure') ? 'failure' : nestedResults.includes('cancelled') || run.signal.aborted ? 'cancelled' : 'success';
  rec.result = result;
  rec.seconds = (performance.now() - t0) / 1000;
  run.onProgress?.({ phase: 'job-end', job: rec.id, result });
  return outputs;
}
