/**
 * Time to verdict of ssh-diagnose for each cause, on loopback, against a real sshd (or a real misbehaving
 * listener), with wait-seconds 0. Target: at most 2 s per cause. The sshd start and the user creation are
 * not timed; each scenario's diagnosis is run `--runs` times (default 5) and the median and maximum shown.
 *
 *   npm run bench -- --only ssh-diagnose [--quick]
 *   node build/bench/ssh-diagnose.js [--quick] [--runs 5] [--json]
 *
 * --quick: 1 run per scenario (--runs 1); the same scenarios against the same servers.
 *
 * Needs root (it creates a throwaway user and runs /usr/sbin/sshd), like the integration tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { diagnoseSsh, type SshDiagnoseOptions } from '../actions/lib/ssh-diagnose.js';
import type { SshCause } from '../actions/lib/ssh-causes.js';
import { createTestUser, generateClientKey, startSshd, type SshdOptions } from '../test/support/sshd.js';
import { bannerOnlyListener, closingListener, fullBacklogListener, httpListener, silentListener, type OddListener } from '../test/support/odd-listeners.js';

const TARGET_MS = 2000;

interface Scenario {
  expect: SshCause;
  what: string;
  /** Either an sshd config or a listener. */
  sshd?: SshdOptions;
  listener?: () => Promise<OddListener>;
  /** A port where nothing listens. */
  refused?: boolean;
  options: (ctx: Ctx) => Partial<SshDiagnoseOptions>;
}

interface Ctx {
  user: string;
  password: string;
  plainUser: string;
  plainPassword: string;
  ed: string;
  rsa: string;
  stranger: string;
  otherHostKey: string;
}

/** timeout-seconds for the causes that are a timeout (they cost exactly this) and for all the others. */
const TIMEOUT = 1;
const TIMEOUT_OTHERS = 5;
const TIMEOUT_CAUSES: SshCause[] = ['connect-timeout', 'banner-timeout', 'handshake-timeout'];

