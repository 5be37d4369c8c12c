import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CALLBACK_ERROR_CODES } from '../../src/callbacks/errors.ts';
import { ERROR_CODES } from '../../src/errors.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('the error catalogue', () => {
  it.each([...ERROR_CODES, ...CALLBACK_ERROR_CODES])('documents %s in the README', (code) => {
    expect(readme).toContain(`\`${code}\``);
  });
});
