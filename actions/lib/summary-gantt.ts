/**
 * The phase timeline of a job summary as a Mermaid Gantt chart (GitHub renders ```mermaid blocks), shown
 * next to the summary's table of phase timings.
 *
 * Times are absolute (`dateFormat x`: Unix milliseconds) and the axis shows wall-clock time, which the
 * browser draws in the reader's time zone: correct everywhere, where offsets from zero would be shifted by
 * the reader's UTC offset. Task names may come from appliance data, so every name is reduced to text that
 * Mermaid's Gantt grammar can only read as a task name: one line, no `:` `#` `;` `%` or backtick, and never
 * a leading keyword (`section`, `click`, `title` …) or date.
 */
import type { StepTiming } from './step-sequence.js';

/** One bar of the chart. */
export interface GanttPhase {
  /** What ran (a step or phase name); sanitized on output. */
  name: string;
  /** When it started, in epoch milliseconds. */
  startMs: number;
  /** When it ended, in epoch milliseconds (at least `startMs`). */
  endMs: number;
  /** A heading to group bars under; bars keep their order, a new heading starts where the section changes. */
  section?: string;
  /** `failed` and `cancelled` bars are drawn as critical. */
  status?: StepTiming['status'];
}

export interface GanttOptions {
  /** The chart's title (sanitized like a name). */
  title?: string;
}

/** Longest name kept (longer ones are cut with an ellipsis). */
const MAX_NAME = 60;

/**
 * Words that start a statement in Mermaid's Gantt lexer (case-insensitive; it takes the first rule that
 * matches, so a name starting with one would be read as that statement instead of a task).
 */
const KEYWORD = /^(?:gantt|dateformat|inclusiveenddates|topaxis|axisformat|tickinterval|includes|excludes|todaymarker|weekday|weekend|title|accdescription|acctitle|accdescr|section|click|call|href|displaymode|vert|milestone)(?![\p{L}\p{N}_])/iu;

/**
 * A name Mermaid can only read as plain text: every character that is not a letter, digit, space or one of
 * `-_.,/()+=@[]'&*!?` becomes a space (this removes `:` `#` `;` `%` `{` `}` `<` `>` `"`, backticks and every
 * line break or control character), runs of spaces collapse, a name that would start with a keyword, a digit
 * (a date) or punctuation gets a `· ` prefix, and an empty name becomes `(unnamed)`.
 */
export function ganttText(name: string): string {
  let text = name.replace(/[^\p{L}\p{N} \-_.,/()+=@[\]'&*!?]/gu, ' ').replace(/\s+/g, ' ').trim();
  if (text.length > MAX_NAME) text = `${text.slice(0, MAX_NAME - 1).trimEnd()}…`;
  if (text === '') return '(unnamed)';
  if (KEYWORD.test(text) || !/^\p{L}/u.test(text)) text = `· ${text}`;
  return text;
}

/**
 * The chart as a fenced ```mermaid block (ending with a newline), or '' when there is no phase to draw.
 * Every phase is one task line `<name> :<tags>p<n>, <start>, <end>`.
 */
export function mermaidGantt(phases: GanttPhase[], options: GanttOptions = {}): string {
  const drawn = phases.filter((p) => Number.isFinite(p.startMs) && Number.isFinite(p.endMs));
  if (drawn.length === 0) return '';
  const lines = ['```mermaid', 'gantt'];
  if (options.title !== undefined) lines.push(`  title ${ganttText(options.title)}`);
  lines.push('  dateFormat x', '  axisFormat %H:%M:%S', '  todayMarker off');
  let section: string | undefined;
  drawn.forEach((p, i) => {
    if (p.section !== undefined && p.section !== section) {
      section = p.section;
      lines.push(`  section ${ganttText(section)}`);
    }
    const start = Math.round(p.startMs);
    const end = Math.max(start, Math.round(p.endMs));
    const tag = p.status === 'failed' || p.status === 'cancelled' ? 'crit, ' : '';
    lines.push(`  ${ganttText(p.name)} :${tag}p${i + 1}, ${start}, ${end}`);
  });
  lines.push('```', '');
  return lines.join('\n');
}

/** The bars of a step sequence's timeline (skipped steps and entries without a valid start are left out). */
export function stepPhases(steps: StepTiming[], section?: string): GanttPhase[] {
  return steps.flatMap((t) => {
    const startMs = Date.parse(t.startedAt);
    if (t.status === 'skipped' || !Number.isFinite(startMs)) return [];
    return [{ name: t.step, startMs, endMs: startMs + t.seconds * 1000, status: t.status, ...(section !== undefined ? { section } : {}) }];
  });
}

/** The bars of phases recorded as a start (ISO 8601) and seconds; phases without a start are left out. */
export function timedPhases(phases: { phase: string; seconds: number; startedAt?: string }[], section?: string): GanttPhase[] {
  return stepPhases(
    phases.flatMap((p) => (p.startedAt !== undefined ? [{ step: p.phase, startedAt: p.startedAt, seconds: p.seconds, status: 'ok' as const }] : [])),
    section,
  );
}
