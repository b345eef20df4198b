/**
 * The security rules every labforge workflow follows, as a check that lists each violation with file:line:
 *   - the top level grants nothing (`permissions: {}`) and every job declares its own permissions;
 *   - `contents: write` only in a job that writes a GitHub release (runs `labforge release`), or calls the
 *     reusable build (whose release job declares it: GitHub refuses a run whose caller grants a called job less
 *     than it declares, before any `if:`, so even a caller with `release: false` must grant it); `id-token: write` only in a job that logs in to Google Cloud with
 *     Workload Identity Federation (google-github-actions/auth) or attests a build's provenance
 *     (actions/attest-build-provenance), or calls the reusable build; `attestations: write` only in a job that
 *     attests, or calls the reusable build; no other write permission at all;
 *   - a job on a self-hosted runner never runs for a pull request from a fork: its `if:` contains
 *     `!github.event.pull_request.head.repo.fork`;
 *   - actions and reusable workflows from another repository — labforge's own too (`OWNER/labforge/…` in the
 *     templates) — are pinned by a full commit SHA with the version in a comment; only `./…` is exempt;
 *   - a call of labforge's reusable workflow checks out the labforge it runs by a full commit SHA: its
 *     `labforge_ref` is `${{ github.sha }}` (this repository) or a 40-hex SHA, the one its `uses:` names;
 *   - no `${{ … }}` inside a `run:` script (secrets and user input reach scripts through `env:` only);
 *   - checkouts do not leave the token in .git/config (`persist-credentials: false`);
 *   - `npm ci`/`npm install` in a job that holds a write permission (id-token or contents) runs with
 *     `--ignore-scripts`: no dependency's install script runs where the OIDC token or a writing token is;
 *   - no `sudo` in a job that may run on a self-hosted runner (the runner user has none).
 */
import { jobsOf, labforgeWorkflowPath, stepLabel, type Job, type YamlFile } from './workflow-files.js';

/** Runner labels of GitHub-hosted machines. */
const HOSTED = /^(ubuntu|windows|macos)-[a-z0-9.]+$/;
export const FORK_GUARD = '!github.event.pull_request.head.repo.fork';

