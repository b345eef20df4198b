/**
 * A STAND-IN for GitHub Actions, for tests: it runs WHOLE workflows of a local git repository (the ones
 * users start: build-on-demand.yml and release.yml with the reusable build.yml they call, the template
 * copies, the self-test), as GitHub would, on this machine. It is a test double, not a runner: it is built
 * on GitHub's own workflow parser (@actions/workflow-parser: schema validation, the workflow model,
 * reusable-workflow fetching) and expression evaluator (@actions/expressions), and whatever it cannot
 * honour faithfully is a thrown UnsupportedError, never a silent skip.
 *
 * It honours: event acceptance and push branch/tag filters; typed workflow_dispatch and workflow_call
 * inputs; secrets (masked) and vars; jobs in `needs` order with `if:`, outputs, `strategy.matrix`,
 * `runs-on` against the runners the caller declares, `timeout-minutes` (jobs and steps, enforced by
 * killing process groups), `env` / `defaults.run` / `working-directory` / `shell`, `continue-on-error`,
 * status functions; `uses: ./action` node actions with post phases; named stand-ins for third-party
 * actions (standins.ts); workflow commands and file commands; a fresh workspace and RUNNER_TEMP per job;
 * cancellation through an AbortSignal. Module map: parse.ts (load, validate, convert), expressions.ts,
 * commands.ts, process.ts, context.ts, triggers.ts, inputs.ts, actions.ts, standins.ts, step.ts,
 * job.ts, workflow.ts, report.ts, repos.ts, types.ts.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Masker } from './commands.js';
import { defaultPayload, fakeToken, githubContext, mergePayload, type RunContext, type RunProgress } from './context.js';
import { evaluateString, literalValue } from './expressions.js';
import { dispatchInputs, inputDefinitions } from './inputs.js';
import { loadWorkflow, prop, type LoadedWorkflow } from './parse.js';
import { Repositories, resolveCommit } from './repos.js';
import { defaultStandIns, type StandIn } from './standins.js';
import { decideTrigger } from './triggers.js';
import { runWorkflowJobs } from './workflow.js';
import type { JobRun, JsonObject, WorkflowRun } from './types.js';

export type { Annotation, Attestation, JobResult, JobRun, JsonObject, JsonValue, PostRun, StepResult, StepRun, WorkflowRun } from './types.js';
export { UnsupportedError } from './types.js';
export type { StandIn, StandInContext, StandInResult } from './standins.js';
export { defaultStandIns } from './standins.js';
export type { RunProgress } from './context.js';
export { snapshotWorkingTree } from './repos.js';
export { failureReport, formatTimings } from './report.js';
export { filterPatternToRegExp, matchesFilters } from './triggers.js';

export interface RunWorkflowEvent {
  /** `push`, `workflow_dispatch`, `pull_request`, … */
  name: string;
  /** `refs/heads/main`, `refs/tags/v1.4.0`, … */
  ref: string;
  /** The commit the run is for (default: HEAD of repoDir); the workflow file is read at this commit. */
  sha?: string;
  /** Merged over the default payload of the event. */
  payload?: JsonObject;
  /** workflow_dispatch inputs. */
  inputs?: Record<string, string | boolean | number>;
}

export interface RunWorkflowOptions {
  /** The workflow file, relative to the repository (`.github/workflows/build-on-demand.yml`). */
  workflow: string;
  /** The repository under test (a git repository). */
  repoDir: string;
  /** Its `owner/name` on GitHub (default `owner/labforge`). */
  repository?: string;
  event: RunWorkflowEvent;
  vars?: Record<string, string>;
  /** Repository secrets (each is masked in all output); GITHUB_TOKEN is added. */
  secrets?: Record<string, string>;
  /** The value of `github.token` / `secrets.GITHUB_TOKEN` (e.g. one an API stand-in accepts); default a fake one. Masked. */
  githubToken?: string;
  /** Other repositories, `owner/name` → local git repository, for actions/checkout and reusable workflows. */
  repositories?: Record<string, string>;
  /** The runners available, as label sets (default: one `ubuntu-latest`). */
  runners?: string[][];
  /** Variables every step gets on top of PATH, HOME and LANG (e.g. GITHUB_API_URL of an API stand-in). */
  env?: Record<string, string>;
  /** Where jobs get their workspaces and artifacts go (default: a new temporary directory); kept after the run. */
  runDir?: string;
  /** Cancels the run: the running step's process group gets SIGTERM, then SIGKILL. */
  signal?: AbortSignal;
  /** Stand-ins for third-party actions, by `owner/name`, added to or replacing the defaults. */
  standins?: Record<string, StandIn>;
  /** Run only these top-level jobs (they must not need others). */
  jobs?: string[];
  /** Between SIGTERM and SIGKILL when a step is stopped (default 3000 ms). */
  killGraceMs?: number;
  /** Called as jobs and steps start and end. */
  onProgress?: (p: RunProgress) => void;
  /** Called with each (masked) log line of a step as it is printed. */
  onLog?: (job: string, line: string) => void;
}

