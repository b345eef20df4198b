import { describe, it, expect } from '@jest/globals';
import { runSteps, StepFailedError, type Step } from '../../actions/lib/step-sequence.js';

type Log = string[];
const step = (name: string, run?: (signal: AbortSignal) => Promise<void>): Step<Log> => ({
  name,
  run: async (log, signal) => {
    log.push(`run ${name}`);
    if (run) await run(signal);
  },
  cleanup: async (log, outcome) => {
    log.push(`cleanup ${name} (${outcome})`);
  },
});

describe('step sequence', () => {
  it('runs the steps in order and every cleanup in reverse after success', async () => {
    const log: Log = [];
    const timeline = await runSteps([step('a'), step('b')], log);
    expect(log).toEqual(['run a', 'run b', 'cleanup b (succeeded)', 'cleanup a (succeeded)']);
    expect(timeline.map((t) => `${t.step}:${t.status}`)).toEqual(['a:ok', 'b:ok']);
  });

  it('stops at a failed step, cleans up only what started, and names the step', async () => {
    const log: Log = [];
    const failing = step('b', async () => {
      throw new Error('disk full');
    });
    const err = await runSteps([step('a'), failing, step('c')], log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepFailedError);
    expect((err as StepFailedError).message).toBe('b: disk full');
    expect(log).toEqual(['run a', 'run b', 'cleanup b (failed)', 'cleanup a (failed)']);
  });

  it('cancels the running step through its signal and still cleans up', async () => {
    const log: Log = [];
    const controller = new AbortController();
    const slow = step('slow', (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))));
    setTimeout(() => controller.abort(new Error('cancelled by the user')), 50);
    const err = await runSteps([step('a'), slow, step('never')], log, { signal: controller.signal }).catch((e: unknown) => e);
    expect((err as StepFailedError).timeline.at(-1)?.status).toBe('cancelled');
    expect(log).toEqual(['run a', 'run slow', 'cleanup slow (cancelled)', 'cleanup a (cancelled)']);
  });

  it('keeps cleaning up when a cleanup fails, and reports it', async () => {
    const log: Log = [];
    const bad: Step<Log> = { name: 'bad', run: async () => undefined, cleanup: async () => Promise.reject(new Error('rm failed')) };
    const err = await runSteps([step('a'), bad], log).catch((e: unknown) => e);
    expect((err as StepFailedError).step).toBe('cleanup');
    expect(log).toContain('cleanup a (succeeded)');
  });

  it('skips a step and its cleanup when asked', async () => {
    const log: Log = [];
    const timeline = await runSteps([step('a'), { ...step('b'), skip: () => true }], log);
    expect(log).toEqual(['run a', 'cleanup a (succeeded)']);
    expect(timeline[1]?.status).toBe('skipped');
  });
});
