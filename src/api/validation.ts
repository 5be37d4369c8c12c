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

/** One entry of Letta's (FastAPI's) `detail` list: where (`['body', 'agent_id']`), what, and its pydantic type. */
export interface FastApiIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

// FastAPI names the request parts `body`, `query`, `path`, `header`.
const FASTAPI_PART: Record<string, string> = { params: 'path', headers: 'header', input: 'body', request: 'body' };

/** zod's issue codes as pydantic's error types, so a client that switches on `type` sees Letta's names. */
function pydanticType(issue: InputIssue): string {
  const origin = typeof issue.origin === 'string' ? issue.origin : '';
  switch (issue.code) {
    case 'invalid_type': {
      if (/received undefined/.test(issue.message)) return 'missing';
      const expected = String(issue.expected ?? '');
      const names: Record<string, string> = { number: 'float', int: 'int', boolean: 'bool', object: 'dict', array: 'list', string: 'string' };
      return `${names[expected] ?? expected}_type`;
    }
    case 'too_big':
      return origin === 'string' ? 'string_too_long' : origin === 'array' || origin === 'set' ? 'too_long' : 'less_than_equal';
    case 'too_small':
      return origin === 'string' ? 'string_too_short' : origin === 'array' || origin === 'set' ? 'too_short' : 'greater_than_equal';
    case 'invalid_value':
      return 'enum';
    case 'invalid_format':
      return 'string_pattern_mismatch';
    case 'unrecognized_keys':
      return 'extra_forbidden';
    default:
      return 'value_error';
  }
}

/**
 * An InvalidInputError as Letta's `detail` list: each zod issue with its place, or the error itself
 * (a bad cursor, a rule about the request) as one `value_error`.
 */
export function fastApiDetail(e: InvalidInputError): FastApiIssue[] {
  const issues = Array.isArray(e.details) ? (e.details as InputIssue[]) : [];
  if (issues.length > 0 && issues.every((i) => typeof i.location === 'string' && Array.isArray(i.path))) {
    return issues.map((i) => ({ loc: [FASTAPI_PART[i.location] ?? i.location, ...i.path], msg: i.message, type: pydanticType(i) }));
  }
  const cursor = (e.details as { cursor?: unknown } | undefined)?.cursor;
  return [{ loc: typeof cursor === 'string' ? ['query'] : ['body'], msg: e.message, type: 'value_error' }];
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
