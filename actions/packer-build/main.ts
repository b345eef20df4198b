import { notImplemented } from '../lib/action-runner.js';

await notImplemented('packer-build');
