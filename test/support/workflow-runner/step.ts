/**
 * One step (and one post phase) for the workflow runner STAND-IN (a test double for the GitHub Actions
 * runner; see index.ts). It honours the step's `if:` (status functions included), `name`, `env`,
 * `continue-on-error`, `timeout-minutes` (the process group is killed; the step fails), `shell` and
 * `working-directory` (and the job's `defaults.run`), runs `run:` scripts from a temporary file with
 * GitHub's shells (unspecified: `bash -e {0}`; `bash`: `bash --noprofile --norc -eo pipefail {0}`; `sh`,
 * `python`, or a custom `cmd {0}`), local node actions and named stand-ins, processes the file commands
 * (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_STATE, GITHUB_STEP_SUMMARY) and records outcome,
 * conclusion, outputs, the masked log, annotations and wall time.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isActionStep, isRunStep } from '@actions/workflow-parser/model/type-guards';
import type { Step } from '@actions/workflow-parser/model/workflow-template';
import type { MappingToken } from '@actions/workflow-parser/templates/tokens/index';
import { actionInputs, ActionNotFoundError, inputEnv, loadLocalAction, type LocalAction } from './actions.js';
import { OutputProcessor, parseKeyValueFile, parsePathFile } from './commands.js';
import type { RunContext } from './context.js';
import { evaluateExpression, evaluateNumber, evaluateString, evaluateStringMap, evaluateToken, isTruthy, type Scope, type StatusFunctions } from './expressions.js';
import { runInProcessGroup, type ProcessGroups } from './process.js';
import { standInKey } from './standins.js';
import { UnsupportedError, type Annotation, type JsonObject, type JsonValue, type PostRun, type StepRun } from './types.js';

/** A job's state while its steps run (owned by job.ts). */
export interface JobState {
  run: RunContext;
  /** Display id (`build/detect`). */
  jobId: string;
  workspace: string;
  temp: string;
  github: JsonObject;
  /** The contexts every step sees (github, inputs, vars, secrets, needs, strategy, matrix, runner). */
  contexts: JsonObject;
  /** The env context: workflow env, job env, then GITHUB_ENV. */
  env: Record<string, string>;
  /** GITHUB_PATH entries, most recent first. */
  path: string[];
  steps: JsonObject;
  defaults: { shell?: string; workingDirectory?: string };
  /** GITHUB_* / RUNNER_* variables of the job. */
  runnerVars: Record<string, string>;
  permissions: JsonValue;
  failed: boolean;
  /** Aborted when the job is cancelled or times out. */
  signal: AbortSignal;
  /** The job's timeout-minutes ran out (the signal is aborted then too). */
  timedOut: boolean;
  groups: ProcessGroups;
  posts: PendingPost[];
  summary: string[];
  annotate(a: Annotation): void;
}

export interface PendingPost {
  step: StepRun;
  action: LocalAction;
  env: Record<string, string>;
  state: Record<string, string>;
}

/** Time a step may run after a cancellation (`if: always()` steps, post phases): the runner's 5 minutes. */
const AFTER_CANCEL_MS = 5 * 60_000;

export function jobStatus(js: JobState): StatusFunctions {
  return {
    success: () => !js.signal.aborted && !js.failed,
    failure: () => !js.signal.aborted && js.failed,
    cancelled: () => js.signal.aborted,
  };
}

function stepScope(js: JobState, stepId: string, env: Record<string, string>, actionPath = ''): Scope {
  const status = jobStatus(js);
  const jobStatusText = status.cancelled() ? 'cancelled' : js.failed ? 'failure' : 'success';
  return {
    contexts: { ...js.contexts, github: { ...js.github, action: stepId, action_path: actionPath }, job: { status: jobStatusText }, steps: js.steps, env },
    status,
  };
}

function shellCommand(shell: string | undefined, script: string): { command: string; args: string[] } {
  switch (shell) {
    case undefined:
      return { command: 'bash', args: ['-e', script] };
    case 'bash':
      return { command: 'bash', args: ['--noprofile', '--norc', '-eo', 'pipefail', script] };
    case 'sh':
      return { command: 'sh', args: ['-e', script] };
    case 'python':
      return { command: 'python', args: [script] };
    default: {
      const parts = shell.trim().split(/\s+/);
      if (!shell.includes('{0}') || ['pwsh', 'powershell', 'cmd'].includes(parts[0] ?? '')) throw new UnsupportedError(`shell: ${shell} is not implemented by the runner stand-in`);
      return { command: parts[0]!, args: parts.slice(1).map((p) => p.replace('{0}', script)) };
    }
  }
}

