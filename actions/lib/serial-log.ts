/**
 * Picks the lines of a guest's serial console log that explain why it is not reachable: kernel panics,
 * emergency mode, disks that do not mount, no DHCP lease, cloud-init / autoinstall errors, sshd failing to
 * start. Used by ssh-diagnose, packer-build and vlab-warm to quote the guest's own words in a report.
 */
import { readFile } from 'node:fs/promises';
import { printable } from './escape.js';

/** What a quoted line is evidence of. */
export type SerialFinding =
  | 'kernel-panic'
  | 'emergency-mode'
  | 'disk'
  | 'network'
  | 'cloud-init'
  | 'autoinstall'
  | 'sshd'
  | 'systemd-failed'
  | 'out-of-memory'
  | 'login-prompt';

export interface SerialLine {
  /** 1-based line number in the log. */
  line: number;
  /** The line without terminal escape sequences and carriage returns. */
  text: string;
  finding: SerialFinding;
}

export interface SerialEvidence {
  /** Matching lines in log order (at most `maxLines`, the last ones kept when there are more). */
  lines: SerialLine[];
  /** How many lines matched in all. */
  matched: number;
  /** The last few non-empty lines of the log: the guest's last words. */
  tail: string[];
  /** Number of lines in the log. */
  total: number;
}

export interface SerialLogOptions {
  /** Most matching lines to return (default 25). */
  maxLines?: number;
  /** Lines of tail to return (default 5). */
  tailLines?: number;
}

const PATTERNS: [SerialFinding, RegExp][] = [
  ['kernel-panic', /Kernel panic|not syncing|VFS: Unable to mount root|BUG: unable to handle|Oops:|general protection fault/i],
  ['emergency-mode', /emergency mode|Give root password for maintenance|Entering emergency|dracut-initqueue.*timeout|Dropping to a shell|\(initramfs\)/i],
  ['disk', /Timed out waiting for device|I\/O error|EXT4-fs error|XFS.*(error|corrupt)|Failed to mount|No such device.*root|Cannot open root device|fsck.*(failed|UNEXPECTED)/i],
  ['network', /No DHCPOFFERS|DHCP.*(fail|timeout|no lease)|no lease|Failed to start .*(Network|networkd|ifup|Raise network)|wait-online.*(timed out|fail)|Network is unreachable|carrier lost/i],
  ['autoinstall', /autoinstall.*(error|fail|invalid)|subiquity.*(error|Traceback|crash)|curtin.*(error|fail)|An error occurred.*install/i],
  ['cloud-init', /cloud-init.*(ERROR|WARNING|Traceback|fail|schema|invalid|Exception)|Failed to start .*cloud-init|ci-info: .*(no|fail)|Unhandled non-multipart|cc_\w+.*(fail|error)/i],
  ['sshd', /sshd.*(error|fatal|failed|Could not load host key|no hostkeys|Missing privilege separation)|Failed to start .*(OpenSSH|Secure Shell|ssh)|ssh\.service.*(fail|Failed)|Bad configuration option|sshd_config.*line \d+/i],
  ['out-of-memory', /Out of memory|oom-killer|Killed process/i],
  ['systemd-failed', /\[FAILED\]|Failed to start|Dependency failed|Job .* timed out/i],
  ['login-prompt', /\blogin:\s*$/i],
];

/** Terminal escapes (colours, cursor movement) that systemd and consoles write into serial logs. */
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;

/**
 * A serial line as it is quoted in logs and reports: colour and cursor sequences and the other C0 controls
 * dropped, anything left that a terminal or the runner would act on (C1 controls, `::` at the start, `##[`)
 * escaped by {@link printable}.
 */
function cleanLine(raw: string): string {
  // eslint-disable-next-line no-control-regex
  return printable(raw.replace(ANSI, '').replace(/\r/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ''), Number.POSITIVE_INFINITY).trimEnd();
}

/** Classifies one cleaned line, or returns undefined when it explains nothing. */
export function classifySerialLine(text: string): SerialFinding | undefined {
  for (const [finding, pattern] of PATTERNS) if (pattern.test(text)) return finding;
  return undefined;
}

/** Finds the explanatory lines in serial log text. */
export function relevantSerialText(text: string, options: SerialLogOptions = {}): SerialEvidence {
  const maxLines = options.maxLines ?? 25;
  const tailLines = options.tailLines ?? 5;
  const all = text.split('\n').map(cleanLine);
  const lines: SerialLine[] = [];
  let matched = 0;
  all.forEach((t, i) => {
    const finding = classifySerialLine(t);
    if (finding === undefined) return;
    matched++;
    lines.push({ line: i + 1, text: t.length > 300 ? `${t.slice(0, 300)}…` : t, finding });
    if (lines.length > maxLines) lines.shift();
  });
  const tail = all.filter((t) => t.trim() !== '').slice(-tailLines);
  return { lines, matched, tail, total: all.length };
}

/**
 * Reads a serial console log (`{ path }`) or takes its text (`{ text }`) and returns the lines that explain a
 * failure. A log that does not exist yet reads as empty (a VM that never started writes none).
 */
export async function relevantSerialLines(source: { path: string } | { text: string }, options: SerialLogOptions = {}): Promise<SerialEvidence> {
  if ('text' in source) return relevantSerialText(source.text, options);
  let text = '';
  try {
    text = await readFile(source.path, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return relevantSerialText(text, options);
}
