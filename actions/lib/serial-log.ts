/**
 * Picks the lines of a guest's serial console log that explain why it is not reachable: kernel panics,
 * emergency mode, disks that do not mount, no DHCP lease, cloud-init / autoinstall errors, sshd failing to
 * start. Used by ssh-diagnose, packer-build and vlab-warm to quote the guest's own words in a report.
 */
import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
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
  /**
   * Why there is nothing to quote, in one line naming the log: it does not exist, cannot be read, or is
   * empty. Absent when the log was read and holds something.
   */
  problem?: string;
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
 * failure. A log that does not exist, cannot be read or is empty gives no lines and a `problem` that says so
 * (which path, why): a report never stays silent about the evidence it could not quote.
 */
export async function relevantSerialLines(source: { path: string } | { text: string }, options: SerialLogOptions = {}): Promise<SerialEvidence> {
  if ('text' in source) return relevantSerialText(source.text, options);
  const problem = await serialLogProblem(source.path);
  if (problem !== undefined) return { lines: [], matched: 0, tail: [], total: 0, problem };
  try {
    return relevantSerialText(await readFile(source.path, 'latin1'), options);
  } catch (e) {
    // Gone or made unreadable between the check and the read.
    return { lines: [], matched: 0, tail: [], total: 0, problem: unreadable(source.path, e as NodeJS.ErrnoException) };
  }
}

/**
 * One line saying why the serial log at `path` holds no evidence — it does not exist, is not a file, cannot
 * be read, or is empty — or undefined when it can be read and is not empty.
 */
export async function serialLogProblem(path: string): Promise<string | undefined> {
  const where = printable(path, 300);
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    return unreadable(path, e as NodeJS.ErrnoException);
  }
  if (!info.isFile()) return `serial log ${where} is not a file (${info.isDirectory() ? 'a directory' : 'a special file'}): give the file QEMU writes the serial console to (-serial file:PATH)`;
  try {
    await access(path, fsConstants.R_OK);
  } catch (e) {
    return unreadable(path, e as NodeJS.ErrnoException);
  }
  if (info.size === 0) return `serial log ${where} is empty: the guest wrote nothing to its serial console (no console=ttyS0 on its kernel command line, or it never got that far)`;
  return undefined;
}

function unreadable(path: string, e: NodeJS.ErrnoException): string {
  const where = printable(path, 300);
  if (e.code === 'ENOENT') return `serial log ${where} does not exist: the VM wrote none (it never started, or its serial console goes elsewhere)`;
  if (e.code === 'ENOTDIR') return `serial log ${where} does not exist: a part of its path is not a directory`;
  return `serial log ${where} cannot be read (${e.code ?? printable(e.message, 200)}): check its permissions`;
}
