/**
 * One concern: the errors of starting from the published standard image — the OVA is there but cannot be
 * used. Shared by the fetch (standard-source.ts), the stream verification (ova-verify.ts) and the disk
 * conversion (ova-disk-convert.ts), so that a caller needs one `instanceof` for all of them.
 */

/** The published standard OVA is there but cannot be used: tampered, truncated, mislabelled, incomplete. */
export class StandardSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StandardSourceError';
  }
}

/** The OVA's own OVF properties name another appliance, build type or version. */
export class MislabelledOvaError extends StandardSourceError {
  constructor(message: string) {
    super(message);
    this.name = 'MislabelledOvaError';
  }
}
