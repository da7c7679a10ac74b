// Capstan demo page: plain JS against the /v1 API (no build step, nothing fetched from elsewhere).
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  session: null,      // session id
  robot: "sim",       // its robot
  run: null,          // run id shown
  live: null,         // the run this page started or follows that has not ended: the one the e-stop stops
  source: null,       // EventSource of the live run
  token: sessionStorage.getItem("capstan-token") || "",  // this tab's only: it opens every door
};
$("approver").value = localStorage.getItem("capstan-approver") || "";
$("operator-token").value = sessionStorage.getItem("capstan-operator-token") || "";

function keepToken(token) {
  ui.token = token;
  if (token) sessionStorage.setItem("capstan-token", token); else sessionStorage.removeItem("capstan-token");
  $("forget-token").hidden = !token;
}
keepToken(ui.token);

function authQuery(sep) { return ui.token ? `${sep}access_token=${encodeURIComponent(ui.token)}` : ""; }

async function api(method, path, body, extraHeaders) {
  const headers = { "Content-Type": "application/json", ...(extraHeaders || {}) };
  if (ui.token) headers.Authorization = `Bearer ${ui.token}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    const t = prompt("This Capstan service needs its API token (CAPSTAN_API_TOKEN):");
    if (t) { keepToken(t); return api(method, path, body, extraHeaders); }
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
  if (!res.ok) {
    const detail = data && data.detail;
    const msg = typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => d.msg || JSON.stringify(d)).join("; ") : JSON.stringify(detail || data);
    throw new Error(`${res.status}: ${msg}`);
  }
  return data;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v) {
  const s = JSON.stringify(v, (k, x) => (typeof x === "number" ? Math.round(x * 1000) / 1000 : x));
  return s && s.length > 160 ? s.slice(0, 157) + "..." : s;
}

// ---- scene ---------------------------------------------------------------------------------
function refreshFrame() {
  if (!ui.session) return;
  $("scene-img").src = `/v1/sessions/${ui.session}/frame.png?view=${$("view").value}&t=${Date.now()}${authQuery("&")}`;
  $("scene-img").hidden = false;
  $("scene-empty").hidden = true;
}

function showState(state) {
  const body = $("state").querySelector("tbody");
  body.replaceChildren();
  if (!state || !state.objects) return;
  for (const [name, o] of Object.entries(state.objects).sort()) {
    const tr = el("tr");
    tr.dataset.name = name;
    tr.append(el("td", "", name), el("td", "", o.position.map((v) => v.toFixed(3)).join(", ")));
    body.append(tr);
  }
}

function sceneSpec() {
  const objects = $("objects").value.split(",").map((s) => s.trim()).filter(Boolean);
  const spec = { objects };
  const seed = $("seed").value;
  if (seed !== "") spec.seed = Number(seed);
  return spec;
}

function sessionReady(s) {
  ui.session = s.id;
  ui.robot = s.robot;
  sessionStorage.setItem("capstan-session", s.id);  // a reload of this tab reopens it
  loadSessions();
  $("session-id").textContent = `session ${s.id} · ${s.robot}`;
  $("reset").disabled = false;
  liveChanged();
  $("reseed").disabled = s.robot !== "sim";  // only the sim can build a scene from a seed
  $("declare").disabled = s.robot === "sim";  // a real robot's agent may take declared objects
  for (const id of ["clear-watchdog", "recover"]) $(id).disabled = s.robot === "sim";
  $("operator-row").hidden = s.robot === "sim";  // the session's robot, not the one picked for the next
  $("scene-error").hidden = true;
  showState(s.state);
  refreshFrame();
  loadRuns();
  loadSkills();
}

// The service keeps sessions (across its restarts too) until deleted or idle for a day: the page
// reopens one, or deletes it, so reloads do not use up CAPSTAN_MAX_SESSIONS.
async function loadSessions() {
  let data;
  try { data = await api("GET", "/v1/sessions"); } catch (err) { return []; }
  const select = $("sessions");
  select.replaceChildren(new Option(data.sessions.length ? "pick one…" : "none yet", ""));
  for (const s of data.sessions) {
    const when = new Date(s.created_at * 1000).toLocaleString();
    select.append(new Option(`${s.id.slice(0, 8)} · ${s.robot} · ${when}${s.busy ? " · running" : ""}`, s.id));
  }
  select.value = data.sessions.some((s) => s.id === ui.session) ? ui.session : "";
  $("delete-session").disabled = !ui.session;
  return data.sessions;
}

async function openSession(id) {
  if (!id || id === ui.session) return;
  try { sessionReady(await api("GET", `/v1/sessions/${id}`)); }
  catch (err) { sceneError(err); loadSessions(); }
}

async function deleteSession() {
  if (!ui.session || !confirm(`Delete session ${ui.session}? A run it has going is stopped; its traces stay.`)) return;
  try { await api("DELETE", `/v1/sessions/${ui.session}`); } catch (err) { return sceneError(err); }
  sessionStorage.removeItem("capstan-session");
  ui.session = null;
  $("session-id").textContent = "no session";
  for (const id of ["reset", "reseed", "declare", "clear-watchdog", "recover"]) $(id).disabled = true;
  liveChanged();
  showState(null);
  $("scene-img").hidden = true;
  $("scene-empty").hidden = false;
  loadSessions();
  loadRuns();
  loadSkills();
}

function sceneError(err) {
  $("scene-error").textContent = err.message;
  $("scene-error").hidden = false;
}

async function newSession() {
  const robot = $("robot").value;  // a remote robot's scene is whatever is on its table
  const body = robot === "sim" ? { robot, scene: sceneSpec() } : { robot };
  try { sessionReady(await api("POST", "/v1/sessions", body)); }
  catch (err) { sceneError(err); }
}

// a real robot without perception is told what is on its table (PUT /v1/sessions/{id}/objects)
async function declareObjects() {
  let objects;
  try { objects = JSON.parse($("declared").value); }
  catch (err) { return sceneError(new Error(`declared objects: not JSON (${err.message})`)); }
  try { sessionReady(await api("PUT", `/v1/sessions/${ui.session}/objects`, { objects })); }
  catch (err) { sceneError(err); }
}

function robotChosen() {
  $("declare-row").hidden = $("robot").value === "sim";
}

async function resetScene(reseed) {
  const sim = ui.robot === "sim";
  const body = !sim ? {} : reseed ? { seed: Math.floor(Math.random() * 100000) } : { scene: sceneSpec() };
  if (reseed) $("seed").value = body.seed;
  try { sessionReady(await api("POST", `/v1/sessions/${ui.session}/reset`, body)); }
  catch (err) { sceneError(err); }
}

// ---- runs ----------------------------------------------------------------------------------
function setStatus(status, error) {
  const b = $("status");
  b.textContent = status;
  b.className = `badge ${status}`;
  $("error").textContent = error ? `${error.kind}: ${error.message}${error.line ? ` (line ${error.line})` : ""}` : "";
  if (status !== "awaiting_approval") $("approval-card").hidden = true;
}

const LIVE = ["queued", "running", "awaiting_approval"];

// One live run at a time: no other starts from this page while it goes (the service would queue it
// behind), and the e-stop stays on it whichever run is shown.
function liveChanged() {
  for (const id of ["run-command", "run-code"]) $(id).disabled = !ui.session || ui.live !== null;
  $("cancel").disabled = ui.live === null;
}

// Without recorded frames (CAPSTAN_MEDIA=0) the live scene comes from frame.png, at most twice a second.
let lastFrameAt = 0;
function throttledFrame() {
  const now = Date.now();
  if (now - lastFrameAt > 500) { lastFrameAt = now; refreshFrame(); }
}

function clearRunView() {
  ui.sawFrame = false;
  for (const id of ["said", "calls", "llm"]) $(id).replaceChildren();
  $("video-card").hidden = true;
  showRehearsals([]);
  setStatus("queued", null);
}

function addCall(c) {
  const li = el("li", c.error ? "err" : "");
  const args = (c.args || []).map(fmt).join(", ");
  const out = c.error ? `✗ ${c.error.type}: ${c.error.message}` : c.result === null || c.result === undefined ? "" : `→ ${fmt(c.result)}`;
  li.textContent = `${c.name}(${args}) ${out}`;
  $("calls").append(li);
  li.scrollIntoView({ block: "nearest" });
}

// ---- approval: a program waiting for an operator before it moves the robot (CAPSTAN_APPROVAL) ----
function dryRunText(d) {
  const how = d.rejected ? `refused (${d.rejected}): ${(d.error && d.error.message) || ""}` : `ok, ${d.motions} motions`;
  const moved = d.moved && d.moved.length ? `; moved ${d.moved.join("; ")}` : "";
  const said = d.said && d.said.length ? `; said ${JSON.stringify(d.said)}` : "";
  return `candidate ${d.index} (${d.source}): ${how}${moved}${said}`;
}

function showApproval(a) {
  $("approval-attempt").textContent = a.attempt;
  $("approval-code").textContent = a.code;
  const list = $("approval-dry-runs");
  list.replaceChildren();
  if (!a.dry_runs || !a.dry_runs.length) list.append(el("li", "", "no dry run (this robot has none to rehearse on)"));
  for (const d of a.dry_runs || []) list.append(el("li", d.rejected ? "err" : "", dryRunText(d)));
  $("approval-error").hidden = true;
  $("approval-card").hidden = false;
  $("operator-row").hidden = false;  // who decides: also for a sim that requires approval
  $("approval-card").scrollIntoView({ block: "nearest" });
}

function decided(d) {
  $("approval-card").hidden = true;
  const why = d.reason ? `: ${d.reason}` : "";
  const who = d.verified ? d.by : `${d.by} (unverified)`;
  addLlm(`attempt ${d.attempt}: ${d.approved ? "approved" : "rejected"} by ${who} at ${new Date(d.at * 1000).toLocaleTimeString()}${why}`, d.approved ? "" : "err");
}

// who acts as an operator: a name (stated), or an operator's own token (proven, CAPSTAN_OPERATORS)
function operator() {
  const by = $("approver").value.trim();
  const token = $("operator-token").value.trim();  // kept for this tab only
  if (!by && !token) return null;
  if (by) localStorage.setItem("capstan-approver", by);
  sessionStorage.setItem("capstan-operator-token", token);
  // with a token the service knows the name: a remembered name of another spelling must not contradict it
  return token ? { body: {}, headers: { "X-Operator-Token": token } } : { body: { by }, headers: {} };
}

async function decide(verb) {
  const who = operator();
  if (!who) { $("approval-error").textContent = "enter your name (or your operator token) by the robot's controls: it goes into the trace"; $("approval-error").hidden = false; return; }
  const attempt = Number($("approval-attempt").textContent);  // the program shown, not whatever waits now
  const body = { attempt, reason: $("approval-reason").value.trim(), ...who.body };
  try { await api("POST", `/v1/runs/${ui.run}/${verb}`, body, who.headers); }
  catch (err) { $("approval-error").textContent = err.message; $("approval-error").hidden = false; }
}

// an operator's action on the session's robot between runs (clear-watchdog or recover)
async function robotAction(action) {
  const who = operator();
  if (!who) return sceneError(new Error("enter your name (or your operator token) first"));
  try {
    const r = await api("POST", `/v1/sessions/${ui.session}/robot/${action}`, who.body, who.headers);
    $("scene-error").hidden = true;
    addLlm(`${action} by ${r.by}`, "");
  } catch (err) { sceneError(err); }
}

function addSaid(text) { $("said").append(el("li", "", text)); }

function addLlm(text, cls) { $("llm").append(el("li", cls || "", text)); }

function handle(type, data) {
  switch (type) {
    case "status": setStatus(data.status, null); break;
    case "llm_call": addLlm(`${data.lmp || "llm"}: ${data.prompt_tokens || 0} + ${data.completion_tokens || 0} tokens, ${(data.latency_s || 0).toFixed(2)} s`); break;
    case "code":
      $("code").value = data.code || "";
      addLlm(`attempt ${data.attempt}: code generated`);
      for (const name of Object.keys(data.functions || {})) addLlm(`helper function: ${name}`, "helper");
      break;
    case "nested_lmp": addLlm(`${data.lmp}(${JSON.stringify(data.query)}) -> ${JSON.stringify(data.answer)}`, "nested"); break;
    case "candidate": addLlm(`candidate ${data.index} (${data.source}${data.seed != null ? `, seed ${data.seed}` : ""}): dry run${data.twin ? " on the twin" : ""} ${data.rejected ? `refused (${data.rejected}): ${(data.error && data.error.message) || ""}` : `ok, ${data.motions} motions`}, ${(data.seconds || 0).toFixed(2)} s`, data.rejected ? "err" : "candidate"); break;
    case "selection": addLlm(`chose candidate ${data.chosen ?? "none"} of ${data.candidates} (${data.agreeing} agree)`, "candidate"); break;
    case "approval": showApproval(data); break;
    case "decision": decided(data); break;
    case "attempt": addLlm(`attempt ${data.attempt}: ${data.ok ? "ok" : fmt(data.error)}`, data.ok ? "" : "err"); break;
    case "primitive_call": addCall(data); if (!ui.sawFrame) throttledFrame(); break;
    case "say": addSaid(data.text); break;
    case "frame": ui.sawFrame = true; $("scene-img").src = data.url + authQuery("?"); break;
    case "end": finished(data); break;
    default: break;
  }
}

// Follow a live run: its events (the past ones first) paint the view while it is the run shown.
function follow(runId) {
  if (ui.source) ui.source.close();
  ui.run = ui.live = runId;
  liveChanged();
  $("run-id").textContent = runId;
  const src = new EventSource(`/v1/runs/${runId}/events${authQuery("?")}`);
  ui.source = src;
  for (const type of ["status", "llm_call", "code", "nested_lmp", "candidate", "selection", "approval", "decision", "attempt", "primitive_call", "say", "frame", "end"]) {
    src.addEventListener(type, (ev) => {
      const e = JSON.parse(ev.data);
      $("connection").hidden = true;
      if (ui.run === runId) handle(e.type, e.data);
      if (e.type !== "end") return;
      src.close();
      if (ui.source === src) ui.source = null;
      if (ui.live === runId) { ui.live = null; liveChanged(); }
      if (ui.run !== runId) loadRuns();
    });
  }
  src.onerror = () => {
    if (ui.source !== src) return;
    $("connection").hidden = false;  // the browser tries again by itself while it is CONNECTING
    if (src.readyState !== EventSource.CLOSED) return;
    ui.source = null;  // given up (an error answer): ask once whether the run is still live
    api("GET", `/v1/runs/${runId}`).then((t) => {
      if (!LIVE.includes(t.status) && ui.live === runId) { ui.live = null; liveChanged(); }
    }).catch(() => {});
  };
}

async function finished(data) {
  setStatus(data.status, data.error);
  try {
    const trace = await api("GET", `/v1/runs/${ui.run}`);
    showTraceMedia(trace);
    showState(trace.state_after);
  } catch (err) { $("error").textContent = err.message; }
  refreshFrame();
  loadRuns();
  loadSkills();
}

function showTraceMedia(trace) {
  const m = trace.media || {};
  if (m.mp4 || m.gif) {
    $("video-card").hidden = false;
    $("video").src = m.mp4 ? m.mp4 + authQuery("?") : "";
    $("gif-link").href = m.gif || "#";
  }
  $("trace-link").href = `/v1/runs/${trace.id}`;
  showRehearsals(m.rehearsals || []);
}

// each rehearsal on a real robot's twin, filmed, beside the run's own video
function showRehearsals(list) {
  $("rehearsals").hidden = list.length === 0;
  if (list.length) $("video-card").hidden = false;
  $("rehearsal-list").replaceChildren(...list.map((r) => {
    const li = el("li", r.rejected ? "err" : "");
    const verdict = r.rejected ? `refused (${r.rejected})` : "passed";
    li.append(el("div", "", `attempt ${r.attempt}, candidate ${r.index}: ${verdict}, ${(r.seconds || 0).toFixed(2)} s`));
    if (r.gif) {
      const img = el("img");
      img.src = r.gif + authQuery("?");
      img.alt = `rehearsal of candidate ${r.index} on the twin`;
      img.width = 320;
      li.append(img);
    }
    return li;
  }));
}

async function startRun(kind) {
  if (!ui.session || ui.live) return;
  const body = kind === "command" ? { text: $("command").value.trim() } : { code: $("code").value };
  if (kind === "command" && !body.text) return;
  try {
    const r = await api("POST", `/v1/sessions/${ui.session}/${kind === "command" ? "commands" : "programs"}`, body);
    clearRunView();
    follow(r.run_id);
  } catch (err) { $("error").textContent = `not started: ${err.message}`; }  // a refusal is no run
}

async function cancelRun() {
  const target = ui.live || ui.run;
  if (!target) return;
  try { await api("POST", `/v1/runs/${target}/cancel`); }
  catch (err) { $("error").textContent = `the e-stop did not reach the service (${err.message}): use the robot's own stop`; }
}

