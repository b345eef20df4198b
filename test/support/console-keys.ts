/**
 * Types text on a QEMU guest's keyboard through its QMP socket (`send-key`), as a person at the VM's console
 * would: the way a test logs in on the console (tty1) with a password.
 */
import { connect } from 'node:net';

const SHIFTED: Record<string, string> = { _: 'minus', '|': 'backslash', '>': 'dot', '<': 'comma', ':': 'semicolon', '!': '1', '@': '2', '#': '3', $: '4', '%': '5', '&': '7', '*': '8', '(': '9', ')': '0', '+': 'equal', '"': 'apostrophe', '?': 'slash' };
const PLAIN: Record<string, string> = { '-': 'minus', ' ': 'spc', '\n': 'ret', '/': 'slash', '.': 'dot', ',': 'comma', "'": 'apostrophe', '=': 'equal', ';': 'semicolon', '\\': 'backslash' };

/** The QMP `send-key` key list of one character (qcodes, with shift where the US layout needs it). */
export function keysOf(ch: string): string[] {
  if (/^[a-z0-9]$/.test(ch)) return [ch];
  if (/^[A-Z]$/.test(ch)) return ['shift', ch.toLowerCase()];
  if (PLAIN[ch]) return [PLAIN[ch]];
  if (SHIFTED[ch]) return ['shift', SHIFTED[ch]];
  throw new Error(`console-keys: no key for ${JSON.stringify(ch)}`);
}

/** Sends `text` key by key to the VM behind `qmpSocket`. */
export function typeOnConsole(qmpSocket: string, text: string, timeoutMs = 30_000): Promise<void> {
  const commands = [{ execute: 'qmp_capabilities' }, ...[...text].map((ch) => ({ execute: 'send-key', arguments: { keys: keysOf(ch).map((k) => ({ type: 'qcode', data: k })), 'hold-time': 50 } }))];
  return new Promise((resolve, reject) => {
    const sock = connect(qmpSocket);
    const timer = setTimeout(() => finish(new Error(`QMP on ${qmpSocket} did not take the keys within ${timeoutMs} ms`)), timeoutMs);
    let buffer = '';
    let next = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const sendNext = () => {
      if (next === commands.length) return finish();
      sock.write(`${JSON.stringify(commands[next++])}\n`);
    };
    sock.on('error', (e) => finish(e));
    sock.on('data', (d) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffer.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc?: string } };
        buffer = buffer.slice(nl + 1);
        if (msg.error) return finish(new Error(`QMP error: ${msg.error.desc ?? 'unknown'}`));
        if (msg.QMP !== undefined || msg.return !== undefined) sendNext();
      }
    });
  });
}
