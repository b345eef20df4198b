/**
 * Checks that a workflow and the actions and reusable workflows it calls agree:
 *   - every `uses: ./actions/X` (or `./.labforge/actions/X`, `OWNER/labforge/actions/X@ref`) step passes only
 *     inputs that `actions/X/action.yml` declares, and every required input without a default;
 *   - every `steps.<id>.outputs.<name>` is produced by an earlier step of the same job: declared by the
 *     labforge action's action.yml, or written to $GITHUB_OUTPUT by the `run:` script;
 *   - every `needs.<job>.outputs.<name>` names a job listed in `needs:` that declares that output (for a
 *     reusable-workflow job: declared in the called workflow's `on.workflow_call.outputs`);
 *   - every `jobs.<job>.outputs.<name>` in `on.workflow_call.outputs` is declared by that job;
 *   - every `inputs.<name>` is declared by the workflow's trigger; in a reusable workflow every
 *     `secrets.<name>` is declared (GITHUB_TOKEN aside);
 *   - every job that calls a labforge reusable workflow passes only declared inputs and secrets, every
 *     required input, and no `secrets: inherit`; and grants every permission a job of the called workflow
 *     declares (GitHub gives a called workflow's jobs at most what the calling job grants, and refuses the run
 *     when one of them asks for more).
 * Messages say `file:line`, the job and step, what is wrong, and what the other side declares.
 *
 * Also here: how this repository's copy of a template refers to labforge itself ({@link repoCopyOfTemplate}),
 * and the format of the templates' SHA pins ({@link templatePins}).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './run-action.js';
import { commands } from '../../cli/commands/index.js';
import {
  expressionTexts,
  jobsOf,
  labforgeActionName,
  labforgeWorkflowPath,
  readActionSpec,
  readYamlFile,
  stepLabel,
  stringsIn,
  type ActionSpec,
  type Job,
  type YamlFile,
} from './workflow-files.js';

function list(names: Iterable<string>): string {
  const all = [...names].sort();
  return all.length === 0 ? 'none' : all.join(', ');
}

function asRecord(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function needsOf(job: Job): string[] {
  return job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs];
}

interface CalledWorkflow {
  path: string;
  inputs: Map<string, { required: boolean; hasDefault: boolean }>;
  secrets: Set<string>;
  outputs: Set<string>;
  /** Every permission a job of it declares. */
  permissions: { job: string; scope: string; level: string }[];
}

function readCalledWorkflow(path: string): CalledWorkflow | undefined {
  const abs = join(repoRoot, path);
  if (!existsSync(abs)) return undefined;
  const file = readYamlFile(abs);
  const call = asRecord(asRecord(file.data['on'])['workflow_call']);
  const inputs = new Map<string, { required: boolean; hasDefault: boolean }>();
  for (const [k, v] of Object.entries(asRecord(call['inputs']))) {
    const spec = asRecord(v);
    inputs.set(k, { required: spec['required'] === true, hasDefault: spec['default'] !== undefined });
  }
  const permissions = jobsOf(file).flatMap(([job, j]) => Object.entries(asRecord(j['permissions'])).map(([scope, level]) => ({ job, scope, level: String(level) })));
  return { path, inputs, secrets: new Set(Object.keys(asRecord(call['secrets']))), outputs: new Set(Object.keys(asRecord(call['outputs']))), permissions };
}

/**
 * The names of the step outputs a `run:` script writes: `echo "name=…"` / `printf 'name=…'` / `echo "name<<EOF"`
 * lines, counted only when the script appends to $GITHUB_OUTPUT at all.
 */
