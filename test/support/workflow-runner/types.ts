/**
 * The result types of the workflow runner STAND-IN (a test double for the GitHub Actions runner and the
 * Actions service that schedules jobs; see index.ts). Everything a test or a benchmark reads from a run is
 * declared here: the run, its jobs (nested reusable-workflow jobs with ids like `build/detect`), their steps
 * and post phases, annotations, attestations and wall times.
 */

/** A JSON value, the shape of every expression context and result. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A job's result, as `needs.<job>.result` reports it. */
export type JobResult = 'success' | 'failure' | 'cancelled' | 'skipped';
/** A step's outcome or conclusion, as `steps.<id>.outcome` / `.conclusion` report them. */
export type StepResult = 'success' | 'failure' | 'cancelled' | 'skipped';

/**
 * Thrown for anything the stand-in cannot honour faithfully (a construct, a function, an action without a
 * stand-in, a parse error of the workflow): a run never passes by skipping what it does not understand.
 */
export class UnsupportedError extends Error {
  override name = 'UnsupportedError';
}

/** An `::error` / `::warning` / `::notice` workflow command (or one the runner itself raised). */
export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  message: string;
  title?: string;
  file?: string;
  line?: number;
  endLine?: number;
  col?: number;
  endColumn?: number;
  /** Job id (nested: `build/detect`). */
  job: string;
  /** Step id (the `id:` or the runner's generated `__run`, `__actions_checkout`, …); absent for job-level ones. */
  step?: string;
}

/** What the attest-build-provenance stand-in was asked to attest. */
export interface Attestation {
  job: string;
  step: string;
  subjectName: string;
  /** `sha256:<hex>`, checked against the file when a path was given. */
  digest: string;
  path?: string;
}

export interface StepRun {
  /** The step's `id:`, or the id the runner generates (`__run`, `__run_2`, `__actions_checkout`, `__self`). */
  id: string;
  name: string;
  /** The `uses:` of an action step. */
  uses?: string;
  /** Before continue-on-error (`steps.<id>.outcome`). */
  outcome: StepResult;
  /** After continue-on-error (`steps.<id>.conclusion`). */
  conclusion: StepResult;
  outputs: Record<string, string>;
  /** What the step printed (stdout and stderr interleaved), secrets and add-mask values replaced by `***`,
   * workflow commands shown as the runner logs them (`##[error]…`, `##[group]…`). */
  log: string;
  annotations: Annotation[];
  seconds: number;
  /** Killed by its own or the job's `timeout-minutes`. */
  timedOut: boolean;
  exitCode?: number;
}

export interface PostRun {
  /** `Post <step name>`. */
  name: string;
  /** Id of the step whose post phase this is. */
  step: string;
  outcome: 'success' | 'failure' | 'skipped';
  /** Exit code of the post process (null when it did not run or was killed by a signal). */
  code: number | null;
  log: string;
  annotations: Annotation[];
  seconds: number;
}

export interface JobRun {
  /** Job id; jobs of a called workflow are `<caller job>/<job>`. */
  id: string;
  /** The evaluated `name:` (matrix jobs: `name (v1, v2)`). */
  name: string;
  /** The matrix combination of a matrix job. */
  matrix?: JsonObject;
  result: JobResult;
  /** The evaluated `runs-on` labels (empty for a job that calls a reusable workflow or was skipped). */
  runsOn: string[];
  /** The runner (label set given by the caller) that took the job. */
  runner?: string[];
  /** The job's `permissions:` (else the workflow's), as written; null when neither declares any. */
  permissions: JsonValue;
  /** The evaluated `concurrency.group`, when the job has one. */
  concurrency?: string;
  /** `uses:` of a job that calls a reusable workflow. */
  uses?: string;
  outputs: Record<string, string>;
  steps: StepRun[];
  posts: PostRun[];
  /** The step summaries (GITHUB_STEP_SUMMARY) in step order, masked. */
  summary: string;
  /** Job-level annotations (a missing runner, a timeout, an evaluation error) and those of every step. */
  annotations: Annotation[];
  /** The job was stopped by its `timeout-minutes` (its result is then `cancelled`, as on GitHub). */
  timedOut: boolean;
  /** The job's workspace directory (kept after the run). */
  workspace?: string;
  seconds: number;
}

export interface WorkflowRun {
  /** False when the event's filters (e.g. `push.tags`) do not select this ref; nothing ran then. */
  triggered: boolean;
  /** Why the run was not triggered. */
  notTriggeredReason?: string;
  /** The workflow's `name:` and evaluated `run-name:`. */
  name: string;
  runName: string;
  /** The evaluated workflow-level `concurrency.group`, when there is one. */
  concurrency?: string;
  conclusion: 'success' | 'failure' | 'cancelled' | 'skipped';
  /** In run order; a job that calls a reusable workflow comes before the jobs it ran. */
  jobs: JobRun[];
  /** The workflow's `on.workflow_call.outputs` when it is itself called; empty for a root run. */
  outputs: Record<string, string>;
  annotations: Annotation[];
  attestations: Attestation[];
  runDir: string;
  seconds: number;
}
