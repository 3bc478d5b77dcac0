// nodes.js: the Nodes list (#/nodes) and a node's services and checks
// (#/nodes/NAME).

import { watch, esc } from './api.js';
import { rollup, tags, meta, errorBox, checksTable, badge } from './view.js';

export function render(main, ctx) {
  if (ctx.rest) return detail(main, ctx, decodeURIComponent(ctx.rest));
  return list(main, ctx);
}

function list(main, ctx) {
  const filter = ctx.query.get('filter') || '';
  main.innerHTML = `<h1>Nodes</h1>
    <div class="toolbar"><label for="filter" class="muted">Filter</label>
    <input type="search" id="filter" placeholder="name or address" value="${esc(filter)}" autocomplete="off"></div>
    <div id="err"></div><div id="list"><p class="muted">Loading…</p></div>`;
  const input = main.querySelector('#filter');
  const err = main.querySelector('#err');
  let nodes = null;
  let checks = null;
  let done = false;
  function draw() {
    if (!nodes || !checks) return;
    const byNode = new Map();
    for (const c of checks) {
      if (!byNode.has(c.Node)) byNode.set(c.Node, { passing: 0, warning: 0, critical: 0, serf: null });
      const s = byNode.get(c.Node);
      if (c.Status in s) s[c.Status]++;
      if (c.CheckID === 'serfHealth') s.serf = c.Status;
    }
    const f = input.value.trim().toLowerCase();
    const rows = nodes.filter((n) => !f || n.Node.toLowerCase().includes(f) || n.Address.includes(f));
    main.querySelector('#list').innerHTML = rows.length ? `<div class="tablewrap"><table><thead><tr><th>Node</th><th>Address</th><th>serfHealth</th><th>Checks</th></tr></thead><tbody>${
      rows.map((n) => {
        const s = byNode.get(n.Node) || { passing: 0, warning: 0, critical: 0, serf: null };
        return `<tr data-node="${esc(n.Node)}"><td><a href="${esc(ctx.link('/nodes/' + encodeURIComponent(n.Node)))}">${esc(n.Node)}</a></td><td>${esc(n.Address)}</td><td>${s.serf ? badge(s.serf) : '<span class="muted">none</span>'}</td><td>${rollup(s)}</td></tr>`;
      }).join('')}</tbody></table></div>` : `<p class="muted">${f ? 'No node matches the filter.' : 'No nodes.'}</p>`;
    if (!done) { done = true; ctx.ready(); }
  }
  input.addEventListener('input', () => { ctx.setQuery('filter', input.value); draw(); });
  const fail = (e) => { err.innerHTML = errorBox(e); if (!done) { done = true; main.querySelector('#list').innerHTML = ''; ctx.ready(); } };
  ctx.onStop(watch('/catalog/nodes', { dc: ctx.dc }, (r) => { err.innerHTML = ''; nodes = r.data || []; draw(); }, fail));
  ctx.onStop(watch('/health/state/any', { dc: ctx.dc }, (r) => { err.innerHTML = ''; checks = r.data || []; draw(); }, fail));
}

function detail(main, ctx, name) {
  main.innerHTML = `<p class="crumbs"><a href="${esc(ctx.link('/nodes'))}">Nodes</a> /</p>
    <h1>${esc(name)}</h1><div id="err"></div><div id="node"><p class="muted">Loading…</p></div><div id="checks"></div>`;
  const err = main.querySelector('#err');
  let done = false;
  const finish = () => { if (!done) { done = true; ctx.ready(); } };
  const fail = (e) => { err.innerHTML = errorBox(e); finish(); };
  const path = encodeURIComponent(name);
  ctx.onStop(watch('/catalog/node/' + path, { dc: ctx.dc }, (r) => {
    err.innerHTML = '';
    const box = main.querySelector('#node');
    if (!r.data) { box.innerHTML = `<p class="error">There is no node ${esc(name)} in ${esc(ctx.dc)}.</p>`; finish(); return; }
    const n = r.data.Node;
    const svcs = Object.values(r.data.Services || {}).sort((a, b) => (a.ID < b.ID ? -1 : 1));
    box.innerHTML = `<dl class="kv"><dt>Address</dt><dd>${esc(n.Address)}</dd><dt>Datacenter</dt><dd>${esc(n.Datacenter)}</dd><dt>ID</dt><dd>${esc(n.ID || '')}</dd><dt>Meta</dt><dd>${meta(n.Meta)}</dd></dl>
      <h2>Services</h2>${svcs.length ? `<div class="tablewrap"><table><thead><tr><th>Service</th><th>ID</th><th>Port</th><th>Tags</th></tr></thead><tbody>${
        svcs.map((s) => `<tr><td><a href="${esc(ctx.link('/services/' + encodeURIComponent(s.Service)))}">${esc(s.Service)}</a></td><td>${esc(s.ID)}</td><td class="num">${esc(s.Port || '')}</td><td>${tags(s.Tags)}</td></tr>`).join('')
      }</tbody></table></div>` : '<p class="muted">No services.</p>'}`;
    finish();
  }, fail));
  ctx.onStop(watch('/health/node/' + path, { dc: ctx.dc }, (r) => {
    main.querySelector('#checks').innerHTML = '<h2>Checks</h2>' + checksTable(r.data || []);
  }, fail));
}