export function runScriptOutputs(script: string): Set<string> {
  const names = new Set<string>();
  // `labforge <command> … --github-output` writes the outputs that command declares.
  for (const m of script.matchAll(/\blabforge\s+([a-z-]+)\b[^\n]*--github-output\b/g)) {
    for (const name of commands.find((c) => c.name === m[1])?.githubOutputs ?? []) names.add(name);
  }
  if (!script.includes('GITHUB_OUTPUT')) return names;
  for (const m of script.matchAll(/\b(?:echo|printf)\s+(?:-[a-z]+\s+)*["']?([A-Za-z_][A-Za-z0-9_-]*)(?:=|<<)/g)) names.add(m[1] ?? '');
  return names;
}

/** All problems found in one workflow file (empty when it is consistent). */
export function checkWorkflowConsistency(file: YamlFile): string[] {
  const problems: string[] = [];
  const on = asRecord(file.data['on']);
  const dispatchInputs = Object.keys(asRecord(asRecord(on['workflow_dispatch'])['inputs']));
  const call = asRecord(on['workflow_call']);
  const callInputs = Object.keys(asRecord(call['inputs']));
  const declaredInputs = new Set([...dispatchInputs, ...callInputs]);
  const isReusable = on['workflow_call'] !== undefined;
  const declaredSecrets = new Set([...Object.keys(asRecord(call['secrets'])), 'GITHUB_TOKEN']);
  const jobs = new Map(jobsOf(file));
  const actionCache = new Map<string, ActionSpec | undefined>();
  const action = (name: string) => {
    if (!actionCache.has(name)) actionCache.set(name, readActionSpec(name));
    return actionCache.get(name);
  };
  const calledCache = new Map<string, CalledWorkflow | undefined>();
  const called = (path: string) => {
    if (!calledCache.has(path)) calledCache.set(path, readCalledWorkflow(path));
    return calledCache.get(path);
  };

  /** Outputs a job offers to `needs.<job>.outputs`. */
  const jobOutputs = (jobId: string): Set<string> | undefined => {
    const job = jobs.get(jobId);
    if (!job) return undefined;
    if (typeof job.uses === 'string') {
      const path = labforgeWorkflowPath(job.uses);
      return path ? called(path)?.outputs : undefined;
    }
    return new Set(Object.keys(asRecord(job['outputs'])));
  };

  const checkInputsAndSecrets = (where: string, text: string, context: string) => {
    for (const m of text.matchAll(/\binputs\.([A-Za-z0-9_-]+)/g)) {
      if (!declaredInputs.has(m[1] ?? '')) {
        problems.push(`${where}: ${context} reads inputs.${m[1]}, which the workflow's trigger does not declare (declared: ${list(declaredInputs)})`);
      }
    }
    if (isReusable) {
      for (const m of text.matchAll(/\bsecrets\.([A-Za-z0-9_-]+)/g)) {
        if (!declaredSecrets.has(m[1] ?? '')) {
          problems.push(`${where}: ${context} reads secrets.${m[1]}, which on.workflow_call.secrets does not declare (declared: ${list(declaredSecrets)})`);
        }
      }
    }
  };

  // on.workflow_call.outputs → jobs.<id>.outputs.<name>
  for (const [out, spec] of Object.entries(asRecord(call['outputs']))) {
    const value = String(asRecord(spec)['value'] ?? '');
    const where = file.where(['on', 'workflow_call', 'outputs', out]);
    for (const m of value.matchAll(/\bjobs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
      const offered = jobOutputs(m[1] ?? '');
      if (!offered) problems.push(`${where}: workflow output ${out} reads jobs.${m[1]}.outputs.${m[2]}, but there is no job ${m[1]}`);
      else if (!offered.has(m[2] ?? '')) problems.push(`${where}: workflow output ${out} reads jobs.${m[1]}.outputs.${m[2]}, which job ${m[1]} does not declare (it declares: ${list(offered)})`);
    }
  }

  for (const [jobId, job] of jobs) {
    const needs = needsOf(job);
    for (const n of needs) if (!jobs.has(n)) problems.push(`${file.where(['jobs', jobId, 'needs'])}: jobs.${jobId} needs ${n}, which is not a job of this workflow`);
    const steps = job.steps ?? [];
    const stepIndex = new Map<string, number>();
    steps.forEach((s, i) => {
      if (typeof s.id === 'string') stepIndex.set(s.id, i);
    });

    /** What `steps.<id>.outputs` a step offers, or a reason why it cannot be known. */
    const stepOutputs = (id: string): { outputs?: Set<string>; problem?: string } => {
      const i = stepIndex.get(id);
      if (i === undefined) return { problem: `there is no step with id ${id} in jobs.${jobId}` };
      const producer = steps[i]!;
      if (typeof producer.uses === 'string') {
        const name = labforgeActionName(producer.uses);
        if (!name) return { problem: `step ${id} uses ${producer.uses}, a third-party action whose outputs this test cannot check` };
        const spec = action(name);
        if (!spec) return { problem: `step ${id} uses ${producer.uses}, and actions/${name}/action.yml does not exist` };
        return { outputs: spec.outputs };
      }
      if (typeof producer.run === 'string') return { outputs: runScriptOutputs(producer.run) };
      return { problem: `step ${id} neither uses an action nor runs a script` };
    };

    const checkText = (where: string, key: string | number | undefined, text: string, context: string, position?: number) => {
      for (const expr of expressionTexts(key, text)) {
        for (const m of expr.matchAll(/\bsteps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
          const [, id = '', out = ''] = m;
          const { outputs, problem } = stepOutputs(id);
          if (problem) problems.push(`${where}: ${context} reads steps.${id}.outputs.${out}, which cannot be checked: ${problem}`);
          else if (!outputs!.has(out)) {
            const producer = steps[stepIndex.get(id)!]!;
            const declares = typeof producer.uses === 'string' ? `actions/${labforgeActionName(producer.uses)}/action.yml declares: ${list(outputs!)}` : `its run: script writes no '${out}=' to $GITHUB_OUTPUT`;
            problems.push(`${where}: ${context} reads steps.${id}.outputs.${out}, which step ${id} does not produce (${declares})`);
          } else if (position !== undefined && stepIndex.get(id)! >= position) {
            problems.push(`${where}: ${context} reads steps.${id}.outputs.${out} before step ${id} has run (it is step ${stepIndex.get(id)})`);
          }
        }
        for (const m of expr.matchAll(/\bneeds\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)/g)) {
          const [, other = '', out = ''] = m;
          if (!needs.includes(other)) {
            problems.push(`${where}: ${context} reads needs.${other}.outputs.${out}, but jobs.${jobId} does not list ${other} in needs (needs: ${list(needs)})`);
            continue;
          }
          const offered = jobOutputs(other);
          if (!offered) problems.push(`${where}: ${context} reads needs.${other}.outputs.${out}, but the outputs of job ${other} cannot be read`);
          else if (!offered.has(out)) problems.push(`${where}: ${context} reads needs.${other}.outputs.${out}, which job ${other} does not declare (it declares: ${list(offered)})`);
        }
        checkInputsAndSecrets(where, expr, context);
      }
    };

    // Job-level strings (if, runs-on, outputs, env, concurrency, timeout, with of a reusable call, …).
    for (const { path, text } of stringsIn(Object.fromEntries(Object.entries(job).filter(([k]) => k !== 'steps')))) {
      checkText(file.where(['jobs', jobId, ...path]), path[path.length - 1], text, `jobs.${jobId}.${path.join('.')}`);
    }

    // A job that calls a labforge reusable workflow.
    if (typeof job.uses === 'string') {
      const path = labforgeWorkflowPath(job.uses);
      const where = file.where(['jobs', jobId, 'uses']);
      if (path) {
        const wf = called(path);
        if (!wf) {
          problems.push(`${where}: jobs.${jobId} calls ${job.uses}, but ${path} does not exist`);
        } else {
          const given = asRecord(job.with);
          for (const k of Object.keys(given)) {
            if (!wf.inputs.has(k)) problems.push(`${file.where(['jobs', jobId, 'with', k])}: jobs.${jobId} passes input '${k}' that ${path} does not declare (declared: ${list(wf.inputs.keys())})`);
          }
          for (const [k, spec] of wf.inputs) {
            if (spec.required && !spec.hasDefault && !(k in given)) problems.push(`${where}: jobs.${jobId} does not pass the required input '${k}' of ${path}`);
          }
          if (job['secrets'] === 'inherit') problems.push(`${file.where(['jobs', jobId, 'secrets'])}: jobs.${jobId} passes secrets: inherit; pass the secrets ${list(wf.secrets)} explicitly`);
          for (const k of Object.keys(asRecord(job['secrets']))) {
            if (!wf.secrets.has(k)) problems.push(`${file.where(['jobs', jobId, 'secrets', k])}: jobs.${jobId} passes secret '${k}' that ${path} does not declare (declared: ${list(wf.secrets)})`);
          }
          const rank = (level: unknown) => (level === 'write' ? 2 : level === 'read' ? 1 : 0);
          const granted = job['permissions'];
          for (const p of wf.permissions) {
            const has = granted === 'write-all' ? 'write' : granted === 'read-all' ? 'read' : asRecord(granted)[p.scope];
            if (rank(has) < rank(p.level)) {
              problems.push(`${file.where(['jobs', jobId, 'permissions'])}: jobs.${jobId} calls ${path}, whose job ${p.job} needs ${p.scope}: ${p.level}, but grants ${has === undefined ? 'no' : String(has)} ${p.scope} (a called workflow's jobs get at most what the caller grants; add ${p.scope}: ${p.level})`);
            }
          }
        }
      }
    }

    steps.forEach((step, i) => {
      const label = stepLabel(jobId, i, step);
      for (const { path, text } of stringsIn(step)) checkText(file.where(['jobs', jobId, 'steps', i, ...path]), path[path.length - 1], text, label, i);
      if (typeof step.uses !== 'string') return;
      const name = labforgeActionName(step.uses);
      if (!name) return;
      const where = file.where(['jobs', jobId, 'steps', i]);
      const spec = action(name);
      if (!spec) {
        problems.push(`${where}: ${label} uses ${step.uses}, but actions/${name}/action.yml does not exist (write it, or stop using the action here)`);
        return;
      }
      const given = asRecord(step.with);
      for (const k of Object.keys(given)) {
        if (!spec.inputs.has(k)) problems.push(`${file.where(['jobs', jobId, 'steps', i, 'with', k])}: ${label} passes input '${k}' that ${spec.path} does not declare (declared: ${list(spec.inputs.keys())})`);
      }
      for (const [k, s] of spec.inputs) {
        if (s.required && !s.hasDefault && !(k in given)) problems.push(`${where}: ${label} does not pass '${k}', which ${spec.path} requires`);
      }
    });
  }
  return problems;
}

/** The ref the templates' pins are resolved from, named in their `# <ref>` comment. */
export const PIN_REF = 'v1';

/**
 * The copy of a template that this repository runs. Templates pin labforge by a full commit SHA with the
 * ref it was resolved from in a comment (users point them at their labforge with `labforge pin`); this
 * repository uses itself:
 *   `uses: OWNER/labforge/.github/workflows/build.yml@<40 hex> # v1` → `uses: ./.github/workflows/build.yml`
 *   `labforge_repository: OWNER/labforge`                          → `labforge_repository: ${{ github.repository }}`
 *   `labforge_ref: <40 hex> # v1`                                   → `labforge_ref: ${{ github.sha }}`
 * Nothing else may differ.
 */
export function repoCopyOfTemplate(text: string): string {
  return text
    .replace(/uses: OWNER\/labforge\/\.github\/workflows\/([a-z-]+\.yml)@[0-9a-f]{40} # v1$/gm, 'uses: ./.github/workflows/$1')
    .replace(/labforge_repository: OWNER\/labforge$/gm, 'labforge_repository: ${{ github.repository }}')
    .replace(/labforge_ref: [0-9a-f]{40} # v1$/gm, 'labforge_ref: ${{ github.sha }}');
}

export interface TemplatePin {
  /** 1-based line number. */
  line: number;
  kind: 'uses' | 'labforge_ref';
  /** What follows `@` (uses) or `labforge_ref:`, without the comment. */
  value: string;
  /** The comment's text after `#`, trimmed ('' when there is none). */
  comment: string;
}

/**
 * Every line of a template that refers to a labforge commit: a `uses: <owner>/labforge/…@<ref>` and a
 * `labforge_ref: <ref>`, with the comment after it.
 */
export function templatePins(text: string): TemplatePin[] {
  const pins: TemplatePin[] = [];
  text.split('\n').forEach((raw, i) => {
    const uses = /^\s*(?:-\s+)?uses:\s*[A-Za-z0-9_.-]+\/labforge\/[^\s@]+@(\S+)(?:\s+#\s*(.*?))?\s*$/.exec(raw);
    if (uses) pins.push({ line: i + 1, kind: 'uses', value: uses[1] ?? '', comment: uses[2] ?? '' });
    const ref = /^\s*labforge_ref:\s*(\S+)(?:\s+#\s*(.*?))?\s*$/.exec(raw);
    if (ref) pins.push({ line: i + 1, kind: 'labforge_ref', value: ref[1] ?? '', comment: ref[2] ?? '' });
  });
  return pins;
}

/**
 * What is wrong with the SHA pins of the templates (given as path → text): each has one `uses:` pin and one
 * `labforge_ref:` pin, each a full 40-hex commit SHA with the comment `# <PIN_REF>`, and all of them name
 * the same commit.
 */
export function checkTemplatePins(templates: Record<string, string>): string[] {
  const problems: string[] = [];
  const shas = new Map<string, string[]>();
  for (const [path, text] of Object.entries(templates)) {
    const pins = templatePins(text);
    for (const kind of ['uses', 'labforge_ref'] as const) {
      const n = pins.filter((p) => p.kind === kind).length;
      if (n !== 1) problems.push(`${path}: has ${n} ${kind === 'uses' ? '`uses: OWNER/labforge/…@`' : '`labforge_ref:`'} pins (want exactly 1)`);
    }
    for (const pin of pins) {
      if (!/^[0-9a-f]{40}$/.test(pin.value)) problems.push(`${path}:${pin.line}: ${pin.kind} is '${pin.value}', not a full 40-hex commit SHA (run labforge pin --ref ${PIN_REF} ${path})`);
      if (pin.comment !== PIN_REF) problems.push(`${path}:${pin.line}: ${pin.kind} has the comment '${pin.comment}', want '# ${PIN_REF}' (the ref the SHA was resolved from)`);
      shas.set(pin.value, [...(shas.get(pin.value) ?? []), `${path}:${pin.line}`]);
    }
  }
  if (shas.size > 1) problems.push(`the pins name ${shas.size} different commits (${[...shas].map(([sha, at]) => `${sha} at ${at.join(', ')}`).join('; ')}); pin them together: labforge pin --ref ${PIN_REF} ${Object.keys(templates).join(' ')}`);
  return problems;
}
