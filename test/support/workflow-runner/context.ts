/**
 * The run's shared state for the workflow runner STAND-IN (a test double for GitHub; see index.ts): the
 * run directory (event payload, artifacts, a directory per job), the masker, the repositories, the
 * runners, and the `github` context and the GITHUB_* / RUNNER_* environment as the runner sets them for
 * each job and step. The parent's environment is not inherited except PATH, HOME and LANG, plus what the
 * caller passes in its `env` option.
 */
import { randomBytes } from 'node:crypto';
import { arch } from 'node:os';
import { join } from 'node:path';
import { Masker } from './commands.js';
import type { LoadedWorkflow } from './parse.js';
import type { Repositories } from './repos.js';
import type { StandIn } from './standins.js';
import type { Annotation, Attestation, JobRun, JsonObject, JsonValue } from './types.js';

/** A progress notice (for logs of long smoke runs, or to abort at a chosen point). */
export interface RunProgress {
  phase: 'job-start' | 'job-end' | 'step-start' | 'step-end';
  job: string;
  /** The step's name and id. */
  step?: string;
  stepId?: string;
  result?: string;
}

export interface RunContext {
  runDir: string;
  eventPath: string;
  toolCache: string;
  masker: Masker;
  repos: Repositories;
  standins: Record<string, StandIn>;
  runners: string[][];
  /** The `github` context of the run (per job, `job`, `workspace` and `action` are added). */
  github: JsonObject;
  /** PATH, HOME, LANG of the parent (nothing else of its environment reaches a step). */
  baseEnv: Record<string, string>;
  /** The caller's `env` option: over the runner's variables, under the workflow's env. */
  callerEnv: Record<string, string>;
  annotations: Annotation[];
  attestations: Attestation[];
  jobs: JobRun[];
  /** Aborted when the run is cancelled. */
  signal: AbortSignal;
  killGraceMs: number;
  onProgress?: (p: RunProgress) => void;
  /** Echo step log lines (masked) to this function as they come. */
  onLog?: (job: string, line: string) => void;
  /** Counter for runner names and job directories. */
  sequence: number;
}

/** The fake installation token: `github.token` and `secrets.GITHUB_TOKEN`, masked like any secret. */
export function fakeToken(): string {
  return `ghs_standin${randomBytes(15).toString('hex')}`;
}

/** `refs/heads/main` → main, `refs/tags/v1` → v1, `refs/pull/7/merge` → 7/merge. */
export function refName(ref: string): string {
  return ref.replace(/^refs\/(heads|tags|pull)\//, '');
}

export function refType(ref: string): 'tag' | 'branch' {
  return ref.startsWith('refs/tags/') ? 'tag' : 'branch';
}

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of the caller's payload over the default one (arrays and scalars replace). */
export function mergePayload(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? mergePayload(b, v) : v;
  }
  return out;
}

/** The event payload GitHub would send, minimal but with the fields workflows and actions read. */
export function defaultPayload(event: string, ref: string, sha: string, repository: string, actor: string, workflowPath: string, stringInputs: Record<string, string>): JsonObject {
  const [owner = '', name = ''] = repository.split('/');
  const repo: JsonObject = { full_name: repository, name, owner: { login: owner }, default_branch: 'main', fork: false, html_url: `https://github.com/${repository}`, private: false };
  const common: JsonObject = { repository: repo, sender: { login: actor } };
  switch (event) {
    case 'push':
      return { ...common, ref, before: '0'.repeat(40), after: sha, created: false, deleted: false, forced: false, base_ref: null, head_commit: { id: sha }, pusher: { name: actor } };
    case 'workflow_dispatch':
      return { ...common, ref, inputs: stringInputs, workflow: workflowPath };
    case 'pull_request':
    case 'pull_request_target':
      return { ...common, action: 'opened', number: 1, pull_request: { number: 1, head: { ref: 'feature', sha, repo: { ...repo, fork: false } }, base: { ref: 'main', repo } } };
    default:
      return common;
  }
}

export interface GithubContextInput {
  eventName: string;
  ref: string;
  sha: string;
  repository: string;
  payload: JsonObject;
  token: string;
  workflow: LoadedWorkflow;
  apiUrl: string;
  runId: string;
  runNumber: number;
  actor: string;
  eventPath: string;
}

