/**
 * The admin API's bearer token in the browser, for an API bound off loopback (src/admin/auth.ts).
 * A page load cannot carry an Authorization header and EventSource cannot send one, so the page
 * and its script are public (they hold no data) and every data request is made here with fetch:
 * on a 401 the console asks for the token once in the #login dialog, keeps it in sessionStorage
 * (this tab only, gone when it closes; never a cookie, so no other site can make the browser send
 * it) and sends it as `Authorization: Bearer`. On loopback the API never answers 401, so nothing
 * is asked. The event stream is read from a fetch body (text/event-stream, WHATWG HTML §9.2).
 */

const KEY = 'arraysim.adminToken';
let asking: Promise<void> | null = null;

function token(): string | null {
  try { return sessionStorage.getItem(KEY); } catch { return null; }
}

/** Show #login until a token is entered; `why` says what the server answered. Concurrent 401s share one dialog. */
function askToken(why: string): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const d = document.getElementById('login') as HTMLDialogElement;
    const input = document.getElementById('login-token') as HTMLInputElement;
    const err = document.getElementById('login-error')!;
    err.textContent = why;
    err.hidden = !why;
    input.value = '';
    d.querySelector('form')!.onsubmit = (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      try { sessionStorage.setItem(KEY, t); } catch { /* storage off: asked again next time */ }
      d.close();
      asking = null;
      resolve();
    };
    d.showModal();
    input.focus();
  });
  return asking;
}

/** fetch with the token when there is one; a 401 asks for it (again) and retries. */
export async function authorizedFetch(url: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const t = token();
    const headers = new Headers(init.headers);
    if (t) headers.set('authorization', `Bearer ${t}`);
    const r = await fetch(url, { ...init, headers });
    if (r.status !== 401) return r;
    await r.body?.cancel();
    if (t) try { sessionStorage.removeItem(KEY); } catch { /* nothing kept */ }
    await askToken(t ? 'That token was refused: enter the admin API token again.' : '');
  }
}

export interface StreamHandlers {
  onEvent(type: string, data: string): void;
  /** The stream is down (it is retried); `open` comes with the next hello. */
  onLost(): void;
}

/** Read GET `url` as server-sent events for as long as the page lives, reconnecting after a loss. */
export function streamEvents(url: string, h: StreamHandlers): void {
  const run = async (): Promise<void> => {
    const r = await authorizedFetch(url, { headers: { accept: 'text/event-stream' }, cache: 'no-store' });
    if (!r.ok || !r.body) throw new Error(`GET ${url}: HTTP ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('event stream ended');
      buf += value.replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue; // a comment: the server's keep-alive
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') type = v;
          else if (field === 'data') data.push(v);
        }
        if (data.length) h.onEvent(type, data.join('\n'));
      }
    }
  };
  const loop = (): void => {
    run().catch(() => { h.onLost(); setTimeout(loop, 1000); });
  };
  loop();
}
