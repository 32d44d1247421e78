/**
 * The CLI's side of the admin API: one call, with the bearer token when ARRAYSIM_ADMIN_TOKEN is
 * set, and a body checked against the route's own schema before it is sent, so a bad field is
 * refused locally with the words the server would use.
 */

/** The admin API's default address: loopback, the first portal's port + 1000 (3260 → 4260). */
export function defaultAdmin(firstPortalPort = 3260): string {
  return `127.0.0.1:${firstPortalPort + 1000}`;
}

export class AdminCallError extends Error {
  constructor(message: string, readonly status: number | null, readonly field: string | null) {
    super(message);
  }
}

export async function adminCall(
  base: string, method: string, path: string, o: { body?: unknown; schema?: object; env?: NodeJS.ProcessEnv } = {},
): Promise<unknown> {
  let body: unknown;
  if (o.body !== undefined) {
    // Check exactly what goes on the wire (undefined options vanish in JSON), on a copy: the check fills in defaults.
    const text = JSON.stringify(o.body);
    body = JSON.parse(text);
    if (o.schema) {
      // Loaded here: only a verb that sends a body needs the validator.
      const { checkBody } = await import('./validation.ts');
      const bad = checkBody(o.schema, JSON.parse(text));
      if (bad) throw new AdminCallError(bad.error, null, bad.field);
    }
  }
  const url = (base.startsWith('http') ? base : `http://${base}`) + path;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const token = (o.env ?? process.env).ARRAYSIM_ADMIN_TOKEN?.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw new AdminCallError(`admin API at ${base}: ${cause ?? (e as Error).message}`, null, null);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AdminCallError(`admin API at ${base}: HTTP ${res.status}, not JSON`, res.status, null);
  }
  if (!res.ok) {
    const j = json as { error?: string; field?: string | null };
    throw new AdminCallError(j.error ?? `HTTP ${res.status}`, res.status, j.field ?? null);
  }
  return json;
}