interface FileCommands {
  output: string;
  env: string;
  path: string;
  state: string;
  summary: string;
}

function fileCommands(js: JobState): FileCommands {
  const dir = join(js.temp, '_runner_file_commands');
  mkdirSync(dir, { recursive: true });
  const id = randomUUID();
  const f = { output: join(dir, `set_output_${id}`), env: join(dir, `set_env_${id}`), path: join(dir, `add_path_${id}`), state: join(dir, `save_state_${id}`), summary: join(dir, `step_summary_${id}`) };
  for (const p of Object.values(f)) writeFileSync(p, '');
  return f;
}

function processEnv(js: JobState, stepId: string, stepEnv: Record<string, string>, files: FileCommands): Record<string, string> {
  const run = js.run;
  const env: Record<string, string> = { ...run.baseEnv, ...js.runnerVars, GITHUB_ACTION: stepId, ...run.callerEnv, ...js.env, ...stepEnv };
  env['PATH'] = [...js.path, env['PATH'] ?? ''].filter((p) => p !== '').join(':');
  Object.assign(env, { GITHUB_OUTPUT: files.output, GITHUB_ENV: files.env, GITHUB_PATH: files.path, GITHUB_STATE: files.state, GITHUB_STEP_SUMMARY: files.summary });
  return env;
}

/** Runs a process for a step; returns its outcome (logging why it failed). */
async function execute(js: JobState, out: OutputProcessor, rec: StepRun, spec: { command: string; args: string[]; cwd: string; env: Record<string, string>; timeoutMinutes?: number; label: string }): Promise<'success' | 'failure' | 'cancelled'> {
  if (!existsSync(spec.cwd) || !statSync(spec.cwd).isDirectory()) {
    out.error(`An error occurred trying to start process '${spec.command}' with working directory '${spec.cwd}'. No such file or directory`);
    return 'failure';
  }
  // After a cancellation (if: always() steps, posts) a step still gets the runner's cancel timeout.
  const afterCancel = js.signal.aborted;
  const stepMs = spec.timeoutMinutes !== undefined ? spec.timeoutMinutes * 60_000 : undefined;
  const timeoutMs = afterCancel ? Math.min(stepMs ?? AFTER_CANCEL_MS, AFTER_CANCEL_MS) : stepMs;
  const r = await runInProcessGroup(
    {
      command: spec.command,
      args: spec.args,
      cwd: spec.cwd,
      env: spec.env,
      timeoutMs,
      signal: afterCancel ? undefined : js.signal,
      graceMs: js.run.killGraceMs,
      onOutput: (s, d) => out.write(s, d),
    },
    js.groups,
  );
  out.end();
  rec.exitCode = r.exitCode ?? undefined;
  if (r.startError) {
    out.error(`An error occurred trying to start process '${spec.command}' with working directory '${spec.cwd}'. ${r.startError}`);
    return 'failure';
  }
  if (r.timedOut) {
    rec.timedOut = true;
    out.error(`The action '${spec.label}' has timed out after ${(timeoutMs ?? 0) / 60_000} minutes.`);
    return 'failure';
  }
  if (r.cancelled) {
    rec.timedOut = js.timedOut;
    out.note('##[error]The operation was canceled.');
    return 'cancelled';
  }
  if (r.exitCode !== 0) {
    out.error(r.exitCode === null ? `Process was killed by ${r.signal}.` : `Process completed with exit code ${r.exitCode}.`);
    return 'failure';
  }
  return 'success';
}

/** Reads the file commands of a step into the job (env, path, summary); returns its outputs and state. */
function applyFileCommands(js: JobState, out: OutputProcessor, files: FileCommands, applyEnv: boolean): { outputs: Record<string, string>; state: Record<string, string>; ok: boolean } {
  let ok = true;
  const read = (p: string, name: string): Record<string, string> => {
    try {
      return parseKeyValueFile(readFileSync(p, 'utf8'), name);
    } catch (e) {
      out.error((e as Error).message);
      ok = false;
      return {};
    }
  };
  const outputs = read(files.output, 'GITHUB_OUTPUT');
  const state = read(files.state, 'GITHUB_STATE');
  if (applyEnv) {
    for (const [k, v] of Object.entries(read(files.env, 'GITHUB_ENV'))) {
      if (k.toUpperCase() === 'NODE_OPTIONS') out.error("Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.");
      else js.env[k] = v;
    }
    for (const p of parsePathFile(readFileSync(files.path, 'utf8'))) {
      js.path = [p, ...js.path.filter((x) => x !== p)];
    }
  }
  const summary = readFileSync(files.summary, 'utf8');
  if (summary.trim() !== '') js.summary.push(js.run.masker.mask(summary));
  return { outputs, state, ok };
}

