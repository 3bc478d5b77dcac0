// view.js: small pieces of HTML the pages share. Everything interpolated
// goes through esc.

import { esc, describe } from './api.js';

const statuses = ['critical', 'warning', 'passing'];

export function badge(status, text) {
  const cls = statuses.includes(status) ? status : 'warning';
  return `<span class="badge ${cls}">${esc(text ?? status)}</span>`;
}

// rollup renders passing/warning/critical counts, the zero ones left out.
export function rollup(c) {
  const parts = [];
  if (c.critical) parts.push(badge('critical', `${c.critical} critical`));
  if (c.warning) parts.push(badge('warning', `${c.warning} warning`));
  if (c.passing) parts.push(badge('passing', `${c.passing} passing`));
  return parts.join(' ') || '<span class="muted">no checks</span>';
}

export function tags(list) {
  return (list || []).map((t) => `<span class="tag">${esc(t)}</span>`).join('');
}

export function meta(obj) {
  const keys = Object.keys(obj || {});
  if (!keys.length) return '<span class="muted">none</span>';
  return `<dl class="kv">${keys.sort().map((k) => `<dt>${esc(k)}</dt><dd>${esc(obj[k])}</dd>`).join('')}</dl>`;
}

export function errorBox(err, what) {
  return `<p class="error" role="alert">${esc(what ? what + ': ' : '')}${esc(describe(err))}</p>`;
}

// worst is the worst status of a list of checks.
export function worst(checks) {
  for (const s of statuses) if (checks.some((c) => c.Status === s)) return s;
  return 'passing';
}

export function checksTable(checks) {
  if (!checks.length) return '<p class="muted">No checks.</p>';
  return `<div class="tablewrap"><table><thead><tr><th>Check</th><th>Status</th><th class="hide-narrow">Type</th><th>Output</th><th class="hide-narrow">Changed at index</th></tr></thead><tbody>${
    checks.map((c) => `<tr data-check="${esc(c.CheckID)}"><td>${esc(c.Name || c.CheckID)}${c.ServiceID ? '' : ' <span class="muted">(node)</span>'}</td><td>${badge(c.Status)}</td><td class="hide-narrow">${esc(c.Type || '')}</td><td>${c.Output ? `<pre>${esc(c.Output)}</pre>` : '<span class="muted">none</span>'}</td><td class="hide-narrow num">${esc(c.ModifyIndex)}</td></tr>`).join('')
  }</tbody></table></div>`;
}

// confirmDialog asks a yes/no question in a modal <dialog> (keyboard:
// Escape cancels, the confirm button has focus) and resolves to the answer.
export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const d = document.createElement('dialog');
    d.setAttribute('aria-labelledby', 'confirm-text');
    d.innerHTML = `<p id="confirm-text">${esc(message)}</p><form method="dialog" class="toolbar"><button value="no" id="confirm-no">Cancel</button> <button value="yes" class="danger" id="confirm-yes">${esc(confirmLabel)}</button></form>`;
    document.body.appendChild(d);
    d.addEventListener('close', () => { resolve(d.returnValue === 'yes'); d.remove(); });
    d.showModal();
    d.querySelector('#confirm-yes').focus();
  });
}

// tokenDialog asks for an ACL token (a secret ID); it resolves to the new
// token, '' to forget it, or null when cancelled.
export function tokenDialog(current) {
  return new Promise((resolve) => {
    const d = document.createElement('dialog');
    d.setAttribute('aria-labelledby', 'token-title');
    d.innerHTML = `<form class="stack" id="token-form"><h2 id="token-title">ACL token</h2>
      <p class="muted">Sent as X-Consul-Token with every request this page makes, and kept in this browser until you forget it.</p>
      <label>Secret ID<input type="password" id="token-input" autocomplete="off" spellcheck="false" value="${esc(current)}"></label>
      <div class="toolbar"><button class="primary" id="token-save">Use this token</button><button type="button" id="token-clear">Forget the token</button><button type="button" id="token-cancel">Cancel</button></div></form>`;
    document.body.appendChild(d);
    let answer = null;
    d.querySelector('#token-form').addEventListener('submit', (ev) => { ev.preventDefault(); answer = d.querySelector('#token-input').value.trim(); d.close(); });
    d.querySelector('#token-clear').addEventListener('click', () => { answer = ''; d.close(); });
    d.querySelector('#token-cancel').addEventListener('click', () => d.close());
    d.addEventListener('close', () => { resolve(answer); d.remove(); });
    d.showModal();
    d.querySelector('#token-input').focus();
  });
}
