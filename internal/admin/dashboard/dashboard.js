// hatcheck's dashboard: asks the node serving the page for
// /cluster/overview once a second and draws the answer. Plain JavaScript,
// no build step, nothing loaded from elsewhere.
"use strict";

(function () {
  // location.origin leaves out user:password@ (a URL that carries them
  // cannot be fetched); the browser sends the basic-auth credentials it
  // used for the page.
  const overviewURL = location.origin + "/cluster/overview";
  const refresh = 1000; // ms between the end of one request and the next
  const lagWarn = 1000; // entries behind the leader shown as lagging

  const $ = (id) => document.getElementById(id);
  let lastGood = null;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  const dash = "–";

  function seconds(s) {
    if (!s) return dash;
    if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
    return s.toFixed(2) + " s";
  }

  function bytes(n) {
    if (n === undefined || n === null) return dash;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
  }

  function count(n) {
    return n === undefined || n === null ? dash : Number(n).toLocaleString("en");
  }

  function rate(x) {
    if (x === undefined || x === null) return dash;
    return x >= 100 ? Math.round(x).toLocaleString("en") : x.toFixed(1);
  }

  function clock(t) {
    const d = new Date(t);
    return isNaN(d) ? String(t) : d.toLocaleTimeString("en-GB");
  }

  function addresses(m) {
    const td = el("td", { class: "addr" });
    if (m.redis_addr) td.append("redis " + m.redis_addr, el("br"));
    td.append("peer " + m.peer_addr);
    return td;
  }

  function memberRow(m, ov) {
    const num = (v, extra) => el("td", { class: "num" + (extra ? " " + extra : "") }, v);
    const self = m.id === ov.self ? el("span", { class: "self" }, " (this node)") : null;
    const name = el("th", { scope: "row" }, m.id, self);
    const learner = m.voter ? null : el("span", { class: "learner" }, " learner");
    if (!m.up) {
      return el("tr", { class: "down", "data-node": m.id, "data-state": "down" },
        name,
        el("td", { class: "state" }, "DOWN", learner),
        el("td", { class: "error", colspan: 11 }, "not answering: " + (m.error || "no reply")),
        addresses(m));
    }
    const load = m.load || {};
    const healthy = m.health === "ok";
    const lagging = m.lag !== undefined && m.lag > lagWarn;
    return el("tr", { class: m.role === "leader" ? "leader" : null, "data-node": m.id, "data-state": m.role },
      name,
      el("td", { class: "state" }, m.role, learner),
      el("td", { class: healthy ? "health-ok" : "health-bad" }, m.health || dash),
      num(count(m.term)),
      num(count(m.commit_index)),
      num(count(m.applied_index)),
      num(m.lag === undefined ? dash : count(m.lag), lagging ? "lagging" : null),
      num(m.load ? rate(load.ops_per_sec) : dash),
      num(m.load ? seconds(load.p50_seconds) : dash),
      num(m.load ? seconds(load.p99_seconds) : dash),
      num(bytes(m.used_memory)),
      num(count(m.keys)),
      num(m.load ? count(load.clients) : dash),
      addresses(m));
  }

  function render(ov) {
    const members = ov.members || [];
    const up = members.filter((m) => m.up).length;
    const voters = members.filter((m) => m.voter).length;
    let summary = `${members.length} members (${voters} voting), ${up} answering. `;
    summary += ov.leader_id ? `Leader ${ov.leader_id}, term ${ov.term}.` : `No leader (term ${ov.term}).`;
    summary += ` Served by ${ov.self}.`;
    $("summary").textContent = summary;
    document.title = `hatcheck: ${up}/${members.length} up` + (ov.leader_id ? `, leader ${ov.leader_id}` : ", no leader");

    $("members").tBodies[0].replaceChildren(...members.map((m) => memberRow(m, ov)));

    const events = (ov.events || []).map((e) =>
      el("li", { "data-kind": e.kind },
        el("time", { datetime: e.time }, clock(e.time)),
        el("span", { class: "node" }, e.node),
        el("span", { class: "kind kind-" + e.kind }, e.kind),
        el("span", { class: "text" }, e.text)));
    if (events.length === 0) events.push(el("li", { class: "empty" }, "No events yet."));
    $("events").replaceChildren(...events);

    const t = $("updated");
    t.textContent = clock(ov.time);
    t.setAttribute("datetime", ov.time);
  }

  function showBanner(text) {
    const b = $("banner");
    b.textContent = text;
    b.hidden = false;
    document.body.classList.add("stale");
  }

  function hideBanner() {
    $("banner").hidden = true;
    document.body.classList.remove("stale");
  }

  async function poll() {
    try {
      let r;
      try {
        r = await fetch(overviewURL, { cache: "no-store", credentials: "same-origin" });
      } catch (err) {
        throw new Error(`Cannot reach ${location.host}: ${err.message}.`);
      }
      if (!r.ok) {
        let why = `${location.host} answered ${r.status} ${r.statusText}`;
        try {
          const j = await r.json();
          if (j.error) why += `: ${j.error}`;
        } catch (_) { /* not JSON */ }
        throw new Error(why + ".");
      }
      render(await r.json());
      lastGood = new Date();
      hideBanner();
    } catch (err) {
      let text = err.message;
      if (lastGood) text += ` The figures below are from ${clock(lastGood)}.`;
      showBanner(text);
    } finally {
      setTimeout(poll, refresh);
    }
  }

  poll();
})();
