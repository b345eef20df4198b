/**
 * Local actions (`uses: ./path`) for the workflow runner STAND-IN (a test double for the GitHub Actions
 * runner; see index.ts). The action's `action.yml` (or `action.yaml`) is read from the workspace and parsed
 * and validated with GitHub's parser (@actions/workflow-parser's parseAction); JavaScript actions
 * (`using: node20` / `node24`) run as the runner runs them: `node <dir>/<main>` with INPUT_<NAME> variables
 * (upper case, spaces → `_`) from `with:` plus the action's defaults (which may be expressions, such as
 * `${{ github.token }}`, evaluated here), and their `post:` with `post-if` (default always()). Composite,
 * Docker and `pre:` actions are refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { NoOperationTraceWriter } from '@actions/workflow-parser';
import { convertActionTemplate, parseAction, type ActionRunsNode, type ActionTemplate } from '@actions/workflow-parser/actions/index';
import { evaluateString, type Scope } from './expressions.js';
import { UnsupportedError } from './types.js';

export interface LocalAction {
  /** The action's directory (GITHUB_ACTION_PATH). */
  dir: string;
  template: ActionTemplate;
  runs: ActionRunsNode;
}

/** Thrown when the action cannot be found or read: the step fails (as on GitHub), the run goes on. */
export class ActionNotFoundError extends Error {}

/** Reads and validates the action a `uses: ./path` step names. */
export function loadLocalAction(workspace: string, uses: string): LocalAction {
  const dir = resolve(workspace, uses);
  const rel = relative(workspace, dir);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new ActionNotFoundError(`${uses}: the path is outside the workspace`);
  const file = ['action.yml', 'action.yaml'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new ActionNotFoundError(`Can't find 'action.yml', 'action.yaml' or 'Dockerfile' under '${dir}'. Did you forget to run actions/checkout before running your local action?`);
  const parsed = parseAction({ name: relative(workspace, file), content: readFileSync(file, 'utf8') }, new NoOperationTraceWriter());
  const template = parsed.value ? convertActionTemplate(parsed.context, parsed.value) : undefined;
  const errors = parsed.context.errors.getErrors().map((e) => e.message);
  if (errors.length > 0 || !template?.runs) throw new UnsupportedError(`${uses}: ${relative(workspace, file)} is not valid:\n  ${errors.join('\n  ') || 'no runs:'}`);
  const runs = template.runs;
  if (runs.using === 'composite') throw new UnsupportedError(`${uses}: composite actions are not implemented by the runner stand-in`);
  if (runs.using === 'docker') throw new UnsupportedError(`${uses}: Docker actions are not implemented by the runner stand-in`);
  if (runs.using !== 'node20' && runs.using !== 'node24') throw new UnsupportedError(`${uses}: runs.using ${String(runs.using)} is not implemented by the runner stand-in (node20, node24)`);
  if (runs.pre) throw new UnsupportedError(`${uses}: pre: is not implemented by the runner stand-in`);
  return { dir, template, runs };
}

/**
 * The action's inputs: `with:` values, then the defaults of the inputs not given (evaluated in the step's
 * scope). Returns the warning the runner gives for inputs the action does not declare.
 */
export function actionInputs(action: LocalAction, given: Record<string, string>, scope: Scope): { inputs: Record<string, string>; warning?: string } {
  const inputs: Record<string, string> = { ...given };
  const declared = action.template.inputs ?? [];
  const known = new Set(declared.map((i) => i.id.toLowerCase()));
  // Defaults see only the contexts action.yml allows there (github, strategy, matrix, job, runner).
  const allowed = ['github', 'strategy', 'matrix', 'job', 'runner'];
  const defaultScope: Scope = { contexts: Object.fromEntries(Object.entries(scope.contexts).filter(([k]) => allowed.includes(k))) };
  for (const input of declared) {
    if (Object.keys(given).some((k) => k.toLowerCase() === input.id.toLowerCase())) continue;
    if (input.default !== undefined) inputs[input.id] = evaluateString(input.default, defaultScope, `default of input ${input.id}`) ?? '';
  }
  const unexpected = Object.keys(given).filter((k) => !known.has(k.toLowerCase()));
  return {
    inputs,
    warning: unexpected.length > 0 ? `Unexpected input(s) '${unexpected.join("', '")}', valid inputs are ['${declared.map((i) => i.id).join("', '")}']` : undefined,
  };
}

/** INPUT_<NAME> variables, as the runner names them. */
export function inputEnv(inputs: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  return env;
}
