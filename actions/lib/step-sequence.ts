/**
 * A build as a sequence of steps, each with a `run` and a `cleanup` that undoes what it did (the shape of
 * packer-plugin-qemu's steps). Steps run in order; whatever happens — success, a failed step, cancellation —
 * the cleanups of every step that started run afterwards in reverse order, so a failure can never leave a
 * VM or an overlay behind. Cleanups must be idempotent and tolerate a half-done run.
 */

/** One step of a sequence over a shared state object `S`. */
export interface Step<S> {
  /** Short name, also the key in the timeline (e.g. `boot`, `ssh-up`). */
  name: string;
  /** Does the step's work; throws to fail the sequence. `signal` is aborted on cancellation. */
  run: (state: S, signal: AbortSignal) => Promise<void>;
  /** Undoes the step (kill what it started, delete what it made). Runs even when `run` failed half way. */
  cleanup?: (state: S, outcome: SequenceOutcome) => Promise<void>;
  /** Skip this step (its cleanup too) when this returns true. */
  skip?: (state: S) => boolean;
}

export type SequenceOutcome = 'succeeded' | 'failed' | 'cancelled';

/** One entry of a sequence's timeline: when a step started and how long it took, in seconds. */
export interface StepTiming {
  step: string;
  startedAt: string;
  seconds: number;
  status: 'ok' | 'failed' | 'cancelled' | 'skipped';
}

/** A step failed; `step` names it and `cause` is what it threw. */
export class StepFailedError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: Error,
    readonly timeline: StepTiming[],
    readonly cleanupErrors: Error[],
  ) {
    super(`${step}: ${cause.message}`);
    this.name = 'StepFailedError';
  }
}

export interface SequenceOptions {
  /** Aborting it cancels the running step; the cleanups still run. */
  signal?: AbortSignal;
  onStepStart?: (step: string) => void;
  onStepEnd?: (timing: StepTiming) => void;
  /** Reports a cleanup that failed (the sequence goes on cleaning up). */
  onCleanupError?: (step: string, error: Error) => void;
}

const round = (ms: number) => Math.round(ms / 100) / 10;

/**
 * Runs the steps, then every started step's cleanup in reverse. Resolves with the timeline; rejects with
 * a {@link StepFailedError} naming the failed step (after cleaning up).
 */
export async function runSteps<S>(steps: Step<S>[], state: S, options: SequenceOptions = {}): Promise<StepTiming[]> {
  const timeline: StepTiming[] = [];
  const started: Step<S>[] = [];
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });

  let failure: { step: string; error: Error } | undefined;
  let outcome: SequenceOutcome = 'succeeded';
  for (const step of steps) {
    if (step.skip?.(state)) {
      const t: StepTiming = { step: step.name, startedAt: new Date().toISOString(), seconds: 0, status: 'skipped' };
      timeline.push(t);
      options.onStepEnd?.(t);
      continue;
    }
    const t0 = Date.now();
    const startedAt = new Date(t0).toISOString();
    started.push(step);
    options.onStepStart?.(step.name);
    try {
      if (controller.signal.aborted) throw controller.signal.reason instanceof Error ? controller.signal.reason : new Error('cancelled');
      await step.run(state, controller.signal);
      const t: StepTiming = { step: step.name, startedAt, seconds: round(Date.now() - t0), status: 'ok' };
      timeline.push(t);
      options.onStepEnd?.(t);
    } catch (e) {
      const cancelled = controller.signal.aborted;
      outcome = cancelled ? 'cancelled' : 'failed';
      const t: StepTiming = { step: step.name, startedAt, seconds: round(Date.now() - t0), status: cancelled ? 'cancelled' : 'failed' };
      timeline.push(t);
      options.onStepEnd?.(t);
      failure = { step: step.name, error: e instanceof Error ? e : new Error(String(e)) };
      break;
    }
  }
  options.signal?.removeEventListener('abort', onAbort);

  const cleanupErrors: Error[] = [];
  for (const step of [...started].reverse()) {
    if (!step.cleanup) continue;
    try {
      await step.cleanup(state, outcome);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      cleanupErrors.push(err);
      options.onCleanupError?.(step.name, err);
    }
  }
  if (failure) throw new StepFailedError(failure.step, failure.error, timeline, cleanupErrors);
  if (cleanupErrors.length > 0) {
    throw new StepFailedError('cleanup', new Error(cleanupErrors.map((e) => e.message).join('; ')), timeline, cleanupErrors);
  }
  return timeline;
}
