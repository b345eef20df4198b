/**
 * Cancellation by the job or the terminal: SIGINT (Ctrl-C) and SIGTERM (the runner cancelling a job) abort
 * the signal handed to `work`, which stops its children and removes what it left half done. The handlers are
 * removed when `work` settles, so a later signal gets Node's default behaviour again.
 */
export async function untilTerminated<T>(work: (signal: AbortSignal) => Promise<T>, reason?: () => Error): Promise<T> {
  const controller = new AbortController();
  const stop = () => controller.abort(reason?.());
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