function asRecord(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function writesRelease(job: Job): boolean {
  if (typeof job.uses === 'string') return labforgeWorkflowPath(job.uses) !== undefined;
  return (job.steps ?? []).some((s) => typeof s.run === 'string' && /\blabforge release\b/.test(s.run));
}

function logsInToGoogleCloud(job: Job): boolean {
  if (typeof job.uses === 'string') return labforgeWorkflowPath(job.uses) !== undefined;
  return (job.steps ?? []).some((s) => typeof s.uses === 'string' && s.uses.startsWith('google-github-actions/auth@'));
}

/** The job attests a build's provenance (or calls the reusable build, whose attest job does). */
function attests(job: Job): boolean {
  if (typeof job.uses === 'string') return labforgeWorkflowPath(job.uses) !== undefined;
  return (job.steps ?? []).some((s) => typeof s.uses === 'string' && s.uses.startsWith('actions/attest-build-provenance@'));
}

function runsOnHosted(runsOn: unknown): boolean {
  return typeof runsOn === 'string' && HOSTED.test(runsOn);
}

/** `sudo` as a command word (not inside another word such as `sudoers` or `pseudo`). */
const SUDO = /(^|[\s;&|(`]|\$\()sudo(\s|$)/m;

/** The `npm ci` / `npm install` / `npm i` command lines of a script (one entry per command, flags included). */
export function npmInstalls(script: string): string[] {
  const out: string[] = [];
  const joined = script.replace(/\\\n/g, ' ');
  for (const m of joined.matchAll(/(?:^|[\s;&|(])(npm\s+(?:ci|install|i|clean-install|install-clean|add)(?=\s|$)[^;&|\n#]*)/gm)) out.push((m[1] ?? '').trim());
  return out;
}

/** Every violation of the rules above in one workflow file. */
export function checkWorkflowSecurity(file: YamlFile): string[] {
  const problems: string[] = [];
  const lines = file.text.split('\n');
  const top = file.data['permissions'];
  if (top === undefined || Object.keys(asRecord(top)).length > 0 || typeof top === 'string') {
    problems.push(`${file.where(['permissions'])}: the top level must grant nothing (permissions: {}); grant per job`);
  }
  const checkUses = (uses: string, where: string, label: string) => {
    if (uses.startsWith('./') || uses.startsWith('docker://')) return;
    if (!/^[^@\s]+@[0-9a-f]{40}$/.test(uses)) {
      problems.push(`${where}: ${label} uses ${uses}: pin third-party actions to a full commit SHA (owner/repo@<40 hex> # vX.Y.Z)`);
      return;
    }
    const line = lines[Number(where.split(':').pop()) - 1] ?? '';
    if (!/#\s*v\d/.test(line)) problems.push(`${where}: ${label} uses ${uses} without the version in a comment (add # vX.Y.Z)`);
  };

  for (const [jobId, job] of jobsOf(file)) {
    const perms = job['permissions'];
    const where = file.where(['jobs', jobId, 'permissions']);
    if (perms === undefined) problems.push(`${file.where(['jobs', jobId])}: jobs.${jobId} declares no permissions (declare the least it needs, e.g. contents: read)`);
    if (typeof perms === 'string') problems.push(`${where}: jobs.${jobId} grants '${perms}'; list the scopes it needs instead`);
    for (const [scope, level] of Object.entries(asRecord(perms))) {
      if (level !== 'write') continue;
      if (scope === 'contents' && !writesRelease(job)) problems.push(`${where}: jobs.${jobId} has contents: write but writes no GitHub release (use contents: read)`);
      else if (scope === 'id-token' && !logsInToGoogleCloud(job) && !attests(job)) problems.push(`${where}: jobs.${jobId} has id-token: write but neither logs in to Google Cloud with Workload Identity Federation nor attests a build`);
      else if (scope === 'attestations' && !attests(job)) problems.push(`${where}: jobs.${jobId} has attestations: write but attests nothing (actions/attest-build-provenance)`);
      else if (scope !== 'contents' && scope !== 'id-token' && scope !== 'attestations') problems.push(`${where}: jobs.${jobId} has ${scope}: write, which no labforge job needs`);
    }
    if (job['runs-on'] !== undefined && !runsOnHosted(job['runs-on'])) {
      const cond = typeof job['if'] === 'string' ? job['if'] : '';
      if (!cond.includes(FORK_GUARD)) {
        problems.push(`${file.where(['jobs', jobId, 'runs-on'])}: jobs.${jobId} may run on a self-hosted runner but its if: lacks ${FORK_GUARD} (a fork's pull request must never reach our machines)`);
      }
    }
    if (typeof job.uses === 'string') {
      checkUses(job.uses, file.where(['jobs', jobId, 'uses']), `jobs.${jobId}`);
      const ref = asRecord(job.with)['labforge_ref'];
      if (labforgeWorkflowPath(job.uses) !== undefined && ref !== undefined) {
        const pinned = /@([0-9a-f]{40})$/.exec(job.uses)?.[1];
        const refWhere = file.where(['jobs', jobId, 'with', 'labforge_ref']);
        if (typeof ref !== 'string' || !(/^\$\{\{\s*github\.sha\s*\}\}$/.test(ref) || /^[0-9a-f]{40}$/.test(ref))) {
          problems.push(`${refWhere}: jobs.${jobId} checks out labforge at '${String(ref)}'; use a full commit SHA (labforge pin) or \${{ github.sha }}`);
        } else if (pinned !== undefined && ref !== pinned) {
          problems.push(`${refWhere}: jobs.${jobId} checks out labforge at ${ref} but calls its workflow at ${pinned}; pin both to the same commit (labforge pin)`);
        }
      }
    }
    const writes = Object.entries(asRecord(perms)).some(([scope, level]) => level === 'write' && (scope === 'id-token' || scope === 'contents'));
    const selfHosted = job['runs-on'] !== undefined && !runsOnHosted(job['runs-on']);
    (job.steps ?? []).forEach((step, i) => {
      const label = stepLabel(jobId, i, step);
      if (typeof step.uses === 'string') {
        checkUses(step.uses, file.where(['jobs', jobId, 'steps', i, 'uses']), label);
        if (step.uses.startsWith('actions/checkout@') && asRecord(step.with)['persist-credentials'] !== false) {
          problems.push(`${file.where(['jobs', jobId, 'steps', i])}: ${label} checks out with the token left in .git/config (set persist-credentials: false)`);
        }
      }
      if (typeof step.run === 'string' && step.run.includes('${{')) {
        problems.push(`${file.where(['jobs', jobId, 'steps', i, 'run'])}: ${label} has a \${{ }} expression inside run:; pass the value through env: and use "$NAME"`);
      }
      if (typeof step.run === 'string' && writes) {
        for (const cmd of npmInstalls(step.run)) {
          if (!/(^|\s)--ignore-scripts(\s|=true|$)/.test(cmd)) problems.push(`${file.where(['jobs', jobId, 'steps', i, 'run'])}: ${label} runs '${cmd}' in a job with a write permission; add --ignore-scripts (no dependency's install script may see the token)`);
        }
      }
      if (typeof step.run === 'string' && selfHosted && SUDO.test(step.run)) {
        problems.push(`${file.where(['jobs', jobId, 'steps', i, 'run'])}: ${label} uses sudo in a job that may run on a self-hosted runner, whose user has none (do it without root, or in runner-setup)`);
      }
    });
  }
  return problems;
}
