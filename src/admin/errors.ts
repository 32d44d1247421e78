/**
 * The admin API's error reply, for every 4xx it gives:
 *   { "error": "body/tpg must be integer", "field": "tpg", "in": "body" }
 * `error` is one line for a person; `field` names the offending field (dotted path, null when the
 * whole request is at fault); `in` says where it was (body, querystring, params, headers), absent
 * for errors that are not about a field's shape (401, 404).
 *
 * Kept apart from ./validation.ts so that route schemas and the CLI load no validator until one
 * is needed.
 */

export interface AdminErrorReply {
  error: string;
  field: string | null;
  in?: string;
}

/** The JSON schema of AdminErrorReply: every route's 400/401/404 reply. */
export const ERROR_REPLY = {
  type: 'object',
  description: 'An error: a sentence, the offending field and where it was',
  properties: {
    error: { type: 'string' },
    field: { type: ['string', 'null'], description: 'dotted path of the offending field, or null' },
    in: { type: 'string', enum: ['body', 'querystring', 'params', 'headers'] },
  },
  required: ['error', 'field'],
} as const;

/** A request refused for a reason the schema cannot see (no such group, no such target). */
export class AdminError extends Error {
  constructor(readonly statusCode: number, message: string, readonly field: string | null = null, readonly part?: string) {
    super(message);
  }

  reply(): AdminErrorReply {
    return this.part ? { error: this.message, field: this.field, in: this.part } : { error: this.message, field: this.field };
  }
}
