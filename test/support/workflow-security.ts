/**
 * The security rules every labforge workflow follows, as a check that lists each violation with file:line:
 *   - the top level grants nothing (`permissions: {}`) and every job declares its own permissions;
 *   - `contents: write` only in a job that writes a GitHub release (runs `labforge release`, or calls the
 *     reusable build with `release: true`); `id-token: write` only in a job that logs in to Google Cloud with
 *     Workload Identity Federation (google-github-actions/auth, or a call of the reusable build); no other
 *     write permission at all;
 *   - a job on a self-hosted runner never runs for a pull request from a fork: its `if:` contains
 *     `!github.event.pull_request.head.repo.fork`;
 *   - third-party actions are pinned by a full commit SHA with the version in a comment; labforge's own
 *     (`./…`, and `OWNER/labforge/…@v1` in the templates, which users pin when they copy them) are exempt;
 *   - no `${{ … }}` inside a `run:` script (secrets and user input reach scripts through `env:` only);
 *   - checkouts do not leave the token in .git/config (`persist-credentials: false`).
 */
import { jobsOf, labforgeWorkflowPath, stepLabel, type Job, type YamlFile } from './workflow-files.js';

/** Runner labels of GitHub-hosted machines. */
const HOSTED = /^(ubuntu|windows|macos)-[a-z0-9.]+$/;
export const FORK_GUARD = '!github.event.pull_request.head.repo.fork';

function asRecord(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function writesRelease(job: Job): boolean {
  if (typeof job.uses === 'string') return labforgeWorkflowPath(job.uses) !== undefined && asRecord(job.with)['release'] === true;
  return (job.steps ?? []).some((s) => typeof s.run === 'string' && /\blabforge release\b/.test(s.run));
}

function logsInToGoogleCloud(job: Job): boolean {
  if (typeof job.uses === 'string') return labforgeWorkflowPath(job.uses) !== undefined;
  return (job.steps ?? []).some((s) => typeof s.uses === 'string' && s.uses.startsWith('google-github-actions/auth@'));
}

function runsOnHosted(runsOn: unknown): boolean {
  return typeof runsOn === 'string' && HOSTED.test(runsOn);
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
    if (/^OWNER\/labforge\//.test(uses) && file.path.startsWith('workflows-templates/')) return;
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
      else if (scope === 'id-token' && !logsInToGoogleCloud(job)) problems.push(`${where}: jobs.${jobId} has id-token: write but does not log in to Google Cloud with Workload Identity Federation`);
      else if (scope !== 'contents' && scope !== 'id-token') problems.push(`${where}: jobs.${jobId} has ${scope}: write, which no labforge job needs`);
    }
    if (job['runs-on'] !== undefined && !runsOnHosted(job['runs-on'])) {
      const cond = typeof job['if'] === 'string' ? job['if'] : '';
      if (!cond.includes(FORK_GUARD)) {
        problems.push(`${file.where(['jobs', jobId, 'runs-on'])}: jobs.${jobId} may run on a self-hosted runner but its if: lacks ${FORK_GUARD} (a fork's pull request must never reach our machines)`);
      }
    }
    if (typeof job.uses === 'string') checkUses(job.uses, file.where(['jobs', jobId, 'uses']), `jobs.${jobId}`);
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
    });
  }
  return problems;
}
