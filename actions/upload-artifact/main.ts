import { notImplemented } from '../lib/action-runner.js';

await notImplemented('upload-artifact');
