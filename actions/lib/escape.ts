/**
 * One concern: text that came from outside — an input, a file, a guest, a server — made safe for where it
 * goes: a log line, a job annotation, a shell command line.
 *
 * **Logs.** The runner reads every stdout line (it splits on CR as well as LF) and executes a line whose
 * text, after leading white space, starts with `::` (`::error::`, `::add-mask::`, `::stop-commands::`…),
 * and also the legacy form `##[command]` anywhere in a line. A terminal executes escape sequences
 * (`ESC]0;title BEL` retitles it, CSI sequences move the cursor or hide text). So before such text is
 * logged:
 * - control characters — C0 except TAB, DEL and C1 (U+0080–U+009F) — become visible as `\u001b`-style text
 *   (a JSON escape, so JSON printed on stdout stays valid JSON with the same value);
 * - a line that would start with `::` gets its first colon written as `\u003a`;
 * - `##[` is written as `##\u005b`.
 * The escaped text contains none of these patterns, so escaping twice gives the same text as escaping once
 * (idempotent), and lib modules may escape a value that the action's log sink escapes again.
 *
 * **Annotations.** A message given to `core.error`/`core.warning` is encoded by the toolkit with the
 * runner's data rules (`%` → `%25`, CR → `%0D`, LF → `%0A`), so a line break cannot end the annotation and
 * start a command; {@link annotationText} only makes the other control characters visible. Code that writes
 * a workflow command itself uses {@link escapeCommandData}.
 *
 * **Shell.** {@link shellQuote} quotes a word for a POSIX shell command line (copy-paste commands, remote
 * commands); {@link powershellQuote} for PowerShell.
 */

// C0 controls except TAB, DEL, C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
// The same without CR and LF (they are line breaks there, handled by the caller or by the toolkit).
// eslint-disable-next-line no-control-regex
const CONTROLS_BUT_NEWLINES = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;
/** A line the runner reads as a workflow command: `::` after leading white space (as .NET's TrimStart). */
const COMMAND_START = /^([\s\uFEFF]*):/;
const LEGACY_COMMAND = /##\[/g;

function visible(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** One line (no CR/LF left in it) with its workflow-command patterns neutralized. */
function neutralizeLine(line: string): string {
  const out = line.replace(LEGACY_COMMAND, '##\\u005b');
  return /^[\s\uFEFF]*::/.test(out) ? out.replace(COMMAND_START, '$1\\u003a') : out;
}

/**
 * A value for one log line: every control character (CR and LF too) visible as `\u000a`-style text, no
 * workflow command can start in it, and at most `max` characters (then `…`).
 */
export function printable(value: string, max = 300): string {
  const clean = neutralizeLine(value.replace(CONTROLS, visible));
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** The lines of a multi-line text (guest output, a file, a report), each escaped as in {@link logText}. */
export function logLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/).map((line) => neutralizeLine(line.replace(CONTROLS, visible)));
}

/**
 * Multi-line text for the log, escaped line by line: CR, LF and CRLF become LF line breaks, other control
 * characters become visible, and no line can start a workflow command. The number of lines is kept.
 */
export function logText(text: string): string {
  return logLines(text).join('\n');
}

/**
 * The message of an annotation (`core.error`, `core.warning`, `core.notice`): control characters visible
 * except TAB, CR and LF, which the toolkit encodes as `%0D`/`%0A` (and `%` as `%25`) when it writes the
 * command, so the message stays inside its one `::error` line.
 */
export function annotationText(text: string): string {
  return text.replace(CONTROLS_BUT_NEWLINES, visible);
}

/**
 * The toolkit's `escapeData` (the runner's data encoding): `%` → `%25`, CR → `%0D`, LF → `%0A`. For code
 * that writes a workflow command line itself; `core.*` functions already apply it.
 */
export function escapeCommandData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * POSIX shell quoting of one word: left bare when it holds only characters no shell treats specially,
 * otherwise in single quotes (a `'` inside becomes `'\''`). `$(…)`, backquotes, `;`, spaces and globs
 * are then plain text.
 */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** PowerShell quoting of one word: in single quotes (a verbatim string; a `'` inside is doubled). */
export function powershellQuote(word: string): string {
  return `'${word.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}
