/**
 * Loading workflows for the workflow runner STAND-IN (a test double for GitHub; see index.ts), with
 * GitHub's own parser (@actions/workflow-parser): the file is read from a local repository at a commit,
 * validated against the workflow schema (expressions included: an unknown function or context is an error
 * there), converted to the workflow model, and the reusable workflows it calls (`./.github/workflows/X.yml`
 * or `OWNER/REPO/.github/workflows/X.yml@REF`) are fetched through a FileProvider over the caller's local
 * repositories and validated with it (their inputs and secrets against the call). Every error the parser
 * reports fails the load. Keys the converter does not model (permissions, defaults, timeout-minutes,
 * working-directory, with, …) are read from the parsed token tree; keys the stand-in cannot honour
 * (containers, services, environments, background steps, …) are refused here, before anything runs.
 */
import { convertWorkflowTemplate, isMapping, isSequence, isString, NoOperationTraceWriter, parseWorkflow, type WorkflowTemplate } from '@actions/workflow-parser';
import type { FileProvider } from '@actions/workflow-parser/workflows/file-provider';
import type { FileReference } from '@actions/workflow-parser/workflows/file-reference';
import type { MappingToken, TemplateToken } from '@actions/workflow-parser/templates/tokens/index';
import { readFileAt, resolveCommit, type Repositories } from './repos.js';
import { UnsupportedError } from './types.js';

/** Where a workflow file comes from: a path in a local repository at a commit. */
export interface WorkflowSource {
  /** `owner/name` of the repository on GitHub. */
  repository: string;
  /** The local git repository standing in for it. */
  dir: string;
  sha: string;
  /** Path of the workflow file in the repository. */
  path: string;
}

export interface LoadedWorkflow {
  source: WorkflowSource;
  /** The workflow's `name:` (else its path, as GitHub shows it). */
  name: string;
  /** The converted model (events, jobs with their steps, called workflows' jobs). */
  template: WorkflowTemplate;
  /** The parsed token tree, for the keys the model leaves out. */
  root: MappingToken;
}

/** `owner/repo/path@ref` or `./path` → the source it names, relative to the workflow that refers to it. */
export function resolveWorkflowRef(ref: string, from: WorkflowSource, repos: Repositories): WorkflowSource {
  if (ref.startsWith('./')) return { ...from, path: ref.slice(2) };
  const m = /^([^/@\s]+)\/([^/@\s]+)\/([^@\s]+)@(\S+)$/.exec(ref);
  if (!m) throw new UnsupportedError(`cannot resolve the reusable workflow reference '${ref}' (expected ./path or OWNER/REPO/path@REF)`);
  const [, owner, name, path, version] = m as unknown as [string, string, string, string, string];
  const repository = `${owner}/${name}`;
  const dir = repos.dir(repository);
  const sha = resolveCommit(dir, version);
  if (!sha) throw new Error(`reusable workflow ${ref}: '${version}' is neither a commit, a tag nor a branch of ${repository} (${dir})`);
  return { repository, dir, sha, path };
}

function sourceLabel(s: WorkflowSource): string {
  return `${s.repository}/${s.path}@${s.sha.slice(0, 12)}`;
}

