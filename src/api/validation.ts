import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import { ZodArray, ZodDefault, ZodNullable, ZodObject, ZodOptional, type z } from 'zod';
import { InvalidInputError } from '../errors.ts';

/** One zod issue as the API reports it in `error.details`: where, which field, what was wrong. */
export interface InputIssue {
  location: string;
  path: (string | number)[];
  code: string;
  message: string;
  [extra: string]: unknown;
}

export function describeIssues(error: z.ZodError, location: string): InputIssue[] {
  return error.issues.map(({ path, code, message, ...rest }) => ({
    location,
    path: path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
    code,
    message,
    ...rest,
  }));
}

export function invalidInput(error: z.ZodError, location: string): InvalidInputError {
  const issues = describeIssues(error, location);
  const first = issues[0];
  const where = first && first.path.length > 0 ? `${location}.${first.path.join('.')}` : location;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new InvalidInputError(`invalid ${where}: ${first?.message ?? 'invalid input'}${more}`, issues);
}

/** Keys of an object schema whose value is an array (under optional/default/nullable wrappers). */
function arrayKeys(schema: z.ZodType): string[] {
  if (!(schema instanceof ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>).flatMap(([key, s]) => {
    let inner: unknown = s;
    while (inner instanceof ZodOptional || inner instanceof ZodDefault || inner instanceof ZodNullable) inner = inner.unwrap();
    return inner instanceof ZodArray ? [key] : [];
  });
}

/**
 * A repeated query key (`statuses=a&statuses=b`) arrives as an array, a single one as a string; the
 * schemas say "array", so a lone value is wrapped first. Then a bad item is reported at its index.
 */
function wrapRepeated(keys: string[], data: unknown): unknown {
  if (keys.length === 0 || data === null || typeof data !== 'object') return data;
  const q = { ...(data as Record<string, unknown>) };
  for (const k of keys) if (typeof q[k] === 'string') q[k] = [q[k]];
  return q;
}

/**
 * Validates a request part with its zod schema and hands the handler the parsed value. A failure is
 * our own InvalidInputError carrying the zod issues, so the one error handler answers it like any other.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const location = httpPart === 'querystring' ? 'query' : (httpPart ?? 'request');
  const repeated = httpPart === 'querystring' ? arrayKeys(schema) : [];
  return (data) => {
    const r = schema.safeParse(wrapRepeated(repeated, data));
    if (r.success) return { value: r.data };
    return { error: invalidInput(r.error, location) };
  };
};

/**
 * Responses are built from the same typed values the schemas describe; re-validating every Run of a
 * 1,000-run page would cost more than it protects, so they are only documented, then stringified.
 */
export const serializerCompiler: FastifySerializerCompiler<unknown> = () => (data) => JSON.stringify(data);