function defaultName(step: Step): string {
  if (isRunStep(step)) return `Run ${(step.run.toString().split('\n')[0] ?? '').trim()}`;
  if (isActionStep(step)) return `Run ${step.uses.value}`;
  return step.id;
}

/** Runs one step of a job and records it in the job's steps context. */
export async function runStep(js: JobState, step: Step, raw: MappingToken): Promise<StepRun> {
  const t0 = performance.now();
  const run = js.run;
  const rec: StepRun = { id: step.id, name: defaultName(step), outcome: 'skipped', conclusion: 'skipped', outputs: {}, log: '', annotations: [], seconds: 0, timedOut: false };
  if (isActionStep(step)) rec.uses = step.uses.value;
  else if (!isRunStep(step)) throw new UnsupportedError(`step ${step.id}: only run: and uses: steps are implemented by the runner stand-in`);
  const out = new OutputProcessor(run.masker, { job: js.jobId, step: step.id }, (a) => (rec.annotations.push(a), js.annotate(a)), run.onLog ? (l) => run.onLog!(js.jobId, l) : undefined);
  const finish = (): StepRun => {
    rec.log = out.log;
    rec.seconds = (performance.now() - t0) / 1000;
    if (!step.id.startsWith('__')) js.steps[step.id] = { outputs: rec.outputs, outcome: rec.outcome, conclusion: rec.conclusion };
    run.onProgress?.({ phase: 'step-end', job: js.jobId, step: rec.name, stepId: rec.id, result: rec.conclusion });
    return rec;
  };
  const fail = (e: unknown): StepRun => {
    if (e instanceof UnsupportedError) throw e;
    out.error((e as Error).message);
    rec.outcome = 'failure';
    rec.conclusion = 'failure';
    js.failed = true;
    return finish();
  };
  let scope = stepScope(js, step.id, js.env);
  try {
    if (step.name) rec.name = evaluateString(step.name, scope, 'name') ?? rec.name;
  } catch {
    // the runner keeps the unevaluated name
  }
  let wanted: boolean;
  try {
    wanted = isTruthy(evaluateToken(step.if!, scope));
  } catch (e) {
    return fail(new Error(`Error when evaluating 'if' for step '${rec.name}': ${(e as Error).message}`));
  }
  if (!wanted) return finish();
  run.onProgress?.({ phase: 'step-start', job: js.jobId, step: rec.name, stepId: rec.id });
  let continueOnError = false;
  let outcome: 'success' | 'failure' | 'cancelled';
  try {
    const stepEnv = evaluateStringMap(step.env, scope, 'env');
    scope = stepScope(js, step.id, { ...js.env, ...stepEnv });
    const coe = step['continue-on-error'];
    continueOnError = typeof coe === 'boolean' ? coe : coe !== undefined ? isTruthy(evaluateToken(coe, scope)) : false;
    const timeoutMinutes = evaluateNumber(raw.find('timeout-minutes'), scope, 'timeout-minutes');
    const files = fileCommands(js);
    const env = processEnv(js, step.id, stepEnv, files);
    let applyEnv = true;
    let state: Record<string, string> = {};
    if (isRunStep(step)) {
      const shell = evaluateString(raw.find('shell'), scope, 'shell') ?? js.defaults.shell;
      const cwd = resolve(js.workspace, evaluateString(raw.find('working-directory'), scope, 'working-directory') ?? js.defaults.workingDirectory ?? '.');
      const script = join(js.temp, `${randomUUID()}.${shell === 'python' ? 'py' : 'sh'}`);
      writeFileSync(script, evaluateString(step.run, scope, 'run') ?? '');
      outcome = await execute(js, out, rec, { ...shellCommand(shell, script), cwd, env, timeoutMinutes, label: rec.name });
    } else {
      const uses = step.uses.value;
      const withValues = evaluateStringMap(raw.find('with'), scope, 'with');
      if (uses.startsWith('./')) {
        let action: LocalAction;
        try {
          action = loadLocalAction(js.workspace, uses);
        } catch (e) {
          if (e instanceof ActionNotFoundError) return fail(e);
          throw e;
        }
        const { inputs, warning } = actionInputs(action, withValues, stepScope(js, step.id, scope.contexts['env'] as Record<string, string>, action.dir));
        if (warning) js.annotate({ level: 'warning', message: warning, job: js.jobId, step: step.id });
        Object.assign(env, inputEnv(inputs), { GITHUB_ACTION_PATH: action.dir, GITHUB_ACTION_REPOSITORY: '' });
        outcome = await execute(js, out, rec, { command: process.execPath, args: [join(action.dir, action.runs.main)], cwd: js.workspace, env, timeoutMinutes, label: rec.name });
        const pending: PendingPost = { step: rec, action, env, state: {} };
        if (action.runs.post) js.posts.push(pending);
        state = pending.state;
      } else if (uses.startsWith('docker://')) {
        throw new UnsupportedError(`${uses}: Docker actions are not implemented by the runner stand-in`);
      } else {
        const standIn = run.standins[standInKey(uses)];
        if (!standIn) throw new UnsupportedError(`no stand-in for the action '${uses}'`);
        applyEnv = false;
        try {
          const res = await standIn({
            uses,
            inputs: withValues,
            env,
            workspace: js.workspace,
            runnerTemp: js.temp,
            runDir: run.runDir,
            github: js.github,
            repositories: run.repos,
            permissions: js.permissions,
            signal: js.signal,
            log: (l) => out.note(l),
            annotate: (level, message) => {
              const a: Annotation = { level, message: run.masker.mask(message), job: js.jobId, step: step.id };
              rec.annotations.push(a);
              js.annotate(a);
            },
            attest: (s) => run.attestations.push({ job: js.jobId, step: step.id, ...s }),
          });
          rec.outputs = res?.outputs ?? {};
          outcome = 'success';
        } catch (e) {
          if (e instanceof UnsupportedError) throw e;
          out.error((e as Error).message);
          outcome = 'failure';
        }
      }
    }
    const fc = applyFileCommands(js, out, files, applyEnv);
    rec.outputs = { ...rec.outputs, ...fc.outputs };
    Object.assign(state, fc.state);
    if (!fc.ok && outcome === 'success') outcome = 'failure';
  } catch (e) {
    if (e instanceof UnsupportedError) throw e;
    out.error((e as Error).message);
    outcome = 'failure';
  }
  rec.outcome = outcome;
  rec.conclusion = outcome === 'failure' && continueOnError ? 'success' : outcome;
  if (rec.conclusion === 'failure') js.failed = true;
  return finish();
}