/** Reads, validates and converts a workflow; throws with every parser error. */
export async function loadWorkflow(source: WorkflowSource, repos: Repositories): Promise<LoadedWorkflow> {
  let content: string;
  try {
    content = readFileAt(source.dir, source.sha, source.path);
  } catch (e) {
    throw new Error(`workflow ${sourceLabel(source)} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  const parsed = parseWorkflow({ name: source.path, content }, new NoOperationTraceWriter());
  const fetchErrors: string[] = [];
  const provider: FileProvider = {
    getFileContent: async (ref: FileReference) => {
      const text = 'repository' in ref ? `${ref.owner}/${ref.repository}/${ref.path}@${ref.version}` : `./${ref.path}`;
      try {
        const called = resolveWorkflowRef(text, source, repos);
        return { name: text, content: readFileAt(called.dir, called.sha, called.path) };
      } catch (e) {
        fetchErrors.push(`${text}: ${(e as Error).message}`);
        throw e;
      }
    },
  };
  const errors = parsed.context.errors.getErrors().map((e) => e.message);
  if (errors.length > 0 || !parsed.value) throw new UnsupportedError(`workflow ${sourceLabel(source)} does not parse:\n  ${errors.join('\n  ')}`);
  const template = await convertWorkflowTemplate(parsed.context, parsed.value, provider, { fetchReusableWorkflowDepth: 1 });
  const all = [...(template.errors ?? []).map((e) => e.Message), ...fetchErrors];
  if (all.length > 0) throw new UnsupportedError(`workflow ${sourceLabel(source)} is not valid:\n  ${all.join('\n  ')}`);
  const root = parsed.value;
  if (!isMapping(root)) throw new UnsupportedError(`workflow ${sourceLabel(source)}: the document is not a mapping`);
  const nameToken = root.find('name');
  const wf: LoadedWorkflow = { source, name: nameToken && isString(nameToken) ? nameToken.value : source.path, template, root };
  assertSupported(wf);
  return wf;
}

/** A mapping's value by key, when the mapping exists and has it. */
export function prop(mapping: TemplateToken | undefined, key: string): TemplateToken | undefined {
  return mapping && isMapping(mapping) ? mapping.find(key) : undefined;
}

/** The parsed mapping of `jobs.<id>`. */
export function rawJob(wf: LoadedWorkflow, jobId: string): MappingToken {
  const job = prop(prop(wf.root, 'jobs'), jobId);
  if (!job || !isMapping(job)) throw new Error(`${wf.source.path}: no job ${jobId}`);
  return job;
}

/** The parsed mappings of a job's steps, in order (they align with the converted steps). */
export function rawSteps(job: MappingToken): MappingToken[] {
  const steps = job.find('steps');
  if (!steps || !isSequence(steps)) return [];
  const out: MappingToken[] = [];
  for (const s of steps) {
    if (!isMapping(s)) throw new UnsupportedError('a step that is not a mapping');
    out.push(s);
  }
  return out;
}

/** The parsed `on.workflow_call` mapping of a reusable workflow (undefined when it declares nothing). */
export function workflowCallDefinition(wf: LoadedWorkflow): MappingToken | undefined {
  const call = prop(wf.root.find('on'), 'workflow_call');
  return call && isMapping(call) ? call : undefined;
}

const JOB_KEYS = new Set(['name', 'needs', 'if', 'runs-on', 'timeout-minutes', 'env', 'permissions', 'concurrency', 'outputs', 'defaults', 'steps', 'strategy', 'continue-on-error', 'uses', 'with', 'secrets']);
const STEP_KEYS = new Set(['id', 'name', 'if', 'uses', 'run', 'with', 'env', 'shell', 'working-directory', 'timeout-minutes', 'continue-on-error']);

/** Refuses what the stand-in does not implement, naming where it is. */
function assertSupported(wf: LoadedWorkflow): void {
  const where = wf.source.path;
  const jobs = wf.root.find('jobs');
  if (!jobs || !isMapping(jobs)) return;
  for (const item of jobs) {
    const jobId = item.key.toString();
    if (!isMapping(item.value)) continue;
    for (const p of item.value) {
      const key = p.key.toString();
      if (!JOB_KEYS.has(key)) throw new UnsupportedError(`${where}: jobs.${jobId}.${key} is not implemented by the runner stand-in`);
      if (key === 'continue-on-error' && !(p.value.toJSON() === false)) {
        throw new UnsupportedError(`${where}: jobs.${jobId}.continue-on-error is not implemented by the runner stand-in`);
      }
    }
    for (const [i, step] of rawSteps(item.value).entries()) {
      for (const p of step) {
        if (!STEP_KEYS.has(p.key.toString())) throw new UnsupportedError(`${where}: jobs.${jobId}.steps[${i}].${p.key.toString()} is not implemented by the runner stand-in`);
      }
    }
  }
}