// The list is replaced whole once its answer is in: two loads at once (a run's end, an import)
// must not both clear it, then both fill it.
async function loadSkills() {
  const list = $("skills");
  $("export-skills").disabled = !ui.session;
  if (!ui.session) return list.replaceChildren();
  let data;
  try { data = await api("GET", `/v1/sessions/${ui.session}/skills`); } catch (err) { return; }
  const items = data.skills.map((s) => {
    const box = el("details");
    box.append(el("summary", "", `${s.signature}${s.doc ? " - " + s.doc : ""} (used ${s.uses}×)`), el("pre", "", s.code));
    const item = el("li");
    item.append(box);
    return item;
  });
  list.replaceChildren(...(items.length ? items : [el("li", "empty", "none yet: helpers written for this session's commands appear here")]));
}

async function exportSkills() {
  const data = await api("GET", `/v1/sessions/${ui.session}/skills/export`);
  const link = el("a");
  link.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
  link.download = `skills-${ui.session}.json`;
  link.click();
  URL.revokeObjectURL(link.href);
}

async function importSkills(file) {
  $("skills-error").hidden = true;
  try {
    const body = JSON.parse(await file.text());
    await api("POST", `/v1/sessions/${ui.session}/skills`, body);
  } catch (err) {
    $("skills-error").textContent = err.message;
    $("skills-error").hidden = false;
  }
  $("import-skills").value = "";
  loadSkills();
}