/** The `github` context of the run. */
export function githubContext(i: GithubContextInput): JsonObject {
  const pr = isPlainObject(i.payload['pull_request']) ? i.payload['pull_request'] : undefined;
  const prRef = (side: 'base' | 'head'): string => {
    const s = pr?.[side];
    return isPlainObject(s) && typeof s['ref'] === 'string' ? s['ref'] : '';
  };
  const server = 'https://github.com';
  return {
    event_name: i.eventName,
    event: i.payload,
    event_path: i.eventPath,
    ref: i.ref,
    ref_name: refName(i.ref),
    ref_type: refType(i.ref),
    ref_protected: false,
    base_ref: pr ? prRef('base') : '',
    head_ref: pr ? prRef('head') : '',
    sha: i.sha,
    repository: i.repository,
    repository_owner: i.repository.split('/')[0] ?? '',
    repositoryUrl: `git://github.com/${i.repository}.git`,
    workspace: '',
    token: i.token,
    run_id: i.runId,
    run_number: String(i.runNumber),
    run_attempt: '1',
    retention_days: '90',
    actor: i.actor,
    triggering_actor: i.actor,
    server_url: server,
    api_url: i.apiUrl,
    graphql_url: i.apiUrl.replace(/\/?$/, '') + '/graphql',
    workflow: i.workflow.name,
    workflow_ref: `${i.repository}/${i.workflow.source.path}@${i.ref}`,
    workflow_sha: i.sha,
    job: '',
    action: '',
    action_path: '',
  };
}

const GITHUB_HOSTED = /^(ubuntu|windows|macos)-(latest|\d[\w.-]*)$/i;

/** Whether a runner's label set is a GitHub-hosted runner (`ubuntu-latest`, `ubuntu-24.04`, …). */
export function isGithubHosted(labels: string[]): boolean {
  return labels.some((l) => GITHUB_HOSTED.test(l));
}

/** The first runner whose labels include all of the job's (case-insensitively), or undefined. */
export function pickRunner(runners: string[][], wanted: string[]): string[] | undefined {
  return runners.find((r) => wanted.every((w) => r.some((l) => l.toLowerCase() === w.toLowerCase())));
}

/** The `runner` context of a job. */
export function runnerContext(runner: string[], name: string, temp: string, toolCache: string): JsonObject {
  return { name, os: 'Linux', arch: arch() === 'arm64' ? 'ARM64' : 'X64', temp, tool_cache: toolCache, environment: isGithubHosted(runner) ? 'github-hosted' : 'self-hosted', debug: '' };
}

/** The GITHUB_* / RUNNER_* variables the runner gives every step of a job. */
export function runnerEnv(github: JsonObject, runner: JsonObject, workspace: string): Record<string, string> {
  const s = (k: string) => {
    const v: JsonValue | undefined = github[k];
    return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
  };
  const r = (k: string) => String(runner[k] ?? '');
  return {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    GITHUB_EVENT_PATH: s('event_path'),
    GITHUB_EVENT_NAME: s('event_name'),
    GITHUB_REF: s('ref'),
    GITHUB_REF_NAME: s('ref_name'),
    GITHUB_REF_TYPE: s('ref_type'),
    GITHUB_REF_PROTECTED: 'false',
    GITHUB_BASE_REF: s('base_ref'),
    GITHUB_HEAD_REF: s('head_ref'),
    GITHUB_SHA: s('sha'),
    GITHUB_REPOSITORY: s('repository'),
    GITHUB_REPOSITORY_OWNER: s('repository_owner'),
    GITHUB_RUN_ID: s('run_id'),
    GITHUB_RUN_NUMBER: s('run_number'),
    GITHUB_RUN_ATTEMPT: s('run_attempt'),
    GITHUB_RETENTION_DAYS: s('retention_days'),
    GITHUB_ACTOR: s('actor'),
    GITHUB_TRIGGERING_ACTOR: s('triggering_actor'),
    GITHUB_WORKFLOW: s('workflow'),
    GITHUB_WORKFLOW_REF: s('workflow_ref'),
    GITHUB_WORKFLOW_SHA: s('workflow_sha'),
    GITHUB_JOB: s('job'),
    GITHUB_SERVER_URL: s('server_url'),
    GITHUB_API_URL: s('api_url'),
    GITHUB_GRAPHQL_URL: s('graphql_url'),
    RUNNER_OS: r('os'),
    RUNNER_ARCH: r('arch'),
    RUNNER_NAME: r('name'),
    RUNNER_TEMP: r('temp'),
    RUNNER_TOOL_CACHE: r('tool_cache'),
    RUNNER_ENVIRONMENT: r('environment'),
    RUNNER_WORKSPACE: join(workspace, '..'),
  };
}
