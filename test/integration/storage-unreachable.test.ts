/**
 * A storage endpoint nothing listens on (issue 15, "answered weakly"): the real Storage client against a
 * closed 127.0.0.1 port must fail with "cannot reach <url>", not an HTTP status it never got.
 */
import { describe, expect, it } from '@jest/globals';
import { createStorageClient } from '../../actions/lib/gcs-upload.js';
import { RetriesExhaustedError, withRetry } from '../../actions/lib/storage-retry.js';
import { closedPort } from '../support/closed-port.js';

describe('a storage endpoint that refuses the connection', () => {
  it('says cannot reach <url> (ECONNREFUSED), after the retries, and what to check', async () => {
    const port = await closedPort();
    const storage = createStorageClient({ endpoint: `http://127.0.0.1:${port}` });
    const err = (await withRetry(() => storage.bucket('labs-bucket').file('x.ova').getMetadata(), { what: 'check gs://labs-bucket/x.ova', attempts: 2, baseDelayMs: 10 }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(RetriesExhaustedError);
    expect(err.message).toBe(
      `check gs://labs-bucket/x.ova: cannot reach http://127.0.0.1:${port} (ECONNREFUSED); check the endpoint or destination and the network — still failing after 2 attempts; run the same upload again to resume`,
    );
    expect(err.message).not.toMatch(/HTTP|answered|500/);
  });
});
