/**
 * Reading the workflows (this repository's `.github/workflows/` and the `workflows-templates/` users copy)
 * and the actions' `action.yml` files for the workflow tests, with line numbers for precise messages.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { repoRoot } from './run-action.js';

export const WORKFLOW_DIRS = ['.github/workflows', 'workflows-templates'];

/** The templates that have a copy in `.github/workflows/` (the copy is derived by {@link repoCopyOfTemplate}). */
export const TEMPLATES = ['build.yml', 'build-on-demand.yml', 'release.yml'];

export interface YamlFile {
  /** Path relative to the repository root. */
  path: string;
  text: string;
  /** The parsed value (plain objects). */
  data: Record<string, unknown>;
  /** `file:line` of the node at a path such as `['jobs', 'build', 'steps', 3]` (or the nearest parent that exists). */
  where: (path: (string | number)[]) => string;
}

export function readYamlFile(absPath: string): YamlFile {
  const text = readFileSync(absPath, 'utf8');
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: true });
  const path = relative(repoRoot, absPath);
  if (doc.errors.length > 0) throw new Error(`${path}: not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  const where = (p: (string | number)[]): string => {
    for (let n = p.length; n >= 0; n--) {
      const node = doc.getIn(p.slice(0, n), true) as Node | undefined;
      if (node && (isMap(node) || isSeq(node) || isScalar(node)) && node.range) return `${path}:${lineCounter.linePos(node.range[0]).line}`;
    }
    return path;
  };
  return { path, text, data: (doc.toJS() ?? {}) as Record<string, unknown>, where };
}

/** Every workflow file of this repository and of the templates directory. */
export function workflowFiles(): YamlFile[] {
  const files: YamlFile[] = [];
  for (const dir of WORKFLOW_DIRS) {
    const abs = join(repoRoot, dir);
    if (!existsSync(abs)) continue;
    for (const f of readdirSync(abs).filter((n) => /\.ya?ml$/.test(n)).sort()) files.push(readYamlFile(join(abs, f)));
  }
  return files;
}

/**
 * The copy of a template that this repository runs. Templates refer to labforge as `OWNER/labforge@v1`
 * (users put their fork or labforge's owner and a commit SHA there); this repository uses itself:
 *   `uses: OWNER/labforge/.github/workflows/build.yml@v1` → `uses: ./.github/workflows/build.yml`
 *   `labforge_repository: OWNER/labforge`                → `labforge_repository: ${{ github.repository }}`
 *   `labforge_ref: v1`                                   → `labforge_ref: ${{ github.sha }}`
 * Nothing else may differ.
 */
export function repoCopyOfTemplate(text: string): string {
  return text
    .replace(/uses: OWNER\/labforge\/\.github\/workflows\/([a-z-]+\.yml)@v1$/gm, 'uses: ./.github/workflows/$1')
    .replace(/labforge_repository: OWNER\/labforge$/gm, 'labforge_repository: ${{ github.repository }}')
    .replace(/labforge_ref: v1$/gm, 'labforge_ref: ${{ github.sha }}');
}

export interface ActionSpec {
  path: string;
  inputs: Map<string, { required: boolean; hasDefault: boolean }>;
  outputs: Set<string>;
}

/** Reads `actions/<name>/action.yml`, or returns undefined when it does not exist. */
export function readActionSpec(name: string): ActionSpec | undefined {
  const abs = join(repoRoot, 'actions', name, 'action.yml');
  if (!existsSync(abs)) return undefined;
  const file = readYamlFile(abs);
  const inputs = new Map<string, { required: boolean; hasDefault: boolean }>();
  for (const [k, v] of Object.entries((file.data['inputs'] ?? {}) as Record<string, Record<string, unknown> | null>)) {
    inputs.set(k, { required: v?.['required'] === true, hasDefault: v?.['default'] !== undefined });
  }
  return { path: file.path, inputs, outputs: new Set(Object.keys((file.data['outputs'] ?? {}) as Record<string, unknown>)) };
}

/** The labforge action a `uses:` refers to (`./actions/X`, `./.labforge/actions/X`, `OWNER/labforge/actions/X@ref`). */
export function labforgeActionName(uses: string): string | undefined {
  const local = /^\.\/(?:\.labforge\/)?actions\/([a-z0-9-]+)\/?$/.exec(uses);
  if (local) return local[1];
  const remote = /^[^/\s]+\/labforge\/actions\/([a-z0-9-]+)@\S+$/.exec(uses);
  return remote?.[1];
}

/** The labforge reusable workflow a job-level `uses:` calls, as a path in this repository. */
export function labforgeWorkflowPath(uses: string): string | undefined {
  const local = /^\.\/(\.github\/workflows\/[a-z0-9-]+\.ya?ml)$/.exec(uses);
  if (local) return local[1];
  const remote = /^[^/\s]+\/labforge\/(\.github\/workflows\/[a-z0-9-]+\.ya?ml)@\S+$/.exec(uses);
  return remote?.[1];
}

export type Job = Record<string, unknown> & { steps?: Step[]; needs?: string | string[]; uses?: string; with?: Record<string, unknown> };
export type Step = Record<string, unknown> & { id?: string; name?: string; uses?: string; run?: string; with?: Record<string, unknown> };

export function jobsOf(file: YamlFile): [string, Job][] {
  return Object.entries((file.data['jobs'] ?? {}) as Record<string, Job>);
}

/** A step's label for messages: `jobs.build.steps[3] "Upload the OVA"`. */
export function stepLabel(jobId: string, index: number, step: Step): string {
  const name = step.name ?? step.id ?? step.uses ?? (step.run !== undefined ? String(step.run).split('\n')[0] : '');
  return `jobs.${jobId}.steps[${index}] "${name}"`;
}

/** Every string inside a value (depth-first), with its path. */
export function stringsIn(value: unknown, path: (string | number)[] = []): { path: (string | number)[]; text: string }[] {
  if (typeof value === 'string') return [{ path, text: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsIn(v, [...path, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => stringsIn(v, [...path, k]));
  return [];
}

/** The `${{ … }}` expressions in a string. */
export function expressionsIn(text: string): string[] {
  return [...text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1] ?? '');
}

/** `if:` conditions are expressions even without `${{ }}`. */
export function expressionTexts(key: string | number | undefined, text: string): string[] {
  const wrapped = expressionsIn(text);
  if (key === 'if' && wrapped.length === 0) return [text];
  return wrapped;
}
