/**
 * Kept for existing imports: {@link printable} and the other escapers live in ./escape.ts, the one module
 * that makes outside text safe for a log line, an annotation or a shell command.
 */
export { printable, logText, logLines } from './escape.js';
