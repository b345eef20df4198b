/**
 * Names exactly why an SSH client (typically Packer's communicator) cannot log in, in seconds.
 *
 * It probes layer by layer and stops at the first that fails: TCP connect → banner (and what the port
 * speaks if not SSH) → key exchange (both sides' algorithm lists) → host key (against an expected
 * fingerprint) → the `none` method (which lists the methods the server allows) → each credential →
 * the command → `sudo -n true`. The verdict is one {@link SshCause} with a remediation for a Packer qemu
 * build of a cloud-init/autoinstall guest, and a JSON report of every probe, the retry timeline, the
 * algorithms, the methods and, when given a serial console log, the guest lines that explain the failure.
 *
 * Used by the ssh-diagnose action, `labforge ssh-diagnose`, and by packer-build and vlab-warm when their
 * guest's SSH does not come up.
 */
import { printable } from './escape.js';
import { RSA_SIGNATURE_ALGORITHMS, parsePrivateKey } from './ssh-diagnose-inputs.js';
import { relevantSerialLines, type SerialEvidence } from './serial-log.js';
import { probeTcpAndBanner, type TcpBannerResult } from './ssh-banner.js';
import { SSH_CAUSE_INFO, fixesFor, type SshCause, type SshLayer } from './ssh-causes.js';
import { probeSshSession, sshFingerprint, type AlgorithmLists, type AuthAttempt, type RemoteRun, type SessionProbeResult } from './ssh-session-probe.js';

export { SSH_CAUSES, SSH_CAUSE_INFO, type SshCause } from './ssh-causes.js';

export { RSA_SIGNATURE_ALGORITHMS, parsePrivateKey, readSshDiagnoseOptions } from './ssh-diagnose-inputs.js';

export interface SshDiagnoseOptions {
  /** Host to connect to (default 127.0.0.1). */
  host: string;
  /** Port (default 22; for a Packer qemu build, the forwarded host port). */
  port: number;
  username: string;
  password?: string;
  /** Private key text (OpenSSH or PEM). */
  privateKey?: string;
  /** Where the key was read from, for the report. */
  privateKeyPath?: string;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
  /** `SHA256:…` fingerprint the server's host key must have. */
  expectedHostKey?: string;
  /** Timeout of each attempt's layers (connect, banner, handshake+auth, command, sudo), in seconds. */
  timeoutSeconds: number;
  /** Keep retrying the failures a booting guest also produces (see `SshCauseInfo.retryable`) this long, in seconds. */
  waitSeconds: number;
  /** Path of the guest's serial console log, quoted in the report. */
  serialLog?: string;
  /** Command to run after login (default `true`). */
  command: string;
  /** Also check `sudo -n true` (default true). */
  checkSudo: boolean;
  /**
   * RSA signature algorithms the real client can use, e.g. `['ssh-rsa']` for a client built on Go's
   * x/crypto/ssh before 2022, which signs RSA with SHA-1 only. Default: any the server advertises.
   */
  pubkeyAlgorithms?: string[];
  /** Progress lines (retries); default: none. */
  onProgress?: (line: string) => void;
}

/** One probe of one layer, as shown in the report and the job summary. */
export interface SshProbe {
  layer: SshLayer;
  /** What was probed: tcp, banner, kex, host-key, auth none, auth password, … */
  name: string;
  ok: boolean;
  durationMs?: number;
  detail: string;
}

/** A failed attempt while waiting (wait-seconds); consecutive attempts with the same cause are merged. */
export interface TimelineEntry {
  attempt: number;
  /** Milliseconds since the diagnosis started. */
  atMs: number;
  cause: SshCause;
  detail: string;
  /** How many more attempts in a row failed the same way, and when the last of them was. */
  repeated?: number;
  lastAtMs?: number;
}

