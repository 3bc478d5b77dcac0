// api.js: every request the UI makes goes through here, to the agent's own
// /v1/ HTTP API. get() reads once; watch() follows an endpoint with Consul's
// blocking queries (?index=&wait=) until it is stopped.

// APIError is an answer other than 2xx: status and the agent's message.
export class APIError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

// NetError means the agent did not answer at all.
class NetError extends Error {}

// connection tracks whether the agent answers; the app shows a banner while
// it does not.
const listeners = new Set();
let lost = false;
export function onConnection(fn) { listeners.add(fn); }
function setLost(v) {
  if (lost === v) return;
  lost = v;
  for (const fn of listeners) fn(lost);
}

// The local datacenter, set by the app from /v1/agent/self: ?dc= is sent
// only for another one, so that local reads keep the agent's failover.
let localDC = '';
export function setLocalDC(dc) { localDC = dc; }

// The ACL token the user gave, kept in the browser for this agent's address
// and sent as X-Consul-Token with every request; none sends none (the
// agent's default token answers).
const tokenKey = 'meridian.ui.token:' + location.host;
export function getToken() {
  try { return localStorage.getItem(tokenKey) || ''; } catch (e) { return ''; }
}
export function setToken(t) {
  try {
    if (t) localStorage.setItem(tokenKey, t); else localStorage.removeItem(tokenKey);
  } catch (e) { /* storage off: the token lasts as long as the page */ }
  memoryToken = t;
}
let memoryToken = getToken();

// encodePath encodes each segment of a key or name, keeping its slashes.
export function encodePath(s) {
  return s.split('/').map(encodeURIComponent).join('/');
}

function url(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dc' && (v === '' || v === localDC)) continue;
    q.append(k, v === true ? '' : String(v));
  }
  const qs = q.toString().replace(/=(&|$)/g, '$1');
  return '/v1' + path + (qs ? '?' + qs : '');
}

// request sends one request and returns {data, index, headers, status};
// data is parsed JSON unless opts.text. A 404 is an APIError unless
// opts.notFoundOK, when it is data null (an empty KV prefix).
export async function request(method, path, params, opts = {}) {
  const u = url(path, params);
  let res;
  try {
    const headers = { ...opts.headers };
    if (memoryToken) headers['X-Consul-Token'] = memoryToken;
    res = await fetch(u, { method, body: opts.body, signal: opts.signal, headers });
  } catch (e) {
    if (e.name === 'AbortError' || e.name === 'TimeoutError') throw e;
    setLost(true);
    throw new NetError('the agent did not answer: ' + e.message);
  }
  setLost(false);
  const text = await res.text();
  if (res.status === 404 && opts.notFoundOK) {
    return { data: null, index: Number(res.headers.get('X-Consul-Index') || 0), headers: res.headers, status: 404 };
  }
  if (!res.ok) {
    throw new APIError(res.status, text.trim() || res.statusText, u);
  }
  let data = text;
  if (!opts.text) {
    try {
      data = text === '' ? null : JSON.parse(text);
    } catch (e) {
      throw new APIError(res.status, 'the agent answered something that is not JSON: ' + text.slice(0, 200), u);
    }
  }
  return { data, index: Number(res.headers.get('X-Consul-Index') || 0), headers: res.headers, status: res.status };
}

export function get(path, params, opts) { return request('GET', path, params, opts); }

// describe turns an error into one line for the page.
export function describe(err) {
  if (err instanceof APIError) {
    const what = {
      403: 'permission denied',
      404: 'not found',
      500: 'the agent failed',
      503: 'unavailable',
    }[err.status] || 'error';
    const hint = err.status === 403 ? (memoryToken ? ' (the ACL token given does not allow it)' : ' (give an ACL token: the button in the header)') : '';
    return `${what} (${err.status} from ${err.path}): ${err.message}${hint}`;
  }
  if (err instanceof NetError) return err.message;
  if (err && err.name === 'TimeoutError') return 'no answer within the time allowed';
  return String(err && err.message || err);
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// A blocking query waits up to waitMs on the agent; a read gets graceMs more
// (or, not blocking, that long) to answer.
const waitMs = 30000;
const graceMs = 15000;

// watch calls onData({data, index, headers}) with the first answer of path
// and again each time its index moves, and onError(err) when a read fails
// (it keeps trying, backing off). opts go to request. It returns a function
// that stops it.
export function watch(path, params, onData, onError, opts = {}) {
  const ctl = new AbortController();
  const signal = ctl.signal;
  (async () => {
    let index = 0;
    let backoff = 250;
    let first = true;
    while (!signal.aborted) {
      try {
        // A read that never answers is an error too, never a spinner
        // forever: the agent answers a blocking query by its wait.
        const limit = AbortSignal.timeout(index ? waitMs + graceMs : graceMs);
        const r = await get(path, { ...params, index: index || undefined, wait: index ? waitMs / 1000 + 's' : undefined }, { ...opts, signal: AbortSignal.any([signal, limit]) });
        if (signal.aborted) return;
        backoff = 250;
        const moved = first || r.index !== index;
        first = false;
        // An index that goes backwards (a restarted server) starts over.
        index = r.index > 0 ? r.index : 0;
        if (moved) onData(r);
        if (!index) await sleep(2000, signal); // no blocking support: poll
      } catch (e) {
        if (signal.aborted) return;
        onError(e);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 5000);
        index = 0;
        first = true;
      }
    }
  })();
  return () => ctl.abort();
}

// poll calls fn every ms milliseconds (and now) until stopped.
export function poll(ms, fn) {
  const ctl = new AbortController();
  (async () => {
    while (!ctl.signal.aborted) {
      await fn(ctl.signal);
      await sleep(ms, ctl.signal);
    }
  })();
  return () => ctl.abort();
}

// esc escapes text for HTML.
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
