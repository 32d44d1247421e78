/**
 * GET /v1/openapi.json against every registered route: each route is in the document with its
 * body, query, path parameters and replies, and the document is valid OpenAPI 3.1 (checked with
 * @seriousme/openapi-schema-validator). Negative controls: a route left out of the document and
 * a document with a broken operation are both caught.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteOptions } from 'fastify';
import { AdminApi } from '../../src/admin/api.ts';
import { StorageArray } from '../../src/array.ts';
import { configFromFlags } from '../../src/config.ts';

interface Seen { method: string; url: string; schema: Record<string, any> }

/** Problems with `doc` as the document of `routes` (empty: every route is there, whole). */
function coverage(doc: any, routes: Seen[]): string[] {
  const out: string[] = [];
  for (const r of routes) {
    const url = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const op = doc.paths?.[url]?.[r.method.toLowerCase()];
    const at = `${r.method} ${r.url}`;
    if (!op) { out.push(`${at}: not in the document`); continue; }
    if (r.schema.body) {
      const s = op.requestBody?.content?.['application/json']?.schema;
      if (!s) out.push(`${at}: no requestBody schema`);
      else {
        if (JSON.stringify(Object.keys(s.properties ?? {})) !== JSON.stringify(Object.keys(r.schema.body.properties ?? {}))) out.push(`${at}: body properties differ`);
        if (JSON.stringify(s.required ?? []) !== JSON.stringify(r.schema.body.required ?? [])) out.push(`${at}: body required differs`);
      }
    } else if (op.requestBody) out.push(`${at}: a requestBody the route does not take`);
    const params = (op.parameters ?? []) as { name: string; in: string; required?: boolean }[];
    for (const [part, where] of [['querystring', 'query'], ['params', 'path']] as const) {
      const want = Object.keys(r.schema[part]?.properties ?? {}).sort();
      const have = params.filter((p) => p.in === where).map((p) => p.name).sort();
      if (JSON.stringify(want) !== JSON.stringify(have)) out.push(`${at}: ${where} parameters ${have} != ${want}`);
    }
    const codes = Object.keys(r.schema.response ?? {}).sort();
    const documented = Object.keys(op.responses ?? {}).sort();
    if (JSON.stringify(codes) !== JSON.stringify(documented)) out.push(`${at}: responses ${documented} != ${codes}`);
    for (const c of codes) {
      const want = r.schema.response[c];
      const content = op.responses?.[c]?.content ?? {};
      const got = want.content ? content : content['application/json']?.schema;
      if (!got || (!want.content && JSON.stringify(Object.keys(got.properties ?? {})) !== JSON.stringify(Object.keys(want.properties ?? {})))) {
        out.push(`${at}: reply ${c} schema missing or different`);
      }
    }
  }
  return out;
}

async function openapiValid(doc: unknown): Promise<{ valid: boolean; errors?: unknown }> {
  return new Validator().validate(structuredClone(doc) as Record<string, unknown>);
}

let array: StorageArray;
let api: AdminApi;
let base: string;
const routes: Seen[] = [];
const hidden: string[] = [];

beforeAll(async () => {
  const log = pino({ level: 'silent' });
  array = await StorageArray.create(configFromFlags({ listen: ['127.0.0.1:0'], lun: ['8MiB'] }), log);
  await array.start();
  api = new AdminApi(array, log);
  // The routes as fastify registers them, seen independently of the document.
  // Hidden routes (the console's files, src/admin/api.ts) are not API and stay out of the document.
  api.app.addHook('onRoute', (r: RouteOptions) => {
    if ((r.schema as { hide?: boolean } | undefined)?.hide) { hidden.push(`${String(r.method)} ${r.url}`); return; }
    routes.push({ method: String(r.method), url: r.url, schema: r.schema as Record<string, any> });
  });
  base = `http://127.0.0.1:${await api.listen('127.0.0.1', 0)}`;
});
afterAll(async () => { await api?.close(); await array?.stop(); });