async function loadRuns() {
  const path = ui.session ? `/v1/sessions/${ui.session}/runs` : "/v1/runs";
  let data;
  try { data = await api("GET", path); } catch (err) { return; }
  const list = $("runs");
  list.replaceChildren();
  for (const r of data.runs) {
    const li = el("li");
    li.dataset.run = r.id;
    li.append(el("span", `badge ${r.status}`, r.status), document.createTextNode(" " + (r.command || `program ${r.id.slice(0, 6)}`)));
    li.addEventListener("click", () => showRun(r.id));
    list.append(li);
  }
}

async function showRun(runId) {
  const t = await api("GET", `/v1/runs/${runId}`);
  if (LIVE.includes(t.status)) { clearRunView(); follow(runId); return; }  // its events say it all
  ui.run = runId;  // a finished run, shown; a live one goes on being followed
  $("run-id").textContent = runId;
  clearRunView();
  setStatus(t.status, t.error);
  $("command").value = t.command || "";
  $("code").value = t.code || "";
  t.llm_calls.forEach((c) => handle("llm_call", c));
  t.nested_lmp_calls.forEach((c) => handle("nested_lmp", c));
  for (const a of t.attempts) {
    (a.candidates || []).forEach((c) => handle("candidate", c));
    if (a.selection) handle("selection", a.selection);
    if (a.approval) decided({ attempt: a.attempt, ...a.approval });
    handle("attempt", a);
  }
  t.primitive_calls.forEach(addCall);
  t.said.forEach(addSaid);
  showState(t.state_after);
  showTraceMedia(t);
}

