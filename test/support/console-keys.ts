/**
 * Types text on a QEMU guest's keyboard through its QMP socket (`send-key`), as a person at the VM's console
 * would: the way a test logs in on the console (tty1) with a password.
 */
import { qmp } from '../../actions/lib/qemu-vm.js';

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

/** Sends `text` key by key to the VM behind `qmpSocket` (through qemu-vm's QMP client). */
export function typeOnConsole(qmpSocket: string, text: string, timeoutMs = 30_000): Promise<void> {
  const keys = [...text].map((ch) => ({ execute: 'send-key', arguments: { keys: keysOf(ch).map((k) => ({ type: 'qcode', data: k })), 'hold-time': 50 } }));
  return qmp(qmpSocket, [{ execute: 'qmp_capabilities' }, ...keys], timeoutMs);
}
