/**
 * tool-output.ts runs real programs through @actions/exec: exit codes and output come back, nothing reaches
 * the job log, a missing or non-executable tool is named like Node's spawn error, odd paths stay one word.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolStartError, toolOutput } from '../../actions/lib/tool-output.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-tool-output-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('short tools through @actions/exec', () => {
  it('returns stdout, stderr and a non-zero exit code instead of throwing, and logs nothing', async () => {
    const write = jest.spyOn(process.stdout, 'write');
    try {
      const r = await toolOutput('sh', ['-c', 'echo out; echo err >&2; exit 3']);
      expect(r).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
      expect(write).not.toHaveBeenCalled(); // silent: no `[command]sh -c …` echo, no copy of the output
    } finally {
      write.mockRestore();
    }
  });

  it('passes arguments verbatim and input on stdin (never in argv)', async () => {
    const r = await toolOutput('sh', ['-c', 'printf "%s|" "$@"; cat', 'sh', 'two words', '"quoted"', "it's", '$HOME'], { input: 'secret on stdin\n' });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`two words|"quoted"|it's|$HOME|secret on stdin\n`);
  });

  it('runs a tool whose path has spaces', async () => {
    const sub = join(dir, 'a dir with spaces');
    mkdirSync(sub);
    const tool = join(sub, 'my tool');
    writeFileSync(tool, '#!/bin/sh\necho "ran $1"\n');
    chmodSync(tool, 0o755);
    expect((await toolOutput(tool, ['ok'])).stdout).toBe('ran ok\n');
  });

  it('names a missing tool ENOENT and a non-executable one EACCES, like spawn', async () => {
    const missing = await toolOutput('labforge-no-such-tool', []).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ToolStartError);
    expect(missing).toMatchObject({ code: 'ENOENT', message: 'spawn labforge-no-such-tool ENOENT' });
    const plain = join(dir, 'not-executable');
    writeFileSync(plain, '#!/bin/sh\n');
    chmodSync(plain, 0o644);
    expect(await toolOutput(plain, []).catch((e: unknown) => e)).toMatchObject({ code: 'EACCES', message: `spawn ${plain} EACCES` });
  });

  it('refuses a tool path that the command-line parsing of @actions/exec would change', async () => {
    await expect(toolOutput('/tmp/a"b', [])).rejects.toThrow(/must not be empty, contain a double quote/);
    await expect(toolOutput('/tmp/ab ', [])).rejects.toThrow(/end in a backslash or white space/);
  });

  it('does not start when the signal is already aborted', async () => {
    const c = new AbortController();
    c.abort(new Error('cancelled by SIGTERM'));
    await expect(toolOutput('sh', ['-c', 'exit 0'], { signal: c.signal })).rejects.toThrow('cancelled by SIGTERM');
  });
});