/** The verdict and everything that led to it. This object is the `report` output (as JSON). */
export interface SshDiagnosis {
  cause: SshCause;
  ok: boolean;
  /** One line: what is wrong (the cause's title). */
  title: string;
  /** The specifics of this case. */
  detail: string;
  /** What to change, most likely first. */
  remediation: string[];
  target: {
    host: string;
    port: number;
    username: string;
    password: boolean;
    privateKey?: { type: string; sha256: string; path?: string };
  };
  server?: { banner: string; software?: string };
  probes: SshProbe[];
  timeline: TimelineEntry[];
  attempts: number;
  algorithms?: { client: AlgorithmLists; server: AlgorithmLists; negotiated?: SessionProbeResult['negotiated']; mismatch?: keyof AlgorithmLists };
  hostKey?: SessionProbeResult['hostKey'];
  serverSigAlgs?: string[];
  authMethods?: { allowed?: string[]; attempts: AuthAttempt[]; rsaAlgorithms?: Record<string, 'accepted' | 'rejected'> };
  authBanner?: string;
  command?: RemoteRun;
  sudo?: RemoteRun;
  serial?: SerialEvidence & { path: string };
  warnings: string[];
  startedAt: string;
  durationMs: number;
}

/** The secrets among the options (password, passphrase, key lines) that must be masked in logs. */
export function diagnoseSecrets(opts: Pick<SshDiagnoseOptions, 'password' | 'passphrase' | 'privateKey'>): string[] {
  const secrets: string[] = [];
  if (opts.password) secrets.push(opts.password);
  if (opts.passphrase) secrets.push(opts.passphrase);
  if (opts.privateKey) {
    secrets.push(opts.privateKey.trim());
    for (const line of opts.privateKey.split('\n')) if (line.trim().length >= 8 && !line.startsWith('-----')) secrets.push(line.trim());
  }
  return secrets;
}