const scenarios: Scenario[] = [
  { expect: 'connection-refused', what: 'nothing listens', refused: true, options: (c) => ({ password: c.password }) },
  { expect: 'host-unreachable', what: 'TCP to 224.0.0.1 (ENETUNREACH)', refused: true, options: (c) => ({ host: '224.0.0.1', password: c.password }) },
  { expect: 'connect-timeout', what: 'SYN unanswered (full backlog)', listener: fullBacklogListener, options: (c) => ({ password: c.password }) },
  { expect: 'connection-closed', what: 'accepts, closes at once', listener: closingListener, options: (c) => ({ password: c.password }) },
  { expect: 'banner-timeout', what: 'accepts, silent', listener: silentListener, options: (c) => ({ password: c.password }) },
  { expect: 'not-ssh', what: 'HTTP server', listener: httpListener, options: (c) => ({ password: c.password }) },
  { expect: 'handshake-timeout', what: 'banner then silence (stand-in)', listener: bannerOnlyListener, options: (c) => ({ password: c.password }) },
  { expect: 'kex-mismatch', what: 'KexAlgorithms dh-group14-sha1', sshd: { settings: { KexAlgorithms: 'diffie-hellman-group14-sha1' } }, options: (c) => ({ password: c.password }) },
  { expect: 'host-key-mismatch', what: 'expected-host-key of another server', sshd: {}, options: (c) => ({ password: c.password, expectedHostKey: c.otherHostKey }) },
  { expect: 'no-credentials', what: 'no password, no key', sshd: {}, options: () => ({}) },
  { expect: 'password-auth-disabled', what: 'PasswordAuthentication no', sshd: { settings: { PasswordAuthentication: 'no' } }, options: (c) => ({ password: c.password }) },
  { expect: 'pubkey-auth-disabled', what: 'PubkeyAuthentication no', sshd: { settings: { PubkeyAuthentication: 'no' } }, options: (c) => ({ privateKey: c.ed }) },
  {
    expect: 'key-algorithm-rejected',
    what: 'RSA key, client signs ssh-rsa only',
    sshd: { settings: { PubkeyAcceptedAlgorithms: 'ssh-ed25519,rsa-sha2-512,rsa-sha2-256' } },
    options: (c) => ({ privateKey: c.rsa, pubkeyAlgorithms: ['ssh-rsa'] }),
  },
  { expect: 'auth-rejected', what: 'wrong password', sshd: {}, options: (c) => ({ password: `${c.password}-x` }) },
  { expect: 'auth-rejected', what: 'unknown user', sshd: {}, options: (c) => ({ username: 'no-such-user-lf', password: c.password }) },
  { expect: 'auth-rejected', what: 'key not authorized', sshd: {}, options: (c) => ({ privateKey: c.stranger }) },
  { expect: 'command-failed', what: 'ForceCommand /bin/false', sshd: { settings: { ForceCommand: '/bin/false' } }, options: (c) => ({ password: c.password }) },
  { expect: 'sudo-requires-password', what: 'sudo without NOPASSWD', sshd: {}, options: (c) => ({ username: c.plainUser, password: c.plainPassword }) },
  { expect: 'sudo-failed', what: 'sudo not on the PATH', sshd: { settings: { SetEnv: 'PATH=/nonexistent' } }, options: (c) => ({ password: c.password }) },
  { expect: 'ok', what: 'password', sshd: {}, options: (c) => ({ password: c.password }) },
  { expect: 'ok', what: 'ed25519 key', sshd: {}, options: (c) => ({ privateKey: c.ed }) },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : Math.round(((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, runs: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const runs = Number(values.runs ?? (values.quick ? '1' : '5'));
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: '${values.runs}' is not a positive whole number`);
  const dir = mkdtempSync(join(tmpdir(), 'labforge-bench-ssh-'));
  const ed = generateClientKey(dir, 'ed25519');
  const rsa = generateClientKey(dir, 'rsa');
  const stranger = generateClientKey(dir, 'ed25519');
  const user = await createTestUser({ authorizedKeys: [ed.publicKey, rsa.publicKey], sudo: 'nopasswd' });
  const plain = await createTestUser({ sudo: 'password' });
  const other = await startSshd();
  const otherHostKey = other.hostKeyFingerprint;
  await other.stop();
  const ctx: Ctx = { user: user.name, password: user.password, plainUser: plain.name, plainPassword: plain.password, ed: ed.privateKey, rsa: rsa.privateKey, stranger: stranger.privateKey, otherHostKey };
  const rows: { cause: SshCause; what: string; got: string; medianMs: number; maxMs: number }[] = [];
  try {
    for (const s of scenarios) {
      let port: number;
      let stop: () => Promise<void>;
      if (s.listener) {
        const l = await s.listener();
        port = l.port;
        stop = l.close;
      } else {
        const sshd = await startSshd(s.sshd ?? {});
        port = sshd.port;
        stop = sshd.stop;
        if (s.refused) await sshd.stop();
      }
      const times: number[] = [];
      const got = new Set<string>();
      try {
        for (let i = 0; i < runs; i++) {
          const opts: SshDiagnoseOptions = { host: '127.0.0.1', port, username: ctx.user, timeoutSeconds: TIMEOUT_CAUSES.includes(s.expect) ? TIMEOUT : TIMEOUT_OTHERS, waitSeconds: 0, command: 'true', checkSudo: true, ...s.options(ctx) };
          const t0 = performance.now();
          const d = await diagnoseSsh(opts);
          times.push(Math.round(performance.now() - t0));
          got.add(d.cause);
        }
      } finally {
        await stop();
      }
      rows.push({ cause: s.expect, what: s.what, got: [...got].join(','), medianMs: median(times), maxMs: Math.max(...times) });
    }
  } finally {
    await user.remove();
    await plain.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  const wrong = rows.filter((r) => r.got !== r.cause);
  if (values.json) {
    process.stdout.write(JSON.stringify({ runs, timeoutSeconds: TIMEOUT, timeoutSecondsOthers: TIMEOUT_OTHERS, targetMs: TARGET_MS, rows }, null, 2) + '\n');
  } else {
    const header = ['cause', 'scenario', 'verdict', 'median ms', 'max ms', 'max/target'];
    const table = rows.map((r) => [r.cause, r.what, r.got === r.cause ? 'right' : `WRONG: ${r.got}`, String(r.medianMs), String(r.maxMs), (r.maxMs / TARGET_MS).toFixed(2)]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => (i >= 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(' | ')} |`;
    console.log(`ssh-diagnose time to verdict, loopback, ${runs} run${runs === 1 ? '' : 's'} each, timeout-seconds ${TIMEOUT} for the timeout causes (${TIMEOUT_OTHERS} for the rest), wait-seconds 0, target <= ${TARGET_MS} ms`);
    console.log('');
    console.log(line(header));
    console.log(`|${widths.map((w, i) => (i >= 3 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
    for (const row of table) console.log(line(row));
    const over = rows.filter((r) => r.maxMs > TARGET_MS);
    console.log('');
    console.log(`${rows.length} scenarios, ${wrong.length} wrong verdicts, ${over.length} over the target`);
  }
  return wrong.length > 0 ? 1 : 0;
}

process.exitCode = await main();
