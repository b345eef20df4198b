/**
 * Short tool invocations (version probes, `qemu-img info`/`map`/`create`, `openssl passwd`, the seed's ISO
 * tool, `git rev-parse`) through @actions/exec's `getExecOutput`: silent (no `[command]` echo, nothing
 * copied into the job log), the exit code returned rather than thrown, so that each caller words its own
 * error with the tool's stderr. Long-running children that need their own process group for cancellation
 * (packer, qemu-system, qemu-img convert) do not come here: they keep `spawn`.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { getExecOutput } from '@actions/exec';

export interface ToolOutput {
  /** The exit code; null when a signal ended the tool. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface ToolOutputOptions {
  /** Written to the tool's stdin (then closed). */
  input?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Checked before the tool starts (a short tool is not interrupted once running). */
  signal?: AbortSignal;
}

/**
 * The tool could not be started. Like Node's spawn error it carries `code` (`ENOENT`: not found on the PATH
 * or no such file; `EACCES`: not executable) and the message `spawn <tool> <code>`, so callers keep their
 * "cannot run <tool> (…); install <package>" wording.
 */
export class ToolStartError extends Error {
  constructor(
    readonly tool: string,
    readonly code: 'ENOENT' | 'EACCES',
  ) {
    super(`spawn ${tool} ${code}`);
    this.name = 'ToolStartError';
  }
}

/**
 * @actions/exec parses its first argument as a command line; the tool goes in double quotes so that a path
 * with spaces stays one word. A quote, a trailing backslash or trailing white space cannot survive that
 * parsing: such a path is refused rather than run as something else.
 */
function quoteTool(tool: string): string {
  if (tool === '' || /["\n]|\\$|\s$/.test(tool)) throw new Error(`cannot run ${JSON.stringify(tool)}: a tool path must not be empty, contain a double quote or a line break, or end in a backslash or white space`);
  return `"${tool}"`;
}

/** Runs a short tool to completion and returns its exit code and output (see the module comment). */
export async function toolOutput(tool: string, args: string[], options: ToolOutputOptions = {}): Promise<ToolOutput> {
  if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error(`${tool} was cancelled`);
  const commandLine = quoteTool(tool);
  try {
    const r = await getExecOutput(commandLine, args, {
      silent: true,
      ignoreReturnCode: true,
      ...(options.input !== undefined ? { input: Buffer.from(options.input) } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
    });
    return r;
  } catch (e) {
    // @actions/io's `which` refuses a tool it cannot find or execute before anything starts.
    if (e instanceof Error && e.message.startsWith('Unable to locate executable file')) {
      const exists = tool.includes('/') ? await access(tool, constants.F_OK).then(() => true, () => false) : false;
      throw new ToolStartError(tool, exists ? 'EACCES' : 'ENOENT');
    }
    throw e;
  }
}
