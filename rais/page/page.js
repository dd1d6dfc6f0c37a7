// The status page: fetch status.json every POLL ms and render it. Text goes in with
// textContent only, so nothing a host reports (a probe's detail) can inject markup.
"use strict";

const POLL = 1500;
const EVENTS_SHOWN = 30;

function el(tag, cls, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  for (const child of children) {
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function row(cells, header = false) {
  // A cell is text, or [text, class].
  return el("tr", null, ...cells.map((c) => Array.isArray(c) ? el(header ? "th" : "td", c[1], c[0])
                                                       : el(header ? "th" : "td", null, c)));
}

function fill(table, head, rows) {
  table.replaceChildren(row(head, true), ...rows.map((r) => row(r)));
}

const dash = (v, f = (x) => x) => (v === null || v === undefined ? "-" : f(v));
const clock = (unix) => new Date(unix * 1000).toLocaleTimeString([], {hour12: false});
const percent = (share) => `${Math.round(share * 100)}%`;
const ms = (x) => `${x.toFixed(1)} ms`;

function rate(bps) {
  for (const unit of ["B/s", "kB/s", "MB/s"]) {
    if (bps < 1000) return `${bps.toFixed(0)} ${unit}`;
    bps /= 1000;
  }
  return `${bps.toFixed(0)} GB/s`;
}

function byHost(rows) {
  return new Map(rows.map((r) => [r.host, r]));
}

// Every host this node knows: itself, those it hears, and those only the tables name.
function hosts(doc) {
  const t = doc.tables;
  const servers = byHost(t.servers), cpu = byHost(t.cpu), net = byHost(t.network), lat = byHost(t.latency);
  const heard = new Map(doc.hosts.map((h) => [h.id, h]));
  const ids = [...new Set([doc.self, ...heard.keys(), ...servers.keys()])].sort(
    (a, b) => a.localeCompare(b, undefined, {numeric: true}));
  return ids.map((id) => {
    const h = heard.get(id), s = servers.get(id);
    const self = id === doc.self;
    const role = self ? doc.role : h ? h.role : s.role;
    const configured = self ? doc.configured_role : h ? h.configured_role : s.configured;
    const status = self ? "up" : h ? h.status : s.status;
    const c = h && h.cpu !== null ? h.cpu : cpu.has(id) ? cpu.get(id).cpu_permille / 1000 : null;
    const rx = h && h.net_rx_bps !== null ? h.net_rx_bps : net.has(id) ? net.get(id).rx_bps : null;
    const tx = h && h.net_tx_bps !== null ? h.net_tx_bps : net.has(id) ? net.get(id).tx_bps : null;
    const latency = h && h.latency_ms !== null ? h.latency_ms : lat.has(id) ? lat.get(id).rtt_us / 1000 : null;
    return {id, role, configured, status, self, address: self ? doc.address : h ? h.address : s.address,
            drained: Boolean(s && s.drained),  // the operator's `rais drain`, in the servers table
            cpu: c, rx, tx, latency, heard: self ? "this node" : h ? `${h.last_heard.toFixed(1)} s ago` : "-"};
  });
}

function quorum(doc, all) {
  if (!doc.quorum) return "off";
  // As the node counts it: a suspect host is still live; only a host down is not.
  const live = all.filter((h) => h.status !== "down").length;
  const majority = Math.floor(all.length / 2) + 1;
  return `${live >= majority ? "held" : "LOST"}: ${live} of ${all.length} live, ${majority} needed`;
}

function summary(doc, all) {
  const part = (label, value) => el("span", null, el("b", null, label), " ", value);
  const master = doc.master === doc.self ? `${doc.master} (this node)` : dash(doc.master);
  return [part("master", master), part("term", doc.term_text), part("generation",
          doc.generation + (doc.behind ? " (catching up)" : "")), part("quorum", quorum(doc, all)),
          part("cluster", pool(doc.pool)), part("this node", `${doc.self}, ${doc.role}`)];
}

// The spares, as in a RAID array: free standbys, those serving now, and the state.
function pool(p) {
  if (!p) return "-";
  const free = p.free.length ? ` (${p.free.join(", ")})` : "";
  return `${p.state}, ${p.free.length} spare${p.free.length === 1 ? "" : "s"} free${free}, ` +
         `${p.in_use.length} in use, min_spares ${p.min_spares}`;
}

function alerts(doc) {
  const said = [];
  if (!doc.master) said.push("no master: nothing is being moved");
  if (doc.duplicate_id) said.push(`another process uses this host's id (from ${doc.duplicate_id.source})`);
  const p = doc.pool;
  if (p && p.state === "degraded") said.push(`degraded: ${p.short.join("; ")}`);
  if (p && p.missing) said.push(`spares missing: ${p.free.length} free, min_spares ${p.min_spares}`);
  return said.map((text) => el("span", "alert", text));
}

function hostRows(all) {
  // A drained host may well be up, but nothing runs or is placed there: it says so beside its status.
  const status = (h) => h.drained ? [`${h.status}, drained`, `${h.status} drained`] : [h.status, h.status];
  // The role it plays, and the configured one beside it when they differ (a standby serving now).
  const role = (h) => h.configured && h.configured !== h.role ? `${h.role} (configured ${h.configured})` : h.role;
  return all.map((h) => [h.id + (h.self ? " *" : ""), [role(h), h.role === "master" ? "master" : null],
                         status(h), dash(h.cpu, percent), [dash(h.rx, rate), "wide"],
                         [dash(h.tx, rate), "wide"], dash(h.latency, ms), h.heard, [h.address, "wide"]]);
}

function service(doc, name, copies) {
  const where = copies.filter((r) => r.assigned && r.state === "running").map((r) => r.host);
  const box = el("div", "service",
    el("h3", null, `${name} `, el("small", null, where.length ? `runs on ${where.join(", ")}`
                                                              : "runs nowhere")));
  const table = el("table");
  fill(table, ["host", "assigned", "state", "probe", "latency", "detail"], copies.map((r) => [
    r.host, r.assigned ? "yes" : "no", [r.state, r.state], [r.result, r.result],
    dash(r.latency_us, (us) => ms(us / 1000)), ["" + r.detail, "text"]]));
  box.append(el("div", "scroll", table));
  const decided = [...(doc.decisions[name] || [])].reverse();  // the few the master keeps
  if (decided.length) {
    box.append(el("ol", "decisions", ...decided.map((d) => el("li", null, el("span", "dim", clock(d.at) + " "),
                                                               d.text))));
  }
  return box;
}

function services(doc) {
  const named = new Map();
  for (const r of doc.tables.services) {
    if (!named.has(r.name)) named.set(r.name, []);
    named.get(r.name).push(r);
  }
  const boxes = [...named.keys()].sort().map((name) => service(doc, name, named.get(name)));
  return boxes.length ? boxes : [el("p", "dim", "no services declared")];
}

function render(doc) {
  const all = hosts(doc);
  document.getElementById("cluster").textContent = `cluster ${doc.cluster}`;
  document.getElementById("summary").replaceChildren(...summary(doc, all));
  document.getElementById("alerts").replaceChildren(...alerts(doc));
  fill(document.getElementById("hosts"),
       ["host", "role", "status", "CPU", ["net in", "wide"], ["net out", "wide"], "latency", "last heard",
        ["address", "wide"]], hostRows(all));
  document.getElementById("services").replaceChildren(...services(doc));
  fill(document.getElementById("events"), ["time", "kind", "text"],
       (doc.events || []).slice(-EVENTS_SHOWN).reverse().map((e) => [clock(e.at), e.kind, [e.text, "text"]]));
  document.getElementById("updated").textContent = `updated ${clock(doc.at)} from node ${doc.self}`;
}

async function poll() {
  try {
    const reply = await fetch("status.json", {cache: "no-store"});
    if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
    const doc = await reply.json();
    if (doc.error) throw new Error(doc.error);  // a node still starting
    render(doc);
  } catch (e) {
    // Keep the last picture, marked stale: a node restarting is back in a moment.
    document.getElementById("alerts").replaceChildren(el("span", "alert", `cannot reach the node: ${e.message}`));
  }
  setTimeout(poll, POLL);
}

poll();