/** Replaces every occurrence of a secret in every string of a JSON-like value. */
function redact<T>(value: T, secrets: string[]): T {
  if (secrets.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return secrets.reduce((s, secret) => s.split(secret).join('***'), v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

const MISMATCH_NAMES: Record<keyof AlgorithmLists, string> = {
  kex: 'key exchange algorithm',
  hostKey: 'host key algorithm',
  cipher: 'cipher',
  mac: 'MAC',
  compression: 'compression method',
};

/** An algorithm list without the pseudo-algorithms that only signal extensions (ext-info-c, kex-strict-…). */
function realAlgorithms(list: string[] | undefined): string {
  return (list ?? []).filter((a) => !/^ext-info-|^kex-strict-/.test(a)).join(',') || '(nothing)';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tcpBannerProbes(tb: TcpBannerResult): SshProbe[] {
  const probes: SshProbe[] = [];
  const tcpFailed = tb.connectMs === undefined;
  probes.push({ layer: 'tcp', name: 'tcp', ok: !tcpFailed, durationMs: tb.connectMs, detail: tcpFailed ? tb.detail : 'connected' });
  if (!tcpFailed) probes.push({ layer: 'banner', name: 'banner', ok: tb.cause === undefined, durationMs: tb.bannerMs, detail: tb.cause === undefined ? (tb.banner ?? '') : tb.detail });
  return probes;
}

function sessionFailureCause(s: SessionProbeResult): SshCause | undefined {
  switch (s.failure) {
    case 'kex-mismatch':
      return 'kex-mismatch';
    case 'host-key-mismatch':
      return 'host-key-mismatch';
    case 'handshake-timeout':
    case 'auth-timeout':
      return 'handshake-timeout';
    case 'connection-closed':
      return 'connection-closed';
    default:
      return undefined;
  }
}

function describeAuthAttempt(a: AuthAttempt, key?: { type: string; sha256: string }): string {
  const what = a.method === 'publickey' ? `publickey (${key?.type ?? 'key'}${a.keyAlgorithm && a.keyAlgorithm !== key?.type ? ` signed with ${a.keyAlgorithm}` : ''})` : a.method;
  switch (a.result) {
    case 'accepted':
      return `${what}: accepted`;
    case 'not-offered':
      return `${what}: the server does not offer it`;
    case 'algorithm-not-advertised':
      return `${what}: the server advertises no signature algorithm this key can use`;
    default:
      return `${what}: refused`;
  }
}

/** Runs the whole diagnosis. Never throws for a failing server: every outcome is a verdict. */
export async function diagnoseSsh(opts: SshDiagnoseOptions): Promise<SshDiagnosis> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const timeoutMs = opts.timeoutSeconds * 1000;
  const deadline = started + opts.waitSeconds * 1000;
  const key = opts.privateKey ? parsePrivateKey(opts.privateKey, opts.passphrase, opts.privateKeyPath ? 'private-key-path' : 'private-key') : undefined;
  const keyInfo = key ? { type: key.type, sha256: sshFingerprint(key.getPublicSSH()), ...(opts.privateKeyPath ? { path: opts.privateKeyPath } : {}) } : undefined;
  const timeline: TimelineEntry[] = [];
  const sessionBase = {
    host: opts.host,
    port: opts.port,
    username: opts.username,
    password: opts.password,
    privateKey: key,
    privateKeyText: opts.privateKey,
    passphrase: opts.passphrase,
    expectedHostKey: opts.expectedHostKey,
    timeoutMs,
  };

  /** Judges one attempt: the cause (undefined = ok), its detail, the probes, and what the report shows. */
  const judge = async (tb: TcpBannerResult, session: SessionProbeResult | undefined) => {
    let cause: SshCause | undefined = tb.cause ?? (session ? sessionFailureCause(session) : undefined);
    let detail = tb.detail;
    const warnings: string[] = [];
    const probes = tcpBannerProbes(tb);
    const report: Partial<SshDiagnosis> = {};
    if (tb.banner) report.server = { banner: tb.banner, software: tb.software };

    if (session) {
      const s = session;
      report.algorithms = { client: s.client, server: s.server, negotiated: s.negotiated, ...(s.mismatch ? { mismatch: s.mismatch } : {}) };
      report.hostKey = s.hostKey;
      report.serverSigAlgs = s.serverSigAlgs;
      report.authBanner = s.authBanner;
      report.command = s.command;
      report.sudo = s.sudo;
      const kexOk = s.negotiated !== undefined;
      const kexDetail = kexOk
        ? `${s.negotiated?.kex}, host key ${s.negotiated?.hostKey}, ${s.negotiated?.cipher}`
        : s.failure === 'kex-mismatch'
          ? `no ${MISMATCH_NAMES[s.mismatch ?? 'kex']} in common: client offers ${realAlgorithms(s.client[s.mismatch ?? 'kex'])}; server offers ${realAlgorithms(s.server[s.mismatch ?? 'kex'])}`
          : (s.error ?? 'the key exchange did not finish');
      probes.push({ layer: 'kex', name: 'kex', ok: kexOk, durationMs: s.kexMs, detail: kexDetail });
      if (s.hostKey) {
        const hk = s.hostKey;
        probes.push({
          layer: 'host-key',
          name: 'host-key',
          ok: hk.matches !== false,
          detail: hk.matches === false ? `server key ${hk.algorithm} ${hk.sha256}, expected ${hk.expected}` : `${hk.algorithm} ${hk.sha256}${hk.matches ? ' (matches the expected key)' : ''}`,
        });
      }
      if (cause === 'kex-mismatch' || cause === 'host-key-mismatch' || cause === 'handshake-timeout' || cause === 'connection-closed') {
        detail = cause === 'host-key-mismatch' ? probes[probes.length - 1]?.detail ?? detail : cause === 'kex-mismatch' ? kexDetail : (s.error ?? detail);
        if (cause === 'handshake-timeout' && s.failure === 'auth-timeout') detail = `the key exchange finished but authentication did not within ${opts.timeoutSeconds} s`;
      }

      if (cause === undefined) {
        // Authentication
        const none = s.auth.find((a) => a.method === 'none');
        probes.push({
          layer: 'auth',
          name: 'auth none',
          ok: true,
          durationMs: none?.durationMs,
          detail: none?.result === 'accepted' ? 'the server let the user in without credentials' : `allowed methods: ${(s.allowedMethods ?? []).join(', ') || '(none listed)'}`,
        });
        for (const a of s.auth.filter((x) => x.method !== 'none')) {
          probes.push({ layer: 'auth', name: `auth ${a.method}`, ok: a.result === 'accepted', durationMs: a.durationMs, detail: describeAuthAttempt(a, keyInfo) });
        }
        const pub = s.auth.find((a) => a.method === 'publickey');
        let rsaAlgorithms: Record<string, 'accepted' | 'rejected'> | undefined;
        // Tell "algorithm refused" from "key not authorized": probe the key's other RSA signature algorithms.
        const probeRsa = key?.type === 'ssh-rsa' && pub !== undefined && (pub.result === 'rejected' || (pub.result === 'accepted' && !opts.pubkeyAlgorithms));
        if (probeRsa && pub) {
          rsaAlgorithms = {};
          if (pub.keyAlgorithm) rsaAlgorithms[pub.keyAlgorithm] = pub.result === 'accepted' ? 'accepted' : 'rejected';
          const others = RSA_SIGNATURE_ALGORITHMS.filter((a) => a !== pub.keyAlgorithm && (pub.result === 'rejected' || a === 'ssh-rsa'));
          for (const alg of others) {
            const extra = await probeSshSession({ ...sessionBase, password: undefined, checkSudo: false, publickeyOnly: true, signatureAlgorithms: [alg] });
            rsaAlgorithms[alg] = extra.loggedIn ? 'accepted' : 'rejected';
          }
          probes.push({
            layer: 'auth',
            name: 'auth rsa algorithms',
            ok: Object.values(rsaAlgorithms).includes('accepted'),
            detail: Object.entries(rsaAlgorithms).map(([a, r]) => `${a} ${r}`).join(', '),
          });
          if (pub.result === 'accepted' && rsaAlgorithms['ssh-rsa'] === 'rejected') {
            warnings.push(
              'the server refuses RSA signatures with SHA-1 (ssh-rsa): clients that sign RSA only that way (built on Go x/crypto/ssh before 2022, such as older Packer releases) cannot log in with this key; use an ed25519 key',
            );
          }
        }
        report.authMethods = { allowed: s.allowedMethods, attempts: s.auth, ...(rsaAlgorithms ? { rsaAlgorithms } : {}) };

        if (!s.loggedIn) {
          const pwAttempts = s.auth.filter((a) => a.method === 'password' || a.method === 'keyboard-interactive');
          const pwRejected = pwAttempts.some((a) => a.result === 'rejected');
          const pwNotOffered = pwAttempts.some((a) => a.result === 'not-offered');
          const keyAuthorizedOtherAlg = rsaAlgorithms !== undefined && Object.values(rsaAlgorithms).includes('accepted');
          const user = `'${opts.username}'`;
          if (!opts.password && !key) {
            cause = 'no-credentials';
            detail = `no password or key was given; the server allows ${(s.allowedMethods ?? []).join(', ')} for ${user}`;
          } else if (pwRejected) {
            cause = 'auth-rejected';
            detail = `the server refused the password for ${user}. A wrong password and an unknown user get the same answer from OpenSSH, so they cannot be told apart from outside (the guest's auth log says "Invalid user" or "Failed password")`;
          } else if (pub?.result === 'algorithm-not-advertised' || (pub?.result === 'rejected' && keyAuthorizedOtherAlg)) {
            cause = 'key-algorithm-rejected';
            const accepted = Object.entries(rsaAlgorithms ?? {}).filter(([, r]) => r === 'accepted').map(([a]) => a);
            detail = `the ${keyInfo?.type} key is authorized for ${user}, but the server refuses signatures with ${pub?.keyAlgorithm ?? 'the algorithm the client uses'}${accepted.length ? `; it accepts ${accepted.join(', ')}` : ''}`;
          } else if (pub?.result === 'rejected') {
            cause = 'auth-rejected';
            detail = `the server refused the ${keyInfo?.type} key ${keyInfo?.sha256} for ${user}. A key missing from authorized_keys, an unknown user, and PubkeyAcceptedAlgorithms without ${pub.keyAlgorithm ?? 'its algorithm'} get the same answer, so they cannot be told apart from outside`;
          } else if (pwNotOffered) {
            cause = 'password-auth-disabled';
            detail = `a password was given, but the server only allows ${(s.allowedMethods ?? []).join(', ') || 'nothing'} for ${user}`;
          } else if (pub?.result === 'not-offered') {
            cause = 'pubkey-auth-disabled';
            detail = `a key was given, but the server only allows ${(s.allowedMethods ?? []).join(', ') || 'nothing'} for ${user}`;
          } else {
            cause = 'auth-rejected';
            detail = s.disconnect ?? s.error ?? 'authentication failed';
          }
        } else if (s.command) {
          const c = s.command;
          const cOk = c.exitCode === 0 && !c.timedOut;
          probes.push({
            layer: 'command',
            name: 'command',
            ok: cOk,
            durationMs: c.durationMs,
            detail: `${c.command}: ${c.timedOut ? `no exit within ${opts.timeoutSeconds} s` : c.signal ? `killed by ${c.signal}` : `exit ${c.exitCode ?? '?'}`}${!cOk && c.stderr.trim() ? `; stderr: ${c.stderr.trim().slice(-300)}` : ''}`,
          });
          if (!cOk) {
            cause = 'command-failed';
            detail = `logged in as '${opts.username}', but '${c.command}' ${c.timedOut ? `did not finish within ${opts.timeoutSeconds} s` : `exited with ${c.signal ? `signal ${c.signal}` : `status ${c.exitCode ?? 'unknown'}`}`}${c.stderr.trim() ? ` (stderr: ${c.stderr.trim().slice(-300)})` : ''}`;
          } else if (s.sudo) {
            const u = s.sudo;
            const uOk = u.exitCode === 0 && !u.timedOut;
            probes.push({ layer: 'sudo', name: 'sudo -n true', ok: uOk, durationMs: u.durationMs, detail: uOk ? 'passwordless sudo works' : `exit ${u.exitCode ?? '?'}: ${u.stderr.trim().slice(-300)}` });
            if (!uOk) {
              cause = /password is required|a terminal is required/i.test(u.stderr) ? 'sudo-requires-password' : 'sudo-failed';
              const why = `sudo -n true exited ${u.timedOut ? '(timed out)' : (u.exitCode ?? '?')} (${u.stderr.trim().slice(-200) || 'no output'})`;
              detail = cause === 'sudo-requires-password' ? `'${opts.username}' cannot run sudo without a password: ${why}` : `'${opts.username}' cannot run sudo: ${why}`;
            }
          }
        }
      }
    }
    const finalCause: SshCause = cause ?? 'ok';
    if (finalCause === 'ok') detail = `logged in as '${opts.username}'${report.command ? `, ran '${opts.command}'` : ''}${report.sudo ? ' and sudo -n true' : ''}`;
    const serverHostKeys = report.algorithms?.server.hostKey ?? [];
    if (serverHostKeys.length > 0 && serverHostKeys.every((a) => a === 'ssh-rsa' || a === 'ssh-dss')) {
      warnings.push(`the server offers only legacy SHA-1 host key algorithms (${serverHostKeys.join(', ')}); current clients refuse them by default`);
    }
    return { cause: finalCause, detail, probes, report, warnings };
  };

  let attempt = 0;
  let verdict: Awaited<ReturnType<typeof judge>>;
  for (;;) {
    attempt++;
    const tb = await probeTcpAndBanner({ host: opts.host, port: opts.port, timeoutMs });
    let session: SessionProbeResult | undefined;
    if (tb.cause === undefined) {
      const rsaOverride = key?.type === 'ssh-rsa' ? opts.pubkeyAlgorithms : undefined;
      session = await probeSshSession({ ...sessionBase, command: opts.command, checkSudo: opts.checkSudo, signatureAlgorithms: rsaOverride });
    }
    verdict = await judge(tb, session);
    const remaining = deadline - performance.now();
    if (verdict.cause === 'ok' || !SSH_CAUSE_INFO[verdict.cause].retryable || remaining <= 0) break;
    const atMs = Math.round(performance.now() - started);
    const previous = timeline[timeline.length - 1];
    if (previous && previous.cause === verdict.cause) {
      previous.repeated = (previous.repeated ?? 0) + 1;
      previous.lastAtMs = atMs;
    } else {
      timeline.push({ attempt, atMs, cause: verdict.cause, detail: verdict.detail });
    }
    opts.onProgress?.(`attempt ${attempt} at ${(atMs / 1000).toFixed(1)} s: ${verdict.cause}; retrying for ${Math.ceil(remaining / 1000)} s more`);
    await sleep(Math.min(1000, remaining));
  }
  const { cause: finalCause, detail, probes, report, warnings } = verdict;

  let serial: SshDiagnosis['serial'];
  if (opts.serialLog) {
    const evidence = await relevantSerialLines({ path: opts.serialLog });
    serial = { path: opts.serialLog, ...evidence };
  }

  const info = SSH_CAUSE_INFO[finalCause];
  const diagnosis: SshDiagnosis = {
    cause: finalCause,
    ok: finalCause === 'ok',
    title: info.title,
    detail,
    remediation: fixesFor(finalCause, { password: opts.password !== undefined, key: keyInfo !== undefined }),
    target: { host: opts.host, port: opts.port, username: opts.username, password: opts.password !== undefined, ...(keyInfo ? { privateKey: keyInfo } : {}) },
    ...report,
    probes,
    timeline,
    attempts: attempt,
    ...(serial ? { serial } : {}),
    warnings,
    startedAt,
    durationMs: Math.round(performance.now() - started),
  };
  return redact(diagnosis, diagnoseSecrets(opts));
}

/** The action outputs: cause, ok, report (JSON). */
export function diagnosisOutputs(d: SshDiagnosis): { cause: string; ok: string; report: string } {
  return { cause: d.cause, ok: String(d.ok), report: JSON.stringify(d) };
}

/** A readable verdict for a terminal or a log. */
export function formatDiagnosis(d: SshDiagnosis): string {
  const lines = [`ssh-diagnose ${d.target.host}:${d.target.port} as ${d.target.username}: ${d.cause}${d.ok ? '' : ` - ${d.title}`}`, `  ${d.detail}`, '', 'Probes:'];
  for (const p of d.probes) {
    lines.push(`  ${p.ok ? 'ok  ' : 'FAIL'} ${p.name.padEnd(25)} ${(p.durationMs === undefined ? '' : `${p.durationMs} ms`).padStart(8)}  ${p.detail}`);
  }
  if (d.timeline.length > 0) {
    lines.push('', `Waited: ${d.attempts} attempts in ${(d.durationMs / 1000).toFixed(1)} s`);
    for (const t of d.timeline.slice(-5)) {
      const more = t.repeated ? ` (and ${t.repeated} more until ${((t.lastAtMs ?? t.atMs) / 1000).toFixed(1)} s)` : '';
      lines.push(`  attempt ${t.attempt} at ${(t.atMs / 1000).toFixed(1)} s: ${t.cause}${more}`);
    }
  }
  if (d.warnings.length > 0) lines.push('', 'Warnings:', ...d.warnings.map((w) => `  - ${w}`));
  if (d.remediation.length > 0) lines.push('', 'Fix:', ...d.remediation.map((f) => `  - ${f}`));
  if (d.serial?.problem !== undefined) {
    // Missing, unreadable or empty: that one line, not "(0 telling lines of 0)" over an empty tail.
    lines.push('', d.serial.problem.replace(/^serial log\b/, 'Serial log'));
  } else if (d.serial) {
    lines.push('', `Serial log ${printable(d.serial.path)} (${d.serial.matched} telling lines of ${d.serial.total}):`);
    for (const l of d.serial.lines) lines.push(`  ${String(l.line).padStart(5)} [${l.finding}] ${l.text}`);
    if (d.serial.lines.length === 0) lines.push('  (no telling lines); last lines:', ...d.serial.tail.map((t) => `        ${t}`));
  }
  lines.push('', `Verdict in ${d.durationMs} ms.`);
  return lines.join('\n') + '\n';
}

function mdCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The job summary: verdict, probe table and fix, in Markdown. */
export function diagnosisMarkdown(d: SshDiagnosis): string {
  const out = [
    `### SSH diagnosis: \`${d.cause}\` ${d.ok ? '✅' : '❌'}`,
    '',
    `**${mdCell(d.title)}** — ${mdCell(d.detail)}`,
    '',
    `Target \`${d.target.username}@${d.target.host}:${d.target.port}\`, ${d.attempts} attempt(s), verdict in ${d.durationMs} ms.`,
    '',
    '| Probe | Result | Time | Detail |',
    '|---|---|---|---|',
    ...d.probes.map((p) => `| ${p.name} | ${p.ok ? 'ok' : '**failed**'} | ${p.durationMs === undefined ? '' : `${p.durationMs} ms`} | ${mdCell(p.detail)} |`),
  ];
  if (d.warnings.length > 0) out.push('', '**Warnings**', '', ...d.warnings.map((w) => `- ${mdCell(w)}`));
  if (d.remediation.length > 0) out.push('', '**Fix**', '', ...d.remediation.map((f) => `- ${f}`));
  if (d.serial?.problem !== undefined) out.push('', '**Serial log**', '', `- ${mdCell(d.serial.problem)}`);
  else if (d.serial && d.serial.lines.length > 0) {
    out.push('', `**Serial log** (\`${d.serial.path}\`)`, '', '```', ...d.serial.lines.map((l) => `${l.line}: [${l.finding}] ${l.text}`), '```');
  }
  return out.join('\n') + '\n';
}
