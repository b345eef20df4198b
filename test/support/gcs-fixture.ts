/**
 * The GCS emulator (gcs-emulator.ts) for one test file: started in `beforeAll` with a scratch directory,
 * stopped and the directory removed in `afterAll`, and before each test a fresh bucket with no faults left
 * from the test before. Call it once at the top level of the file; read its fields inside hooks and tests.
 */
import { afterAll, beforeAll, beforeEach } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GcsEmulator } from './gcs-emulator.js';

export interface GcsFixture {
  /** The running emulator. */
  readonly emulator: GcsEmulator;
  /** This test's bucket (`<bucketPrefix>-<n>`, new for every test). */
  readonly bucket: string;
  /** A scratch directory for the file's sources and destinations. */
  readonly dir: string;
}

export interface GcsFixtureOptions {
  /** Buckets are named `<bucketPrefix>-1`, `<bucketPrefix>-2`, … */
  bucketPrefix: string;
  /** Prefix of the scratch directory's name under the system temp directory. */
  dirPrefix: string;
}

export function useGcsEmulator(opts: GcsFixtureOptions): GcsFixture {
  let emulator: GcsEmulator | undefined;
  let dir: string | undefined;
  let bucket: string | undefined;
  let seq = 0;
  beforeAll(async () => {
    emulator = await GcsEmulator.start();
    dir = mkdtempSync(join(tmpdir(), opts.dirPrefix));
  });
  afterAll(async () => {
    await emulator?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    bucket = `${opts.bucketPrefix}-${++seq}`;
    emulator!.createBucket(bucket);
    emulator!.clearFaults();
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the GCS fixture's ${what} is read before its beforeAll/beforeEach ran`);
    return value;
  };
  return {
    get emulator() {
      return started(emulator, 'emulator');
    },
    get bucket() {
      return started(bucket, 'bucket');
    },
    get dir() {
      return started(dir, 'directory');
    },
  };
}