describe('GET /v1/openapi.json', () => {
  it('lists every registered route with its body, parameters and replies', async () => {
    const r = await fetch(`${base}/v1/openapi.json`);
    expect(r.status).toBe(200);
    const doc = await r.json() as any;
    expect(routes.map((x) => `${x.method} ${x.url}`).sort()).toEqual(['GET /metrics', 'GET /v1/alua', 'GET /v1/events', 'GET /v1/groups', 'GET /v1/groups/:group', 'GET /v1/openapi.json', 'GET /v1/status',
      'GET /v1/rcopy/groups',
      'POST /v1/alua', 'POST /v1/groups/:group/bookmarks', 'POST /v1/groups/:group/clear_markers', 'POST /v1/groups/:group/disable_copy', 'POST /v1/groups/:group/disable_group',
      'POST /v1/groups/:group/disable_image_access', 'POST /v1/groups/:group/enable_copy', 'POST /v1/groups/:group/enable_group', 'POST /v1/groups/:group/enable_image_access',
      'POST /v1/groups/:group/pause_transfer', 'POST /v1/groups/:group/set_image_access_mode', 'POST /v1/groups/:group/start_transfer',
      'POST /v1/groups/:group/verify',
      'POST /v1/rcopy/groups/:group/hosts', 'POST /v1/rcopy/groups/:group/start', 'POST /v1/rcopy/groups/:group/stop', 'POST /v1/rcopy/link',
      'POST /v1/rcopy/groups/:group/failover', 'POST /v1/rcopy/groups/:group/recover', 'POST /v1/rcopy/groups/:group/restore', 'POST /v1/rcopy/groups/:group/reverse',
      'GET /v1/rcopy/witness', 'POST /v1/rcopy/witness', 'GET /v1/stores', 'POST /v1/stores/fault',
      'GET /v1/replica-claims', 'POST /v1/replica-claims/release',
      'POST /v1/rcopy/groups', 'POST /v1/rcopy/groups/:group/volumes', 'POST /v1/rcopy/groups/:group/policies',
      'POST /v1/rcopy/groups/:group/dismiss', 'POST /v1/rcopy/groups/:group/remove'].sort());
    expect(coverage(doc, routes)).toEqual([]);
    expect(hidden.sort()).toEqual(['GET /', 'GET /console/:file']);
    // What a reader of the document needs to drive the API:
    expect(doc.openapi).toBe('3.1.0');
    const set = doc.paths['/v1/alua'].post;
    expect(set.requestBody.content['application/json'].schema.required).toEqual(['tpg']);
    expect(set.requestBody.content['application/json'].schema.properties.state.enum).toContain('standby');
    expect(set.responses['400'].content['application/json'].schema.required).toEqual(['error', 'field']);
    expect(Object.keys(doc.paths['/v1/events'].get.responses['200'].content)).toEqual(['text/event-stream']);
    expect(doc.paths['/v1/events'].get.responses['200'].content['text/event-stream'].schema.oneOf).toHaveLength(11);
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const doc = await (await fetch(`${base}/v1/openapi.json`)).json();
    const res = await openapiValid(doc);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
  });

  it('negative controls: a route missing from the document, and a broken document, are caught', async () => {
    const doc = await (await fetch(`${base}/v1/openapi.json`)).json() as any;
    const without = structuredClone(doc);
    delete without.paths['/v1/status'];
    expect(coverage(without, routes)).toEqual(['GET /v1/status: not in the document']);
    const noBody = structuredClone(doc);
    delete noBody.paths['/v1/alua'].post.requestBody;
    expect(coverage(noBody, routes)).toEqual(['POST /v1/alua: no requestBody schema']);
    const lostReply = structuredClone(doc);
    delete lostReply.paths['/v1/alua'].get.responses['200'];
    expect(coverage(lostReply, routes)).toEqual(['GET /v1/alua: responses 400 != 200,400', 'GET /v1/alua: reply 200 schema missing or different']);
    const broken = structuredClone(doc);
    broken.paths['/v1/status'].get.responses = 'none';
    expect((await openapiValid(broken)).valid).toBe(false);
    const badParam = structuredClone(doc);
    badParam.paths['/v1/status'].get.parameters = [{ name: 'x', in: 'nowhere' }];
    expect((await openapiValid(badParam)).valid).toBe(false);
  });

  it('a route a later module adds, with path and query parameters, is documented with them', async () => {
    const log = pino({ level: 'silent' });
    const extra = new AdminApi(array, log);
    const seen: Seen[] = [];
    extra.app.addHook('onRoute', (r: RouteOptions) => {
      if (!(r.schema as { hide?: boolean } | undefined)?.hide) seen.push({ method: String(r.method), url: r.url, schema: r.schema as Record<string, any> });
    });
    const schema = {
      params: { type: 'object', properties: { group: { type: 'string' } }, required: ['group'] },
      querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1 } } },
      response: { 200: { type: 'object', properties: { group: { type: 'string' }, limit: { type: 'integer' } } } },
    };
    extra.app.register(async (scope) => {
      scope.get<{ Params: { group: string }; Querystring: { limit?: number } }>('/v1/example/:group', { schema }, async (req) => ({ group: req.params.group, limit: req.query.limit ?? 10 }));
    });
    const port = await extra.listen('127.0.0.1', 0);
    try {
      const doc = await (await fetch(`http://127.0.0.1:${port}/v1/openapi.json`)).json() as any;
      expect(coverage(doc, seen)).toEqual([]);
      expect(doc.paths['/v1/example/{group}'].get.parameters.map((p: any) => `${p.in}:${p.name}`).sort()).toEqual(['path:group', 'query:limit']);
      expect((await openapiValid(doc)).valid).toBe(true);
      // Query strings are coerced from their spelling; a bad one is a 400 naming it.
      expect(await (await fetch(`http://127.0.0.1:${port}/v1/example/cg1?limit=5`)).json()).toEqual({ group: 'cg1', limit: 5 });
      const bad = await fetch(`http://127.0.0.1:${port}/v1/example/cg1?limit=zero`);
      expect(bad.status).toBe(400);
      expect(await bad.json()).toEqual({ error: 'querystring/limit must be integer', field: 'limit', in: 'querystring' });
    } finally {
      await extra.close();
    }
  });
});
