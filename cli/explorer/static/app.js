// The explorer's page: fetch JSON from the app, render tables; charts are Vega-Lite specs
// built on the server (altair) and drawn by vega-embed. Re-renders when a block arrives.
"use strict";
const view = document.getElementById("view");
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const short = (a) => a ? esc(String(a).slice(0, 10)) + "…" : "-";
const when = (t) => t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) : "-";
const num = (x) => typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toPrecision(6)) : esc(x);

async function get(path) {
  const r = await fetch(path, {cache: "no-store"});
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function table(cols, rows) {
  const head = cols.map(([, title]) => `<th>${esc(title)}</th>`).join("");
  const body = rows.map((r) => "<tr>" + cols.map(([key, , fmt]) => `<td>${fmt ? fmt(r[key], r) : esc(r[key])}</td>`).join("") + "</tr>").join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

async function tasksPage() {
  const {tasks} = await get("/api/tasks");
  return `<h2>Tasks</h2>` + (tasks.length ? table([
    ["task_id", "task", (v) => `<a href="#/task/${v}" class="task-link" data-task="${v}">${v}</a>`],
    ["program", "program"],
    ["status", "status", (v) => `<span class="status status-${esc(v)}">${esc(v)}</span>`],
    ["note", "note", (v, r) => esc(v) + (r.reason ? ` — <span class="reason">${esc(r.reason)}</span>` : "")],
    ["committee", "seats"],
    ["reward_eth", "reward (ETH)", num],
    ["requester", "requester", short],
    ["datasets", "datasets", (v) => esc(v.join(", "))],
    ["posted_at", "posted", when],
  ], tasks) : "<p>no task yet</p>");
}

async function taskPage(id) {
  const {task: t} = await get(`/api/tasks/${id}`);
  let html = `<h2>Task ${t.task_id} <small>${esc(t.program)}</small></h2>
    <p>status <strong id="task-status" class="status-${esc(t.status)}">${esc(t.status)}</strong>: ${esc(t.note)}
    ${t.reason ? `<br>refund reason: <span class="reason" id="refund-reason">${esc(t.reason)}</span>` : ""}
    ${t.waiting ? `<br>why it waits: <span id="waiting">${esc(t.waiting)}</span>` : ""}</p>
    <ol class="timeline" id="timeline">` + t.steps.map((s) =>
      `<li class="step ${s.state}" data-step="${s.step}" data-state="${s.state}"><strong>${esc(s.label)}</strong>
       <div class="detail">${s.block !== null ? "block " + s.block + ", " + when(s.time) : ""}</div>
       <div class="detail">${esc(s.detail)}</div></li>`).join("") + `</ol>`;
  if (t.declines.length) {
    html += "<h3>Declines</h3>" + table([["seat", "seat"], ["node", "node", short], ["reason", "reason", (v) => `<span class="reason">${esc(v)}</span>`]], t.declines);
  }
  if (t.seats.length) {
    html += "<h3>Committee</h3>" + table([["i", "seat"], ["node", "node", (v) => `<span class="mono">${esc(v)}</span>`], ["draw", "draw"]],
      t.seats.map((n, i) => ({i, node: n, draw: t.draws[i] ?? "-"})));
  }
  if (t.result) {
    const r = t.result;
    html += `<h3>Result</h3><p>${esc(r.line)} · digest <span class="mono">${esc(r.digest.slice(0, 18))}…</span> · ${r.final ? "final" : "in challenge window"}</p>`;
    const cols = Object.keys(r.rows[0] || {});
    html += `<div id="result-table">` + table(cols.map((c) => [c, c || "", num]), r.rows) + `</div>`;
    if (t.chart) html += `<div class="chart" id="chart"></div>`;
  } else if (t.result_error) {
    html += `<p>${esc(t.result_error)}</p>`;
  }
  html += "<h3>Events</h3>" + table([["block", "block"], ["event", "event"], ["step", "step"], ["tx", "tx", short]], t.events);
  return [html, t.chart];
}

async function datasetsPage() {
  const {datasets} = await get("/api/datasets");
  if (!datasets.length) return "<h2>Datasets</h2><p>no dataset published</p>";
  let html = "<h2>Datasets</h2>" + table([
    ["dataset_id", "id"], ["state", "state"], ["owner", "owner", short], ["rows", "rows"],
    ["price", "price (ETH)", (v) => num(Number(v) / 1e18)], ["expiry", "expires", when],
    ["budget_kind", "budget"], ["budget_left", "left", num], ["budget", "of", num],
    ["programs", "programs", (v) => esc(v.join(", "))], ["schema_digest", "schema", short],
  ], datasets);
  for (const d of datasets) {
    html += `<h3>Privacy budget ledger of dataset ${d.dataset_id}</h3>` + (d.ledger.length ? table([
      ["task_id", "task", (v) => `<a href="#/task/${v}">${v}</a>`], ["requester", "requester", short],
      ["cost", "spent", num], ["price", "paid (ETH)", (v) => num(Number(v) / 1e18)], ["status", "task status"], ["block", "block"],
    ], d.ledger) : "<p>nothing spent yet</p>");
  }
  return html;
}

async function nodesPage() {
  const {nodes, owners} = await get("/api/nodes");
  let html = "<h2>Nodes</h2>" + table([
    ["address", "node", (v) => `<span class="mono">${esc(v)}</span>`], ["active", "active"],
    ["stake_eth", "stake (ETH)", num], ["locked_eth", "locked", num], ["slots", "slots"],
    ["seats", "seats held"], ["price_eth", "price (ETH)", num], ["capacity", "capacity"],
    ["slashes", "slashes"], ["slashed_eth", "slashed (ETH)", num],
    ["status", "live status", (v) => v ? esc(`peers ${v.peers}, head ${v.head_block}, tasks: ` +
      (Object.entries(v.tasks || {}).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(", ") || "none")) : "-"],
  ], nodes);
  if (owners.length) {
    html += "<h2>Owner agents</h2>" + table([["address", "owner", short], ["datasets", "datasets", (v) => esc(v.join(", "))],
      ["decisions", "decisions", (v) => esc(JSON.stringify(v))], ["deliveries", "deliveries", (v) => esc(JSON.stringify(v))]], owners);
  }
  return html;
}

let rendering = false, again = false;
async function render() {
  if (rendering) { again = true; return; }
  rendering = true;
  try {
    const route = location.hash.replace(/^#\/?/, "") || "tasks";
    const [page, arg] = route.split("/");
    let html, chart = null;
    if (page === "task") [html, chart] = await taskPage(arg);
    else if (page === "datasets") html = await datasetsPage();
    else if (page === "nodes") html = await nodesPage();
    else html = await tasksPage();
    view.innerHTML = html;
    view.dataset.page = page || "tasks";
    if (chart) {
      await vegaEmbed("#chart", chart, {actions: false, renderer: "svg"});
      document.getElementById("chart").dataset.rendered = "1";
    }
  } catch (e) {
    view.innerHTML = `<p class="reason">${esc(e.message)}</p>`;
  } finally {
    rendering = false;
    if (again) { again = false; render(); }
  }
}

window.addEventListener("hashchange", render);
const live = document.getElementById("live");
const source = new EventSource("/api/events");
source.addEventListener("block", (ev) => {
  document.getElementById("head").textContent = JSON.parse(ev.data).head;
  live.classList.add("on");
  render();
});
source.onerror = () => live.classList.remove("on");
render();
