/**
 * How the admin API checks requests, shared by the server (fastify's validator compiler) and the
 * CLI (which checks the body it is about to send with the same route schema), so both reject a
 * bad field with the same words (the reply shape is in ./errors.ts).
 */
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { AdminErrorReply } from './errors.ts';

// Bodies are checked strictly: "2" is not an integer and an unknown field is an error, not dropped
// (a misspelt "prefered" must not be silently ignored). Query strings and path parameters are
// text on the wire, so there numbers are coerced from their spelling.
const strict = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: true, removeAdditional: false, allowUnionTypes: true });
const coercing = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, allowUnionTypes: true });

const compiled = new WeakMap<object, ValidateFunction>();

/** fastify's validator compiler (app.setValidatorCompiler) and the CLI's: one ajv per kind of input. */
export function compileValidator(schema: object, httpPart?: string): ValidateFunction {
  const ajv = httpPart === 'querystring' || httpPart === 'params' || httpPart === 'headers' ? coercing : strict;
  if (ajv === strict) {
    const hit = compiled.get(schema);
    if (hit) return hit;
  }
  const v = ajv.compile(schema);
  if (ajv === strict) compiled.set(schema, v);
  return v;
}

/** One line and a field for the first error ajv found (`part`: body, querystring, params). */
export function describeValidation(errors: readonly ErrorObject[], part = 'body'): AdminErrorReply {
  // if/then/else reports the branch that failed after the error inside it: the inner one says more.
  const e = errors.find((x) => x.keyword !== 'if') ?? errors[0];
  const path = e.instancePath.split('/').filter(Boolean);
  const p = e.params as Record<string, unknown>;
  let tail: string;
  if (e.keyword === 'required') {
    path.push(String(p.missingProperty));
    tail = 'is required';
  } else if (e.keyword === 'additionalProperties') {
    path.push(String(p.additionalProperty));
    tail = 'is not a known field';
  } else if (e.keyword === 'enum') {
    tail = `must be one of ${(p.allowedValues as unknown[]).join(', ')}`;
  } else {
    tail = e.message ?? 'is not valid';
  }
  const field = path.length ? path.join('.') : null;
  return { error: `${part}${path.length ? '/' + path.join('/') : ''} ${tail}`, field, in: part };
}

/** Check a request body against a route's body schema, as the server will (the CLI, before sending). */
export function checkBody(schema: object, body: unknown): AdminErrorReply | null {
  const v = compileValidator(schema, 'body');
  return v(body) ? null : describeValidation(v.errors ?? [], 'body');
}
