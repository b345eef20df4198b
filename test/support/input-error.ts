/** Test helper: runs an input reader that must reject its input, and returns the InputError it threw. */
import { InputError } from '../../actions/lib/inputs.js';

export function catchInputError(read: () => unknown): InputError {
  try {
    read();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError, but the input was accepted');
}
