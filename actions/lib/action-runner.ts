/**
 * The frame every action's entry point runs in: one clean `::error` annotation instead of a stack trace,
 * a failed exit code, and a `post:` phase that runs cleanup even when the job was cancelled.
 */
import * as core from '@actions/core';
import { annotationText, logText } from './escape.js';
import { InputError, type InputGetter } from './inputs.js';

/** Inputs as the runner passes them (`INPUT_<NAME>` variables), read with @actions/core. */
export const actionInputs: InputGetter = (name) => core.getInput(name);

export interface ActionPhases {
  /** The action's work: read inputs → call a module → set outputs and summary. */
  main: () => Promise<void>;
  /** Runs in the `post:` step (also after cancellation or failure): stop children, remove temporary files. */
  post?: () => Promise<void>;
}

/**
 * Writes text to the job log, escaped line by line ({@link logText}): whatever an input, a file, a guest or
 * a server put into it, no line can be a workflow command or a terminal escape. Every action logs through
 * this (or {@link logGroup}), never with a bare `core.info`.
 */
export function logInfo(text: string): void {
  core.info(logText(text));
}

/** Starts a log group whose name is escaped like an annotation. */
export function logGroup(name: string): void {
  core.startGroup(annotationText(name));
}

/**
 * An error annotation: `::error title=<title>::<message>` on one line. The toolkit encodes `%`, CR and LF
 * in the message (`%25`, `%0D`, `%0A`), so a line break that came from a value cannot end the annotation
 * and start a command; other control characters are made visible ({@link annotationText}).
 */
export function annotateError(message: string, title: string): void {
  core.error(annotationText(message), { title: annotationText(title) });
}

/** Marks a failure: an `::error title=<action>::` line and exit code 1. Never prints a stack trace. */
export function failAction(title: string, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.stack && !(error instanceof InputError)) core.debug(annotationText(error.stack));
  annotateError(message, title);
  process.exitCode = core.ExitCode.Failure;
}

/**
 * Runs an action. The runner calls the same bundle for `main:` and `post:`; the `isPost` state, saved
 * during main, tells them apart.
 */
export async function runAction(title: string, phases: ActionPhases): Promise<void> {
  const isPost = core.getState('isPost') === 'true';
  try {
    if (isPost) {
      if (phases.post) await phases.post();
      return;
    }
    core.saveState('isPost', 'true');
    await phases.main();
  } catch (error) {
    failAction(title, error);
  }
}

/** Fails an action that has not been implemented yet, clearly and without pretending to work. */
export async function notImplemented(title: string): Promise<void> {
  await runAction(title, {
    main: async () => {
      throw new Error(`${title} is not implemented yet (see the labforge issue tracker; no work was done)`);
    },
  });
}

/** Sets every entry as a step output. */
export function setOutputs(outputs: Record<string, string>): void {
  for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
}

/** Text as HTML: the toolkit's summary puts headings and table cells into the page as they are. */
export function summaryHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\r?\n/g, '<br>');
}

/**
 * Writes a two-column job summary table under a heading; `chart` (a markdown block such as the phase timeline
 * of summary-gantt.ts) goes right below the table, `after` below that. The heading and cells are text: they
 * are HTML-escaped (a newline becomes a line break), so a value from an input, a file or a guest cannot
 * become markup in the summary.
 */
export async function writeSummaryTable(heading: string, rows: [string, string][], after?: string, chart?: string): Promise<void> {
  const summary = core.summary.addHeading(summaryHtml(heading), 3).addTable([
    [
      { data: 'What', header: true },
      { data: 'Value', header: true },
    ],
    ...rows.map(([k, v]) => [summaryHtml(k), summaryHtml(v)]),
  ]);
  // The blank line ends the table's HTML block: only then is a fenced block after it rendered as markdown.
  if (chart) summary.addRaw(`\n${chart}`, true);
  if (after) summary.addRaw(after, true);
  await summary.write();
}
