// kv.js: the Key/Value store as folders (#/kv/PREFIX/) and keys
// (#/kv/KEY): view (text, JSON pretty-printed, binary as base64), create,
// edit with check-and-set, delete a key or a folder with all under it.

import { get, request, watch, esc, encodePath, describe } from './api.js';
import { errorBox, confirmDialog } from './view.js';

export function render(main, ctx) {
  const key = ctx.rest.split('/').map(decodeURIComponent).join('/');
  if (key === '' || key.endsWith('/')) return folder(main, ctx, key);
  return keyPage(main, ctx, key);
}

const kvLink = (ctx, key) => ctx.link('/kv/' + encodePath(key));

function crumbs(ctx, key) {
  const parts = key.split('/');
  let acc = '';
  const out = [`<a href="${esc(kvLink(ctx, ''))}">Key/Value</a>`];
  parts.forEach((p, i) => {
    if (i === parts.length - 1) return;
    acc += p + '/';
    out.push(`<a href="${esc(kvLink(ctx, acc))}">${esc(p || '(empty)')}</a>`);
  });
  return `<p class="crumbs">${out.join(' / ')} /</p>`;
}

// decodeValue turns a base64 value into {bytes, text}; text is null for a
// value that is not UTF-8 or holds control characters other than
// whitespace.
function decodeValue(b64) {
  const bin = atob(b64 || '');
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  let text = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) text = null;
  } catch (e) {
    text = null;
  }
  return { bytes, text };
}

function pretty(text) {
  const t = text.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch (e) {
    return null;
  }
}

function folder(main, ctx, prefix) {
  const name = prefix === '' ? 'Key/Value' : prefix.split('/').slice(-2)[0] + '/';
  main.innerHTML = `${prefix ? crumbs(ctx, prefix) : ''}<h1>${esc(name)}</h1>
    <div id="err"></div><div id="list"><p class="muted">Loading…</p></div>
    <h2>Create a key${prefix ? ' in ' + esc(prefix) : ''}</h2>
    <form class="stack" id="create">
      <label>Key (a name ending in / makes a folder)<input id="new-key" required autocomplete="off" spellcheck="false"></label>
      <label>Value<textarea id="new-value" spellcheck="false"></textarea></label>
      <div class="toolbar"><button class="primary" id="create-btn">Create</button><span id="create-msg" role="status"></span></div>
    </form>
    ${prefix ? `<h2>Delete this folder</h2><p><button class="danger" id="delete-folder">Delete ${esc(prefix)} and every key under it</button></p>` : ''}`;
  const err = main.querySelector('#err');
  let done = false;
  ctx.onStop(watch('/kv/' + encodePath(prefix), { dc: ctx.dc, keys: true, separator: '/' }, (r) => {
    err.innerHTML = '';
    const keys = (r.data || []).filter((k) => k !== prefix);
    main.querySelector('#list').innerHTML = keys.length ? `<div class="tablewrap"><table><thead><tr><th>Name</th></tr></thead><tbody>${
      keys.map((k) => `<tr data-key="${esc(k)}"><td><a class="${k.endsWith('/') ? 'folder' : ''}" href="${esc(kvLink(ctx, k))}">${esc(k.slice(prefix.length) || k)}</a></td></tr>`).join('')
    }</tbody></table></div>` : `<p class="muted">No keys${prefix ? ' under ' + esc(prefix) : ''}.</p>`;
    if (!done) { done = true; ctx.ready(); }
  }, (e) => {
    err.innerHTML = errorBox(e);
    if (!done) { done = true; main.querySelector('#list').innerHTML = ''; ctx.ready(); }
  }, { notFoundOK: true }));

  main.querySelector('#create').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const msg = main.querySelector('#create-msg');
    const rel = main.querySelector('#new-key').value.replace(/^\/+/, '');
    if (!rel) { msg.innerHTML = '<span class="error">Give the key a name.</span>'; return; }
    const full = prefix + rel;
    try {
      // cas=0 writes only if the key does not exist yet.
      const r = await request('PUT', '/kv/' + encodePath(full), { dc: ctx.dc, cas: 0 }, { body: main.querySelector('#new-value').value });
      if (r.data !== true) {
        msg.innerHTML = `<span class="error">Not created: a key named ${esc(full)} already exists. <a href="${esc(kvLink(ctx, full))}">Open it</a> to edit it.</span>`;
        return;
      }
      location.hash = kvLink(ctx, full);
    } catch (e) {
      msg.innerHTML = `<span class="error">Not created: ${esc(describe(e))}</span>`;
    }
  });
  const del = main.querySelector('#delete-folder');
  if (del) {
    del.addEventListener('click', async () => {
      if (!await confirmDialog(`Delete the folder ${prefix} and every key under it? This cannot be undone.`, 'Delete folder')) return;
      try {
        await request('DELETE', '/kv/' + encodePath(prefix), { dc: ctx.dc, recurse: true });
        location.hash = kvLink(ctx, prefix.replace(/[^/]*\/$/, ''));
      } catch (e) {
        err.innerHTML = errorBox(e, 'Not deleted');
      }
    });
  }
}

const shownMax = 64 * 1024;

