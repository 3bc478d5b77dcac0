// app.js: the shell. It routes the location hash to a page module, keeps
// the header (navigation, datacenter selector) and the connection banner,
// and stops a page's live reads when another page replaces it.
//
// URLs: #/services, #/services/NAME, #/nodes, #/nodes/NAME, #/kv/PREFIX/,
// #/kv/KEY, #/members, #/federation; each takes ?dc=DC (the selected
// datacenter) and page-specific parameters, so reload and share work.

import { get, describe, esc, onConnection, setLocalDC, getToken, setToken } from './api.js';
import { tokenDialog } from './view.js';
import * as dcs from './dcs.js';
import * as services from './services.js';
import * as nodes from './nodes.js';
import * as kv from './kv.js';
import * as members from './members.js';
import * as federation from './federation.js';

const pages = { services, nodes, kv, members, federation };

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const select = document.getElementById('dc');
const dcStatus = document.getElementById('dc-status');

let local = '';
let stops = [];
let lastPath = null;

// parse splits the hash into page, the rest of its path (still encoded) and
// the query.
function parse() {
  const hash = location.hash.replace(/^#/, '') || '/services';
  const [path, query = ''] = hash.split(/\?(.*)/s);
  const m = path.match(/^\/([^/]*)\/?(.*)$/s) || [];
  return { page: m[1] || 'services', rest: m[2] || '', path, query: new URLSearchParams(query) };
}

// link builds a hash URL for path keeping the selected datacenter.
function linkFor(dc) {
  return (path, params = {}) => {
    const q = new URLSearchParams();
    if (dc && dc !== local) q.set('dc', dc);
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
    const qs = q.toString();
    return '#' + path + (qs ? '?' + qs : '');
  };
}

function route() {
  for (const s of stops) s();
  stops = [];
  const r = parse();
  const dc = r.query.get('dc') || local;
  const page = pages[r.page];
  const link = linkFor(dc);
  for (const a of document.querySelectorAll('nav a')) {
    const p = a.dataset.page;
    a.href = link(p === 'kv' ? '/kv/' : '/' + p);
    if (p === r.page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.getElementById('brand').href = link('/services');
  renderSelector();
  const ctx = {
    dc, local, rest: r.rest, query: r.query, link,
    // onStop registers what to stop when the page goes away.
    onStop: (fn) => stops.push(fn),
    // setQuery records page state in the URL without re-rendering.
    setQuery: (k, v) => {
      const q = new URLSearchParams(r.query);
      if (v) q.set(k, v); else q.delete(k);
      const qs = q.toString();
      history.replaceState(null, '', '#' + r.path + (qs ? '?' + qs : ''));
    },
    // ready marks the first complete render, for the performance figures.
    ready: () => {
      if (!performance.getEntriesByName('meridian:ready').length) performance.mark('meridian:ready');
      main.setAttribute('aria-busy', 'false');
    },
  };
  main.setAttribute('aria-busy', 'true');
  if (!page) {
    main.innerHTML = `<h1>Not found</h1><p class="error">There is no page “${esc(r.page)}”. <a href="${link('/services')}">Services</a></p>`;
    ctx.ready();
    return;
  }
  try {
    page.render(main, ctx);
  } catch (e) {
    main.innerHTML = `<h1>Error</h1><p class="error">${esc(describe(e))}</p>`;
  }
  if (lastPath !== r.path) {
    lastPath = r.path;
    if (document.activeElement === select) return;
    main.focus({ preventScroll: true });
  }
}

function selected() {
  return parse().query.get('dc') || local;
}

function renderSelector() {
  const st = dcs.state;
  const cur = selected();
  const list = st.list.length ? st.list : [{ name: local, rtt: 0, reachable: true }];
  const opts = list.map((d) => {
    let label = d.name;
    if (d.name === local) label += ' (this agent)';
    else if (d.reachable === false) label += ' · unreachable';
    else if (!Number.isNaN(d.rtt)) label += ' · ' + dcs.formatRTT(d.rtt);
    return { value: d.name, label, reachable: String(d.reachable) };
  });
  if (!list.some((d) => d.name === cur)) {
    opts.push({ value: cur, label: cur + ' · no longer known', reachable: 'false' });
  }
  // Options are updated in place while the datacenters stay the same, so
  // that an open list is not closed by a round-trip time that moved.
  const values = opts.map((o) => o.value).join('\u0000');
  if (select.dataset.values !== values) {
    select.innerHTML = opts.map((o) => `<option value="${esc(o.value)}"></option>`).join('');
    select.dataset.values = values;
  }
  opts.forEach((o, i) => {
    const el = select.options[i];
    if (el.textContent !== o.label) el.textContent = o.label;
    el.dataset.reachable = o.reachable;
  });
  if (select.value !== cur) select.value = cur;
  const d = list.find((x) => x.name === cur);
  if (!d) dcStatus.textContent = `${cur} is no longer a known datacenter`;
  else if (d.reachable === false) dcStatus.textContent = `${cur} is unreachable: ${d.why}`;
  else dcStatus.textContent = st.error ? 'datacenters: ' + st.error : '';
}

const tokenBtn = document.getElementById('token-btn');
function showToken() {
  tokenBtn.textContent = getToken() ? 'ACL token ✓' : 'ACL token';
}
showToken();
let retryBoot = () => {};
tokenBtn.addEventListener('click', async () => {
  const t = await tokenDialog(getToken());
  if (t === null) return;
  setToken(t);
  showToken();
  retryBoot();
  if (local) route();
});

// The skip link moves focus; following its #main would be a route.
document.getElementById('skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

select.addEventListener('change', () => {
  const r = parse();
  const q = new URLSearchParams(r.query);
  if (select.value === local) q.delete('dc'); else q.set('dc', select.value);
  // A key or a node of one datacenter means nothing in another: go to the
  // list of the same page.
  const path = r.page === 'kv' ? '/kv/' : '/' + r.page;
  const qs = q.toString();
  location.hash = path + (qs ? '?' + qs : '');
});

onConnection((isLost) => {
  if (isLost) {
    banner.textContent = `Lost the connection to the agent at ${location.host}; retrying…`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
});

// A page kept in the browser's back-forward cache would hold its blocking
// queries open, and with them the connections the next page needs.
window.addEventListener('pagehide', () => {
  for (const s of stops) s();
  stops = [];
  dcs.pause();
});
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted && local) {
    dcs.start(local);
    route();
  }
});

window.addEventListener('unhandledrejection', (ev) => {
  ev.preventDefault();
  banner.textContent = 'Something failed: ' + describe(ev.reason);
  banner.hidden = false;
});

// The agent's datacenter, remembered from the last visit so that the first
// page need not wait for /v1/agent/self; boot checks it and starts over if
// the agent says otherwise.
const remembered = 'meridian.ui.datacenter:' + location.host;

function begin(dc) {
  local = dc;
  setLocalDC(local);
  route();
}

async function boot() {
  dcs.subscribe(renderSelector);
  window.addEventListener('hashchange', route);
  let cached = '';
  try { cached = localStorage.getItem(remembered) || ''; } catch (e) { cached = ''; }
  if (cached) begin(cached);
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      const self = await get('/agent/self');
      const dc = self.data.Config.Datacenter;
      try { localStorage.setItem(remembered, dc); } catch (e) { /* storage off: no memory */ }
      if (dc !== local) begin(dc);
      break;
    } catch (e) {
      if (!cached) main.innerHTML = `<p class="error">Cannot read this agent's datacenter (/v1/agent/self): ${esc(describe(e))}. Retrying…</p>`;
      await new Promise((r) => { retryBoot = r; setTimeout(r, delay); });
    }
  }
  dcs.start(local);
}

boot();