async function health() {
  try {
    const h = await fetch("/healthz").then((r) => r.json());
    const sb = h.sandbox || {};
    const seccomp = typeof sb.seccomp === "string" && sb.seccomp.startsWith("active") ? " + seccomp" : "";
    const unsafe = sb.mode === "unsafe-process";
    $("health").textContent = `v${h.version} · model ${h.llm.provider || "?"} ${h.llm.model || ""} · sandbox: ${unsafe ? "UNSAFE, no OS boundary (CAPSTAN_SANDBOX_ISOLATION=unsafe-process)" : (sb.mode || "?") + seccomp}`;
    $("health").classList.toggle("unsafe", unsafe);
    const select = $("robot");
    for (const name of (h.robots || []).filter((r) => r !== "sim")) select.append(new Option(name, name));
  } catch (err) { $("health").textContent = "service unreachable"; }
}

// A link to open in a new tab carries no token (it would stay in the address bar, the history and
// every copy of the link): with a token the file is fetched here and opened as a blob.
async function openWithToken(ev) {
  const path = ev.currentTarget.getAttribute("href");
  if (!ui.token || !path || path === "#") return;
  ev.preventDefault();
  const tab = window.open("", "_blank");  // now, while the click allows a new tab
  const res = await fetch(path, { headers: { Authorization: `Bearer ${ui.token}` } });
  if (!res.ok) { if (tab) tab.close(); $("error").textContent = `${res.status}: cannot open ${path}`; return; }
  const url = URL.createObjectURL(await res.blob());
  if (tab) tab.location = url; else window.location.assign(url);
}

