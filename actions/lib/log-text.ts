/**
 * One concern: making text that came from outside (an object name, a remote error message, a file's
 * content) safe to put on a log line — no control characters, so no line break that could start a workflow
 * command, and a bounded length.
 */

/** A value for a log line: control characters escaped as `\xNN`, cut to `max` characters with `…`. */
export function printable(value: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
