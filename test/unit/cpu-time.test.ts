import { describe, expect, it } from '@jest/globals';
import { parseTimes, spawnTimed } from '../support/cpu-time.js';
import { expectWithinBadInputBound, needsSecondRun } from '../support/input-error.js';

const run = async (script: string, killAfterMs?: number) => {
  const t = spawnTimed(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  t.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => t.kill(), killAfterMs);
  const started = Date.now();
  const code = await new Promise<number | null>((res) => t.child.on('close', (c) => res(c)));
  clearTimeout(timer);
  return { code, out, cpuMs: await t.cpuMs, ms: Date.now() - started };
};

describe('CPU time of a command (test/support/cpu-time.ts)', () => {
  it("parses bash's times output, and nothing else", () => {
    expect(parseTimes('0m0.004s 0m0.001s\n0m0.842s 0m0.120s\n')).toBe(962);
    expect(parseTimes('0m0.000s 0m0.000s\n1m2.500s 0m0.000s')).toBe(62_500);
    expect(parseTimes('')).toBeNull();
    expect(parseTimes('0m0.004s 0m0.001s')).toBeNull();
  });

  it('counts a busy loop, not a sleep, and passes on the exit code and output', async () => {
    const busy = await run('const end = Date.now() + 600; while (Date.now() < end); process.stdout.write("done"); process.exit(3)');
    expect({ code: busy.code, out: busy.out }).toEqual({ code: 3, out: 'done' });
    expect(busy.cpuMs).toBeGreaterThanOrEqual(550);
    const sleep = await run('setTimeout(() => {}, 800)');
    expect(sleep.code).toBe(0);
    expect(sleep.ms).toBeGreaterThanOrEqual(800);
    expect(sleep.cpuMs).toBeLessThan(550);
  });

  it('counts the processes the command waited for', async () => {
    const r = await run('require("node:child_process").execFileSync(process.execPath, ["-e", "const e = Date.now() + 600; while (Date.now() < e);"])');
    expect(r.code).toBe(0);
    expect(r.cpuMs).toBeGreaterThanOrEqual(550);
  });

  it('kill stops the command with bash, and reports no CPU time', async () => {
    const r = await run('setInterval(() => {}, 1000)', 300);
    expect(r.code).toBeNull();
    expect(r.cpuMs).toBeNull();
    expect(r.ms).toBeLessThan(5_000);
  });
});

describe("issue 15's bad-input time bound", () => {
  const t = (ms: number, bound: number, cpuMs: number | null) => ({ ms, bound, cpuMs });
  it('passes a fast run, and a run slow only under load whose second run alone is fast', () => {
    expect(() => expectWithinBadInputBound(t(900, 5000, 700))).not.toThrow();
    expect(needsSecondRun(t(18_900, 12_100, 900))).toBe(true);
    expect(() => expectWithinBadInputBound(t(18_900, 12_100, 900), t(1200, 5000, 800))).not.toThrow();
  });

  it('fails a run that computes too long, a wait that is slow twice, and a run that was killed', () => {
    expect(needsSecondRun(t(9000, 5000, 8000))).toBe(false);
    expect(() => expectWithinBadInputBound(t(9000, 5000, 8000))).toThrow();
    expect(() => expectWithinBadInputBound(t(3000, 5000, 5000))).toThrow();
    expect(() => expectWithinBadInputBound(t(10_000, 5000, 300), t(10_000, 5000, 300))).toThrow();
    expect(() => expectWithinBadInputBound(t(15_000, 5000, null))).toThrow();
  });
});
