// members.js: the gossip pools this agent sees (#/members): LAN, and WAN
// (servers of every datacenter) with ?pool=wan. Gossip membership has no
// index to block on, so the page reads it every two seconds.

import { get, poll, esc } from './api.js';
import { errorBox, badge } from './view.js';

// Serf's member states, as /v1/agent/members numbers them.
const states = { 0: ['none', 'warning'], 1: ['alive', 'passing'], 2: ['leaving', 'warning'], 3: ['left', 'warning'], 4: ['failed', 'critical'] };

export function render(main, ctx) {
  const wan = ctx.query.get('pool') === 'wan';
  main.innerHTML = `<h1>Members</h1>
    <p class="toolbar" role="group" aria-label="Pool"><a class="button" href="${esc(ctx.link('/members'))}" ${wan ? '' : 'aria-current="page"'}>LAN</a>
    <a class="button" href="${esc(ctx.link('/members', { pool: 'wan' }))}" ${wan ? 'aria-current="page"' : ''}>WAN</a>
    <span class="muted">${wan ? 'Servers of every datacenter, as this agent’s WAN pool sees them.' : 'Agents of this agent’s datacenter.'}</span></p>
    ${ctx.dc !== ctx.local ? `<p class="note">Membership is what this agent sees; it is the same whichever datacenter is selected.</p>` : ''}
    <div id="err"></div><div id="list"><p class="muted">Loading…</p></div>`;
  let done = false;
  ctx.onStop(poll(2000, async (signal) => {
    try {
      const r = await get('/agent/members', { wan: wan ? 1 : undefined }, { signal });
      main.querySelector('#err').innerHTML = '';
      const ms = (r.data || []).slice().sort((a, b) => (a.Name < b.Name ? -1 : 1));
      main.querySelector('#list').innerHTML = `<div class="tablewrap"><table><thead><tr><th>Name</th><th>Address</th><th>Status</th><th>Role</th><th>Datacenter</th></tr></thead><tbody>${
        ms.map((m) => {
          const [name, cls] = states[m.Status] || ['unknown', 'warning'];
          const tags = m.Tags || {};
          return `<tr data-member="${esc(m.Name)}"><td>${esc(m.Name)}</td><td>${esc(m.Addr)}:${esc(m.Port)}</td><td>${badge(cls, name)}</td><td>${esc(tags.role === 'consul' ? 'server' : tags.role || '')}</td><td>${esc(tags.dc || '')}</td></tr>`;
        }).join('')}</tbody></table></div>`;
    } catch (e) {
      if (signal.aborted) return;
      main.querySelector('#err').innerHTML = errorBox(e);
      main.querySelector('#list').innerHTML = '';
    }
    if (!done) { done = true; ctx.ready(); }
  }));
}
