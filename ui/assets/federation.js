// federation.js: the federation map (#/federation): every datacenter as a
// node of an inline SVG graph, the direct WAN links between them with the
// round-trip time their servers' WAN coordinates estimate, the unreachable
// ones in red. A datacenter opens its services.
//
// Meridian's WAN pool is a full mesh today: every server links directly to
// every other datacenter's servers, so every pair of datacenters with a live
// server is a direct link. Relays through a neighbour datacenter do not
// exist yet, so the map draws none.

import { esc } from './api.js';
import * as dcs from './dcs.js';

const W = 640;
const H = 420;

export function render(main, ctx) {
  main.innerHTML = `<h1>Federation</h1>
    <p class="muted">Every datacenter this agent knows, and the WAN links between them with their estimated round-trip time. Select one to open it.</p>
    <div id="map"><p class="muted">Loading…</p></div><div id="table"></div>`;
  let done = false;
  ctx.onStop(dcs.subscribe((st) => {
    if (!st.list.length) {
      if (st.error) {
        main.querySelector('#map').innerHTML = `<p class="error">${esc(st.error)}</p>`;
        if (!done) { done = true; ctx.ready(); }
      }
      return;
    }
    draw(main, ctx, st);
    if (!done) { done = true; ctx.ready(); }
  }));
}

function draw(main, ctx, st) {
  const list = st.list;
  const n = list.length;
  const r = n === 1 ? 0 : Math.min(W, H) / 2 - 80;
  const pos = new Map(list.map((d, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    return [d.name, { x: W / 2 + r * Math.cos(a), y: H / 2 + r * Math.sin(a) }];
  }));
  const up = (d) => d.reachable !== false;
  const links = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = list[i];
      const b = list[j];
      const rtt = dcs.rttBetween(a.servers, b.servers);
      links.push({ a, b, down: !up(a) || !up(b), rtt });
    }
  }
  const link = (d) => `#/services${d.name === ctx.local ? '' : '?dc=' + encodeURIComponent(d.name)}`;
  const svg = `<svg class="map" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="map-title">
    <title id="map-title">Federation map of ${n} datacenter${n === 1 ? '' : 's'}</title>
    ${links.map((l) => {
      const p = pos.get(l.a.name);
      const q = pos.get(l.b.name);
      const label = l.down ? 'unreachable' : dcs.formatRTT(l.rtt);
      return `<g class="linkg" data-link="${esc(l.a.name)}-${esc(l.b.name)}" data-down="${l.down}"><line class="link${l.down ? ' down' : ''}" x1="${p.x}" y1="${p.y}" x2="${q.x}" y2="${q.y}"></line>
        <text class="rtt" x="${(p.x + q.x) / 2}" y="${(p.y + q.y) / 2 - 6}">${esc(label)}</text></g>`;
    }).join('')}
    ${list.map((d) => {
      const p = pos.get(d.name);
      const cls = ['dcnode', d.name === ctx.local ? 'local' : '', up(d) ? '' : 'down'].join(' ');
      const sub = d.name === ctx.local ? 'this agent' : up(d) ? `${d.servers.length} server${d.servers.length === 1 ? '' : 's'}` : 'unreachable';
      return `<a class="${cls}" href="${esc(link(d))}" data-dc="${esc(d.name)}" data-reachable="${up(d)}" aria-label="${esc(d.name)}: ${esc(sub)}">
        <circle cx="${p.x}" cy="${p.y}" r="42"></circle>
        <text x="${p.x}" y="${p.y + 6}">${esc(d.name)}</text>
        <text class="rtt" x="${p.x}" y="${p.y + 64}">${esc(sub)}</text></a>`;
    }).join('')}
  </svg>`;
  main.querySelector('#map').innerHTML = svg;
  main.querySelector('#table').innerHTML = `<h2>Datacenters</h2><div class="tablewrap"><table><thead><tr><th>Datacenter</th><th>State</th><th>Servers alive</th><th>RTT from ${esc(ctx.local)}</th></tr></thead><tbody>${
    list.map((d) => `<tr data-dc="${esc(d.name)}"><td><a href="${esc(link(d))}">${esc(d.name)}</a></td><td>${up(d) ? (d.reachable === null ? '<span class="muted">checking…</span>' : '<span class="badge passing">reachable</span>') : `<span class="badge critical">unreachable</span> <span class="muted">${esc(d.why)}</span>`}</td><td class="num">${d.servers.length}</td><td class="num">${d.name === ctx.local ? '' : esc(dcs.formatRTT(d.rtt))}</td></tr>`).join('')
  }</tbody></table></div>
  <p class="muted">Every link drawn is a direct WAN link: Meridian's servers form a full mesh across datacenters. Relays through a neighbour datacenter do not exist yet, so none are drawn.</p>`;
}
