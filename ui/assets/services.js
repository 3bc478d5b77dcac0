// services.js: the Services list (#/services) and a service's instances
// (#/services/NAME).

import { get, watch, poll, esc, describe } from './api.js';
import { rollup, tags, meta, errorBox, checksTable, worst, badge } from './view.js';

export function render(main, ctx) {
  if (ctx.rest) return detail(main, ctx, decodeURIComponent(ctx.rest));
  return list(main, ctx);
}

// list follows /v1/internal/ui/services, the agent's summary of every
// service: its instances (each counted once, checks or not), tags and the
// checks of its instances and their nodes by status.
function list(main, ctx) {
  const filter = ctx.query.get('filter') || '';
  main.innerHTML = `<h1>Services</h1>
    <div class="toolbar"><label for="filter" class="muted">Filter</label>
    <input type="search" id="filter" placeholder="name or tag" value="${esc(filter)}" autocomplete="off">
    <span id="count" class="muted" aria-live="polite"></span></div>
    <div id="err"></div><div id="list"><p class="muted">Loading…</p></div>`;
  const input = main.querySelector('#filter');
  let services = null; // the summaries
  let done = false;

  function draw() {
    if (!services) return;
    const f = input.value.trim().toLowerCase();
    const rows = services.map((s) => ({
      name: s.Name,
      tags: s.Tags || [],
      c: { passing: s.ChecksPassing, warning: s.ChecksWarning, critical: s.ChecksCritical, instances: s.InstanceCount },
    })).filter((r) => !f || r.name.toLowerCase().includes(f) || r.tags.some((t) => t.toLowerCase().includes(f)));
    rows.sort((a, b) => (b.c.critical - a.c.critical) || (b.c.warning - a.c.warning) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    main.querySelector('#count').textContent = `${rows.length} of ${services.length}`;
    const body = rows.map((r) => `<tr data-service="${esc(r.name)}" class="${r.c.critical ? 'is-critical' : ''}"><td><a href="${esc(ctx.link('/services/' + encodeURIComponent(r.name)))}">${esc(r.name)}</a></td><td class="num">${r.c.instances}</td><td>${rollup(r.c)}</td><td>${tags(r.tags)}</td></tr>`).join('');
    main.querySelector('#list').innerHTML = rows.length
      ? `<div class="tablewrap"><table><thead><tr><th>Service</th><th class="num">Instances</th><th>Health checks</th><th>Tags</th></tr></thead><tbody>${body}</tbody></table></div>`
      : `<p class="muted">${f ? 'No service matches the filter.' : 'No services are registered in this datacenter.'}</p>`;
    if (!done) { done = true; ctx.ready(); }
  }

  input.addEventListener('input', () => { ctx.setQuery('filter', input.value); draw(); });
  const err = main.querySelector('#err');
  ctx.onStop(watch('/internal/ui/services', { dc: ctx.dc }, (r) => { err.innerHTML = ''; services = r.data || []; draw(); }, (e) => {
    err.innerHTML = errorBox(e, 'services');
    if (!done) { done = true; main.querySelector('#list').innerHTML = ''; ctx.ready(); }
  }));
}

function detail(main, ctx, name) {
  main.innerHTML = `<p class="crumbs"><a href="${esc(ctx.link('/services'))}">Services</a> /</p>
    <h1>${esc(name)}</h1><div id="failover"></div><div id="queries"></div><div id="err"></div><div id="instances"><p class="muted">Loading…</p></div>`;
  const path = '/health/service/' + encodeURIComponent(name);
  let done = false;
  const err = main.querySelector('#err');
  ctx.onStop(watch(path, { dc: ctx.dc }, (r) => {
    err.innerHTML = '';
    const nodes = r.data || [];
    main.querySelector('#instances').innerHTML = nodes.length
      ? `<h2>${nodes.length} instance${nodes.length === 1 ? '' : 's'}</h2>` + nodes.map((n) => instance(n, ctx)).join('')
      : `<p class="muted">No instance of ${esc(name)} is registered in ${esc(ctx.dc)}.</p>`;
    if (!done) { done = true; ctx.ready(); }
  }, (e) => {
    err.innerHTML = errorBox(e);
    if (!done) { done = true; main.querySelector('#instances').innerHTML = ''; ctx.ready(); }
  }));
  // The agent's failover policy answers ?passing reads of the local
  // datacenter from another when the local one has no healthy instance,
  // and says so in X-Meridian-Failover-Datacenter.
  if (ctx.dc === ctx.local) {
    const box = main.querySelector('#failover');
    ctx.onStop(watch(path, { passing: true }, (r) => {
      const from = r.headers.get('X-Meridian-Failover-Datacenter');
      if (!from) { box.innerHTML = ''; return; }
      const tried = r.headers.get('X-Meridian-Failovers');
      const inst = (r.data || []).map((n) => `${esc(n.Node.Node)} (${esc(addr(n))})`).join(', ');
      box.innerHTML = `<div class="failover" role="status" id="failover-state"><strong>Failover policy:</strong> answered from ${esc(from)} (local has no healthy instance)${tried ? `; ${esc(from)} was datacenter ${esc(tried)} of the policy's order` : ''}. Healthy there: ${inst || 'none'}. <a href="#/services/${esc(encodeURIComponent(name))}?dc=${esc(encodeURIComponent(from))}">Open in ${esc(from)}</a></div>`;
    }, () => { box.innerHTML = ''; }));
  }
  ctx.onStop(poll(3000, (signal) => queries(main.querySelector('#queries'), ctx, name, signal)));
}

// queries shows where the prepared queries that look this service up are
// answered from, running each (execution cannot block, so every 3s). A
// datacenter whose queries cannot be listed (ACLs) shows none.
async function queries(box, ctx, name, signal) {
  let list;
  try {
    list = (await get('/query', { dc: ctx.dc }, { signal })).data || [];
  } catch (e) {
    if (!signal.aborted) box.innerHTML = '';
    return;
  }
  const mine = list.filter((q) => !(q.Template && q.Template.Type) && q.Service && (q.Service.Service || '').toLowerCase() === name.toLowerCase());
  const runs = await Promise.all(mine.map(async (q) => {
    try {
      return { q, r: (await get('/query/' + encodeURIComponent(q.ID) + '/execute', { dc: ctx.dc }, { signal })).data };
    } catch (e) {
      return { q, e };
    }
  }));
  if (signal.aborted) return;
  box.innerHTML = runs.map(({ q, r, e }) => {
    const label = `Prepared query <strong>${esc(q.Name || q.ID)}</strong>`;
    if (e) return `<p class="error">${label}: ${esc(describe(e))}</p>`;
    const n = (r.Nodes || []).length;
    if (r.Datacenter && r.Datacenter !== ctx.dc) {
      return `<div class="failover" data-query="${esc(q.Name || q.ID)}">${label}: answered from ${esc(r.Datacenter)} (local has no healthy instance), ${n} instance${n === 1 ? '' : 's'} there, after asking ${esc(r.Failovers)} other datacenter${r.Failovers === 1 ? '' : 's'}.</div>`;
    }
    return `<p class="note" data-query="${esc(q.Name || q.ID)}">${label}: answered in ${esc(ctx.dc)}, ${n} instance${n === 1 ? '' : 's'}.</p>`;
  }).join('');
}

function addr(n) {
  const a = n.Service.Address || n.Node.Address;
  const host = a.includes(':') ? `[${a}]` : a;
  return n.Service.Port ? `${host}:${n.Service.Port}` : a;
}

function instance(n, ctx) {
  const checks = n.Checks || [];
  const st = worst(checks);
  return `<section class="card" data-instance="${esc(n.Service.ID)}" data-status="${st}">
    <h3>${esc(n.Service.ID)} ${badge(st)}</h3>
    <dl class="kv"><dt>Node</dt><dd><a href="${esc(ctx.link('/nodes/' + encodeURIComponent(n.Node.Node)))}">${esc(n.Node.Node)}</a></dd>
    <dt>Address</dt><dd>${esc(addr(n))}</dd>
    <dt>Tags</dt><dd>${tags(n.Service.Tags) || '<span class="muted">none</span>'}</dd>
    <dt>Meta</dt><dd>${meta(n.Service.Meta)}</dd></dl>
    ${checksTable(checks)}
  </section>`;
}
