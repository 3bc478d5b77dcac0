// dcs.js: what the UI knows of the federated datacenters, shared by the
// header's selector and the federation map. It reads
// /v1/catalog/datacenters (nearest first) and /v1/coordinate/datacenters
// (WAN coordinates, for round-trip times) every two seconds, and asks each
// other datacenter one cheap question to learn whether it answers now.

import { get, describe, poll, APIError } from './api.js';

// distance is Vivaldi's round-trip estimate between two coordinates, in
// seconds (serf's formula, as Consul's API documents it).
function distance(a, b) {
  if (!a || !b || !a.Vec || !b.Vec || a.Vec.length !== b.Vec.length) return NaN;
  let sum = 0;
  for (let i = 0; i < a.Vec.length; i++) {
    const d = a.Vec[i] - b.Vec[i];
    sum += d * d;
  }
  let rtt = Math.sqrt(sum) + a.Height + b.Height;
  const adjusted = rtt + a.Adjustment + b.Adjustment;
  if (adjusted > 0) rtt = adjusted;
  return rtt;
}

// rttBetween is the median estimate between the servers of two datacenters.
export function rttBetween(as, bs) {
  const all = [];
  for (const a of as) for (const b of bs) {
    const d = distance(a.Coord, b.Coord);
    if (!Number.isNaN(d)) all.push(d);
  }
  if (!all.length) return NaN;
  all.sort((x, y) => x - y);
  return all[Math.floor(all.length / 2)];
}

export function formatRTT(sec) {
  if (Number.isNaN(sec)) return '';
  const ms = sec * 1000;
  return ms < 10 ? ms.toFixed(2) + ' ms' : ms.toFixed(0) + ' ms';
}

// state: local is this agent's datacenter; list holds, nearest first,
// {name, rtt (seconds or NaN), reachable (true, false, or null before the
// first probe), servers (their WAN coordinate entries), why}.
export const state = { local: '', list: [], coords: new Map(), error: '' };
const subscribers = new Set();
export function subscribe(fn) { subscribers.add(fn); fn(state); return () => subscribers.delete(fn); }
function publish() { for (const fn of subscribers) fn(state); }

const reach = new Map(); // dc -> {reachable, why}

async function probe(dc, signal) {
  try {
    // The critical checks: forwarded to the datacenter like every read
    // with ?dc=, and short while it is healthy.
    await get('/health/state/critical', { dc }, { signal: AbortSignal.any([signal, AbortSignal.timeout(4000)]) });
    reach.set(dc, { reachable: true, why: '' });
  } catch (e) {
    if (signal.aborted) return;
    // 503: known but no server answers; 500: no longer known at all.
    const why = e instanceof APIError ? e.message : describe(e);
    reach.set(dc, { reachable: false, why });
  }
}

async function refresh(signal) {
  try {
    const [names, coords] = await Promise.all([
      get('/catalog/datacenters', {}, { signal }),
      get('/coordinate/datacenters', {}, { signal }),
    ]);
    state.error = '';
    state.coords = new Map((coords.data || []).map((d) => [d.Datacenter, d.Coordinates || []]));
    const localServers = state.coords.get(state.local) || [];
    const others = (names.data || []).filter((dc) => dc !== state.local);
    await Promise.all(others.map((dc) => probe(dc, signal)));
    if (signal.aborted) return;
    state.list = (names.data || []).map((name) => {
      const servers = state.coords.get(name) || [];
      const r = name === state.local ? { reachable: true, why: '' } : (reach.get(name) || { reachable: null, why: '' });
      // A datacenter none of whose servers is alive in the WAN pool is cut
      // off even before a request says so.
      const reachable = name !== state.local && servers.length === 0 ? false : r.reachable;
      const why = reachable === false && !r.why ? 'no server of it is alive in the WAN pool' : r.why;
      return { name, servers, rtt: name === state.local ? 0 : rttBetween(localServers, servers), reachable, why };
    });
  } catch (e) {
    if (signal.aborted) return;
    state.error = describe(e);
  }
  publish();
}

let stop = null;
// start begins following the datacenters of the agent whose datacenter is
// local.
export function start(local) {
  state.local = local;
  if (!stop) stop = poll(2000, refresh);
}

// pause stops following them (a page put in the back-forward cache must not
// hold connections to the agent).
export function pause() {
  if (stop) stop();
  stop = null;
}