function keyPage(main, ctx, key) {
  main.innerHTML = `${crumbs(ctx, key)}<h1>${esc(key.split('/').pop())}</h1>
    <div id="err"></div><div id="value"><p class="muted">Loading…</p></div><div id="edit"></div>`;
  const err = main.querySelector('#err');
  const valueBox = main.querySelector('#value');
  const editBox = main.querySelector('#edit');
  let done = false;
  let base = null; // the entry being edited: its ModifyIndex is the CAS
  let dirty = false;
  const finish = () => { if (!done) { done = true; ctx.ready(); } };

  function showValue(e) {
    const { bytes, text } = decodeValue(e.Value);
    let shown;
    if (text === null) {
      const b64 = e.Value || '';
      shown = `<p class="muted">Binary value, ${bytes.length} bytes, shown as base64${b64.length > shownMax ? ` (the first ${shownMax} characters)` : ''}:</p><pre id="kv-value" data-kind="base64">${esc(b64.slice(0, shownMax))}</pre>`;
    } else {
      const p = pretty(text);
      shown = p !== null
        ? `<p class="muted">JSON, ${bytes.length} bytes, pretty-printed:</p><pre id="kv-value" data-kind="json">${esc(p)}</pre>`
        : `<p class="muted">Text, ${bytes.length} bytes:</p><pre id="kv-value" data-kind="text">${esc(text.length > shownMax ? text.slice(0, shownMax) : text)}</pre>`;
    }
    valueBox.innerHTML = `${shown}<dl class="kv"><dt>Key</dt><dd>${esc(e.Key)}</dd><dt>Flags</dt><dd>${esc(e.Flags)}</dd><dt>Modify index</dt><dd id="kv-index">${esc(e.ModifyIndex)}</dd>${e.Session ? `<dt>Locked by session</dt><dd>${esc(e.Session)}</dd>` : ''}</dl>`;
    return text;
  }

  function showEditor(e, text) {
    base = e;
    dirty = false;
    const binary = text === null;
    editBox.innerHTML = `<h2>Edit</h2><form class="stack" id="edit-form">
      <label>${binary ? 'Value as base64 (binary)' : 'Value'}<textarea id="edit-value" spellcheck="false">${esc(binary ? (e.Value || '') : text)}</textarea></label>
      <div class="toolbar"><button class="primary" id="save">Save</button><button type="button" class="danger" id="delete">Delete key</button><span id="edit-msg" role="status"></span></div></form>`;
    const area = editBox.querySelector('#edit-value');
    area.addEventListener('input', () => { dirty = true; });
    editBox.querySelector('#edit-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const msg = editBox.querySelector('#edit-msg');
      let body = area.value;
      if (binary) {
        try {
          const bin = atob(body.replace(/\s+/g, ''));
          body = Uint8Array.from(bin, (c) => c.charCodeAt(0));
        } catch (e2) {
          msg.innerHTML = '<span class="error">Not saved: the value is not valid base64.</span>';
          return;
        }
      }
      try {
        const r = await request('PUT', '/kv/' + encodePath(key), { dc: ctx.dc, cas: base.ModifyIndex }, { body });
        if (r.data === true) {
          // Show what is stored now: the blocking read may have seen the
          // write before this answer came, while the edit was still open.
          dirty = false;
          const now = await get('/kv/' + encodePath(key), { dc: ctx.dc }, { notFoundOK: true });
          const cur = now.data && now.data[0];
          if (cur) showEditor(cur, showValue(cur));
          editBox.querySelector('#edit-msg').innerHTML = '<span class="badge passing">Saved</span>';
          return;
        }
        const now = await get('/kv/' + encodePath(key), { dc: ctx.dc }, { notFoundOK: true });
        const cur = now.data && now.data[0];
        msg.innerHTML = `<span class="error" id="cas-conflict">Not saved: this key was changed by someone else since you opened it (${cur ? `it is now at index ${esc(cur.ModifyIndex)}` : 'it has been deleted'}; you edited index ${esc(base.ModifyIndex)}). Your text is still here: <button type="button" id="reload">Load their version</button></span>`;
        msg.querySelector('#reload').addEventListener('click', () => { if (cur) { showEditor(cur, showValue(cur)); } else { location.hash = kvLink(ctx, key.replace(/[^/]*$/, '')); } });
      } catch (e2) {
        msg.innerHTML = `<span class="error">Not saved: ${esc(describe(e2))}</span>`;
      }
    });
    editBox.querySelector('#delete').addEventListener('click', async () => {
      if (!await confirmDialog(`Delete the key ${key}? This cannot be undone.`, 'Delete key')) return;
      try {
        await request('DELETE', '/kv/' + encodePath(key), { dc: ctx.dc });
        location.hash = kvLink(ctx, key.replace(/[^/]*$/, ''));
      } catch (e2) {
        editBox.querySelector('#edit-msg').innerHTML = `<span class="error">Not deleted: ${esc(describe(e2))}</span>`;
      }
    });
  }

  ctx.onStop(watch('/kv/' + encodePath(key), { dc: ctx.dc }, (r) => {
    err.innerHTML = '';
    const e = r.data && r.data[0];
    if (!e) {
      valueBox.innerHTML = `<p class="note">There is no key ${esc(key)}${base ? ' any more: it was deleted' : ''}. <a href="${esc(kvLink(ctx, key.replace(/[^/]*$/, '')))}">Back to the folder</a></p>`;
      editBox.innerHTML = '';
      base = null;
      finish();
      return;
    }
    if (dirty && base) {
      // Keep the user's edit; saving it will be refused by check-and-set.
      if (e.ModifyIndex !== base.ModifyIndex) {
        const note = valueBox.querySelector('.changed') || valueBox.appendChild(document.createElement('p'));
        note.className = 'note changed';
        note.textContent = `This key was changed elsewhere (now index ${e.ModifyIndex}) while you were editing.`;
      }
      finish();
      return;
    }
    showEditor(e, showValue(e));
    finish();
  }, (e) => {
    err.innerHTML = errorBox(e);
    finish();
  }, { notFoundOK: true }));
}