for (const id of ["gif-link", "trace-link"]) $(id).addEventListener("click", openWithToken);
$("forget-token").addEventListener("click", () => keepToken(""));
$("new-session").addEventListener("click", newSession);
$("reset").addEventListener("click", () => resetScene(false));
$("declare").addEventListener("click", declareObjects);
$("clear-watchdog").addEventListener("click", () => robotAction("clear-watchdog"));
$("recover").addEventListener("click", () => robotAction("recover"));
$("robot").addEventListener("change", robotChosen);
$("reseed").addEventListener("click", () => resetScene(true));
$("view").addEventListener("change", refreshFrame);
$("command-form").addEventListener("submit", (ev) => { ev.preventDefault(); startRun("command"); });
$("run-code").addEventListener("click", () => startRun("program"));
$("cancel").addEventListener("click", cancelRun);
$("approve").addEventListener("click", () => decide("approve"));
$("reject").addEventListener("click", () => decide("reject"));
$("refresh-runs").addEventListener("click", loadRuns);
$("export-skills").addEventListener("click", () => exportSkills().catch((err) => { $("skills-error").textContent = err.message; $("skills-error").hidden = false; }));
$("import-skills").addEventListener("change", (ev) => { if (ev.target.files[0] && ui.session) importSkills(ev.target.files[0]); });
$("sessions").addEventListener("change", (ev) => openSession(ev.target.value));
$("delete-session").addEventListener("click", deleteSession);
health();
loadRuns();
loadSessions().then((kept) => {
  const last = sessionStorage.getItem("capstan-session");
  if (kept.some((s) => s.id === last)) openSession(last);
});
