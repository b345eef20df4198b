/**
 * Reports of a run of the workflow runner STAND-IN (a test double for GitHub; see index.ts): a markdown
 * table of wall times per job and per step, for benchmarks and docs, and a compact text of what failed,
 * for test failure messages.
 */
import type { WorkflowRun } from './types.js';

const seconds = (s: number) => s.toFixed(1);

/** A markdown table: one row per job (bold) followed by its steps and post phases, with wall seconds. */
export function formatTimings(run: WorkflowRun): string {
  const rows = ['| job | step | result | seconds |', '|---|---|---|---:|'];
  for (const job of run.jobs) {
    rows.push(`| **${job.id}** | ${job.name.replace(/\|/g, '\\|')} | ${job.result} | ${seconds(job.seconds)} |`);
    for (const s of job.steps) rows.push(`| | ${s.name.replace(/\|/g, '\\|')} | ${s.conclusion} | ${seconds(s.seconds)} |`);
    for (const p of job.posts) rows.push(`| | ${p.name.replace(/\|/g, '\\|')} | ${p.outcome} | ${seconds(p.seconds)} |`);
  }
  rows.push(`| **run** | ${run.name.replace(/\|/g, '\\|')} | ${run.conclusion} | ${seconds(run.seconds)} |`);
  return rows.join('\n');
}

/** The failed jobs and steps with the end of their logs and their error annotations. */
export function failureReport(run: WorkflowRun, tailLines = 30): string {
  const out: string[] = [];
  for (const job of run.jobs.filter((j) => j.result === 'failure')) {
    out.push(`job ${job.id} (${job.name}): failure`);
    for (const a of job.annotations.filter((x) => !x.step && x.level === 'error')) out.push(`  ${a.message}`);
    for (const s of [...job.steps, ...job.posts.map((p) => ({ ...p, conclusion: p.outcome }))].filter((x) => x.conclusion === 'failure')) {
      out.push(`  step ${s.name}: failure`);
      for (const line of s.log.split('\n').slice(-tailLines)) out.push(`    ${line}`);
    }
  }
  return out.join('\n');
}