/** Runs the post phase of a node action (`post-if`, default always()), with the main step's state. */
export async function runPost(js: JobState, p: PendingPost): Promise<PostRun> {
  const t0 = performance.now();
  const rec: PostRun = { name: `Post ${p.step.name}`, step: p.step.id, outcome: 'skipped', code: null, log: '', annotations: [], seconds: 0 };
  const out = new OutputProcessor(js.run.masker, { job: js.jobId, step: p.step.id }, (a) => (rec.annotations.push(a), js.annotate(a)), js.run.onLog ? (l) => js.run.onLog!(js.jobId, l) : undefined);
  const condition = p.action.runs.postIf ?? 'always()';
  let wanted: boolean;
  try {
    wanted = isTruthy(evaluateExpression(condition, stepScope(js, p.step.id, js.env, p.action.dir)));
  } catch (e) {
    if (e instanceof UnsupportedError) throw e;
    out.error(`Error when evaluating 'post-if' for step '${rec.name}': ${(e as Error).message}`);
    wanted = false;
    rec.outcome = 'failure';
  }
  if (wanted) {
    const files = fileCommands(js);
    const env: Record<string, string> = { ...p.env, GITHUB_OUTPUT: files.output, GITHUB_ENV: files.env, GITHUB_PATH: files.path, GITHUB_STATE: files.state, GITHUB_STEP_SUMMARY: files.summary };
    for (const [k, v] of Object.entries(p.state)) env[`STATE_${k}`] = v;
    const stepRec: StepRun = { ...p.step, annotations: [], timedOut: false, exitCode: undefined };
    const outcome = await execute(js, out, stepRec, { command: process.execPath, args: [join(p.action.dir, p.action.runs.post!)], cwd: js.workspace, env, label: rec.name });
    applyFileCommands(js, out, files, false);
    rec.code = stepRec.exitCode ?? null;
    rec.outcome = outcome === 'success' ? 'success' : 'failure';
  }
  if (rec.outcome === 'failure') js.failed = true;
  rec.log = out.log;
  rec.seconds = (performance.now() - t0) / 1000;
  return rec;
}