function conclusionOf(jobs: JobRun[], cancelled: boolean): WorkflowRun['conclusion'] {
  if (cancelled) return 'cancelled';
  const top = jobs.filter((j) => !j.id.includes('/'));
  if (top.some((j) => j.result === 'failure' || (j.result === 'cancelled' && j.timedOut))) return 'failure';
  if (top.some((j) => j.result === 'cancelled')) return 'cancelled';
  if (top.length > 0 && top.every((j) => j.result === 'skipped')) return 'skipped';
  return 'success';
}

function evaluateTop(wf: LoadedWorkflow, key: string, contexts: JsonObject): string | undefined {
  const token = key === 'concurrency' ? (prop(wf.root.find('concurrency'), 'group') ?? wf.root.find('concurrency')) : wf.root.find(key);
  return evaluateString(token, { contexts }, key);
}

/** Runs a workflow for an event, as GitHub would, and reports what happened. */
export async function runWorkflow(opts: RunWorkflowOptions): Promise<WorkflowRun> {
  const t0 = performance.now();
  const repoDir = resolve(opts.repoDir);
  const repository = opts.repository ?? 'owner/labforge';
  const repos = new Repositories({ [repository]: repoDir, ...opts.repositories });
  const sha = opts.event.sha ? resolveCommit(repoDir, opts.event.sha) : resolveCommit(repoDir, 'HEAD');
  if (!sha) throw new Error(`${repoDir}: no commit ${opts.event.sha ?? 'HEAD'}`);
  const wf = await loadWorkflow({ repository, dir: repoDir, sha, path: opts.workflow }, repos);
  const runDir = resolve(opts.runDir ?? mkdtempSync(join(tmpdir(), 'labforge-workflow-run-')));
  const actor = 'standin-actor';
  const dispatchDefs = opts.event.name === 'workflow_dispatch' ? inputDefinitions(prop(prop(wf.root.find('on'), 'workflow_dispatch'), 'inputs')) : [];
  if (opts.event.name !== 'workflow_dispatch' && opts.event.inputs) throw new Error(`inputs are given, but the event is ${opts.event.name}, not workflow_dispatch`);
  const payloadBase = defaultPayload(opts.event.name, opts.event.ref, sha, repository, actor, opts.workflow, {});
  const decision = decideTrigger(wf.template.events, opts.event.name, opts.event.ref, mergePayload(payloadBase, opts.event.payload ?? {}), opts.workflow);
  const base: WorkflowRun = { triggered: decision.triggered, name: wf.name, runName: wf.name, conclusion: 'skipped', jobs: [], outputs: {}, annotations: [], attestations: [], runDir, seconds: 0 };
  if (!decision.triggered) return { ...base, notTriggeredReason: decision.reason, seconds: (performance.now() - t0) / 1000 };
  const dispatch = dispatchInputs(dispatchDefs, opts.event.inputs ?? {});
  const payload = mergePayload(defaultPayload(opts.event.name, opts.event.ref, sha, repository, actor, opts.workflow, dispatch.strings), opts.event.payload ?? {});

  mkdirSync(join(runDir, 'artifacts'), { recursive: true });
  mkdirSync(join(runDir, 'tool-cache'), { recursive: true });
  const eventPath = join(runDir, 'event.json');
  writeFileSync(eventPath, JSON.stringify(payload, null, 2));
  const token = opts.githubToken ?? fakeToken();
  const secrets: Record<string, string> = { ...opts.secrets, GITHUB_TOKEN: token };
  const masker = new Masker();
  for (const v of Object.values(secrets)) masker.add(v);
  const apiUrl = opts.env?.['GITHUB_API_URL'] ?? 'https://api.github.com';
  const github = githubContext({ eventName: opts.event.name, ref: opts.event.ref, sha, repository, payload, token, workflow: wf, apiUrl, runId: String(Date.now()), runNumber: 1, actor, eventPath });
  const signal = opts.signal ?? new AbortController().signal;
  const run: RunContext = {
    runDir,
    eventPath,
    toolCache: join(runDir, 'tool-cache'),
    masker,
    repos,
    standins: { ...defaultStandIns, ...Object.fromEntries(Object.entries(opts.standins ?? {}).map(([k, v]) => [k.toLowerCase(), v])) },
    runners: opts.runners ?? [['ubuntu-latest']],
    github,
    baseEnv: Object.fromEntries(['PATH', 'HOME', 'LANG'].filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!])),
    callerEnv: { ...opts.env },
    annotations: base.annotations,
    attestations: base.attestations,
    jobs: base.jobs,
    signal,
    killGraceMs: opts.killGraceMs ?? 3000,
    onProgress: opts.onProgress,
    onLog: opts.onLog,
    sequence: 0,
  };
  const topContexts: JsonObject = { github, inputs: dispatch.typed, vars: { ...opts.vars } };
  base.runName = evaluateTop(wf, 'run-name', topContexts) || wf.name;
  base.concurrency = evaluateTop(wf, 'concurrency', topContexts);
  const permissionsToken = wf.root.find('permissions');
  await runWorkflowJobs(
    run,
    { wf, prefix: '', github, inputs: dispatch.typed, secrets, vars: { ...opts.vars }, permissions: permissionsToken ? literalValue(permissionsToken) : null },
    opts.jobs,
  );
  return { ...base, conclusion: conclusionOf(base.jobs, signal.aborted), seconds: (performance.now() - t0) / 1000 };
}
