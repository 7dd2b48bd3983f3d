// veil review app: plain JavaScript, no dependencies, served by `veil serve`.
// The plan (GET /api/jobs/ID/plan) is the single source of truth: every edit is sent to
// the server at once (autosave, recorded in the job's history) and the plan comes back.
// Frame-exact: frame i is shown at the plan's timestamp t[i]; while paused the server's
// exact decode of frame i is shown over the video; while playing, requestVideoFrameCallback
// tells which frame the browser presents.
"use strict";

const $ = (sel) => document.querySelector(sel);
const S = {
  job: null, plan: null, version: 0, index: 0, playing: false, selected: null, merge: new Set(),
  draw: false, pending: [], drag: null, seenLast: false, low: 0.2, rel: [], byTrack: new Map(),
};
window.veilTiming = { frames: [] };  // load times of exact frames (benchmarks)

// -- server ----------------------------------------------------------------------------
function reviewer() { return ($("#reviewer").value || "reviewer").trim(); }

async function api(method, url, body) {
  const headers = { "X-Veil-Reviewer": reviewer() };
  if (method !== "GET") headers["X-Veil-CSRF"] = "1";
  const opts = { method, headers };
  if (body instanceof Blob) { opts.body = body; headers["Content-Type"] = "application/octet-stream"; }
  else if (body !== undefined) { opts.body = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  const r = await fetch(url, opts);
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).detail; } catch (e) { /* not JSON */ }
    if (Array.isArray(msg)) msg = msg.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    throw new Error(typeof msg === "string" ? msg : JSON.stringify(msg));
  }
  return r.status === 204 ? null : r.json();
}

function showError(msg) { const e = $("#error"); e.textContent = msg; e.hidden = !msg; }
function status(msg) { $("#status").textContent = msg; }

// -- jobs ------------------------------------------------------------------------------
async function loadJobs(select) {
  const jobs = await api("GET", "/api/jobs");
  const sel = $("#jobs");
  sel.innerHTML = '<option value="">— choose —</option>';
  for (const j of jobs) {
    const o = document.createElement("option");
    o.value = j.id; o.textContent = `${j.name} (${j.status})`;
    sel.appendChild(o);
  }
  if (select) sel.value = select;
}

async function upload(file) {
  showError("");
  progress(0, `uploading ${file.name}…`);
  try {
    const job = await api("POST", `/api/jobs?name=${encodeURIComponent(file.name)}`, file);
    location.hash = `job=${job.id}`;
    await loadJobs(job.id);
    follow(job.id);
  } catch (e) { progress(null); showError(`upload refused: ${e.message}`); }
}

function progress(frac, text) {
  $("#progress").hidden = frac === null;
  if (frac !== null) { $("#bar").style.width = `${Math.round(frac * 100)}%`; $("#progress-text").textContent = text; }
}

function follow(id) {
  const es = new EventSource(`/api/jobs/${id}/events`);
  es.addEventListener("progress", (ev) => {
    const p = JSON.parse(ev.data);
    const frac = p.total ? Math.min(1, p.done / p.total) : 0;
    progress(frac, `${p.stage || p.status}: ${p.done}/${p.total || "?"} frames`);
    if (["review", "exported", "failed", "interrupted"].includes(p.status)) {
      es.close();
      progress(null);
      if (p.status === "failed" || p.status === "interrupted") showError(`job ${p.status}: ${p.error || ""}`);
      openJob(id);
    }
  });
  es.onerror = () => es.close();
}

async function openJob(id) {
  showError("");
  S.job = await api("GET", `/api/jobs/${id}`);
  location.hash = `job=${id}`;
  $("#jobs").value = id;
  if (["queued", "analyzing", "exporting"].includes(S.job.status)) { follow(id); return; }
  if (S.job.plan_version < 1) { $("#review").hidden = true; return; }
  const r = await fetch(`/api/jobs/${id}/plan`);
  if (!r.ok) { showError("the plan could not be loaded"); return; }
  const same = S.plan && S.plan.input && S.job.id === S.openId;
  const at = same ? S.index : 0;
  S.openId = id;
  if (!same) { S.seenLast = S.job.kind === "image"; S.selected = null; S.merge.clear(); S.pending = []; S.firstShown = false; }
  status(S.job.status === "exported" ? "exported: ready to download" : `${S.job.status}`);
  setPlan(await r.json(), Number(r.headers.get("x-plan-version")));
  $("#review").hidden = false;
  loadJobs(id).catch(() => {});
  const video = $("#video");
  if (S.job.kind === "video") {
    video.hidden = false;
    // the media and the thumbnails load once the first exact frame is on screen
    if (!same) whenFirstFrame(() => { video.src = `/api/jobs/${id}/media`; });
  } else { video.hidden = true; video.removeAttribute("src"); }
  ["#play", "#back-second", "#prev-frame", "#next-frame", "#fwd-second", "#speed"].forEach(
    (s) => { $(s).disabled = S.job.kind !== "video"; });
  layout();
  showFrame(at);
  finishState();
}

let firstFrameWaiters = [];
function whenFirstFrame(fn) { if (S.firstShown) fn(); else firstFrameWaiters.push(fn); }
function firstFrameShown() {
  S.firstShown = true;
  const w = firstFrameWaiters; firstFrameWaiters = [];
  w.forEach((fn) => fn());
}

function setPlan(plan, version) {
  S.plan = plan; S.version = version;
  S.low = ((plan.settings || {}).detect || {}).threshold ?? 0.2;
  const t = plan.input.timestamps;
  S.rel = t.map((x) => x - t[0]);
  S.byTrack = new Map(plan.tracks.map((tr) => [tr.id, new Map(tr.frames.map((f) => [f.index, f]))]));
  if (S.selected !== null && !S.byTrack.has(S.selected)) S.selected = null;
  for (const m of [...S.merge]) if (!S.byTrack.has(m)) S.merge.delete(m);
  renderTracks(); renderTimeline();
  if (S.plan) refreshFrame();
}

// -- the player ------------------------------------------------------------------------
const frames = () => (S.plan ? S.plan.input.frames : 0);

function layout() {
  if (!S.plan) return;
  const { width: W, height: H } = S.plan.input;
  const both = $("#beforeafter").checked;
  const avail = $("#left").clientWidth / (both ? 2 : 1) - (both ? 4 : 0);
  let w = avail, h = (w * H) / W;
  const maxH = window.innerHeight * 0.62;
  if (h > maxH) { h = maxH; w = (h * W) / H; }
  for (const el of [$("#stage"), $("#after-stage")]) { el.style.width = `${w}px`; el.style.height = `${h}px`; el.style.flex = "none"; }
  const c = $("#overlay");
  c.width = Math.round(w * devicePixelRatio); c.height = Math.round(h * devicePixelRatio);
  drawOverlay();
}

function frameUrl(i, view) {
  // frames come at the size they are shown (exact in time; a 1080p JPEG costs more to send and decode)
  const side = Math.ceil(Math.max($("#stage").clientWidth, $("#stage").clientHeight) * devicePixelRatio);
  return `/api/jobs/${S.job.id}/frames/${i}.jpg?view=${view}&v=${S.version}&max_side=${side || 0}`;
}

function showFrame(i) {
  const n = frames();
  S.index = Math.max(0, Math.min(n - 1, i));
  const rel = S.rel[S.index] || 0;
  $("#frame-no").textContent = `frame ${S.index} / ${n - 1}`;
  $("#timecode").textContent = timecode(rel);
  if (!S.playing) refreshFrame();  // the video element is positioned only when playback starts
  if (S.index === n - 1 && !S.seenLast) { S.seenLast = true; finishState(); }
  drawOverlay(); placePlayhead();
}

function refreshFrame() {
  if (!S.job || S.playing) return;
  const img = $("#frame");
  const t0 = performance.now();
  const want = S.index;
  img.onload = () => {
    img.dataset.index = String(want);
    window.veilTiming.frames.push(performance.now() - t0);
    if (window.veilTiming.first === undefined) window.veilTiming.first = performance.now();  // since navigation
    if (!S.firstShown) firstFrameShown();
  };
  img.onerror = () => showError(`frame ${want} could not be shown`);
  img.hidden = false;
  const url = frameUrl(S.index, $("#preview").checked ? "anonymized" : "original");
  if (img.src.endsWith(url) && img.complete) { img.dataset.index = String(want); return refreshAfter(); }
  img.src = url;
  refreshAfter();
}

function refreshAfter() {
  const both = $("#beforeafter").checked;
  $("#after-stage").hidden = !both;
  if (both) $("#after").src = frameUrl(S.index, "anonymized");
}

function timecode(s) {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, sec = Math.floor(ms / 1000) % 60;
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}.${String(ms % 1000).padStart(3, "0")}`;
}

function indexAt(mediaTime) {
  let lo = 0, hi = S.rel.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (S.rel[mid] <= mediaTime + 1e-3) lo = mid; else hi = mid - 1; }
  return lo;
}

function play() {
  const v = $("#video");
  if (S.job.kind !== "video") return;
  if (S.playing) { v.pause(); return; }
  if (S.index >= frames() - 1) showFrame(0);
  const n = frames();
  const half = n > 1 ? Math.min(0.5 * (S.rel[1] - S.rel[0]), 0.01) : 0;
  v.currentTime = (S.rel[S.index] || 0) + half;  // start from the frame on screen
  v.playbackRate = Number($("#speed").value);
  S.playing = true;
  $("#frame").hidden = true;
  $("#play").textContent = "❚❚";
  const tick = (now, meta) => {
    if (!S.playing) return;
    showFrame(indexAt(meta.mediaTime), true);
    v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
  v.play().catch((e) => { S.playing = false; showError(`cannot play: ${e.message}`); });
}

function stopped(atEnd) {
  if (!S.playing) return;
  S.playing = false;
  $("#play").textContent = "▶";
  showFrame(atEnd ? frames() - 1 : S.index, true);
}

function step(di) { if (S.playing) $("#video").pause(); showFrame(S.index + di); }
function stepSeconds(ds) {
  const target = (S.rel[S.index] || 0) + ds;
  step(indexAt(Math.max(0, target)) - S.index);
}

// -- overlay ---------------------------------------------------------------------------
function colour(tr, f) {
  if (tr.decision === "keep") return "#30a46c";
  if (tr.source === "manual") return "#3e63dd";
  return "#e5484d";
}

function drawOverlay() {
  const c = $("#overlay"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (!S.plan) return;
  const k = c.width / S.plan.input.width;
  ctx.font = `${12 * devicePixelRatio}px system-ui`;
  for (const tr of S.plan.tracks) {
    const f = S.byTrack.get(tr.id).get(S.index);
    if (!f) continue;
    const [x1, y1, x2, y2] = f.box.map((v) => v * k);
    const low = tr.source !== "manual" && (f.score < S.low || f.interpolated);
    ctx.setLineDash(low ? [6, 4] : []);
    ctx.lineWidth = (tr.id === S.selected ? 3 : 1.5) * devicePixelRatio;
    ctx.strokeStyle = colour(tr, f);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (low) { ctx.strokeStyle = "#f5a524"; ctx.setLineDash([2, 8]); ctx.strokeRect(x1, y1, x2 - x1, y2 - y1); }
    ctx.setLineDash([]);
    ctx.fillStyle = colour(tr, f);
    ctx.fillText(`#${tr.id}${low ? " low" : ""}`, x1 + 2, Math.max(12 * devicePixelRatio, y1 - 3));
  }
  ctx.strokeStyle = "#8fb1ff"; ctx.setLineDash([4, 3]); ctx.lineWidth = 2 * devicePixelRatio;
  for (const p of S.pending) if (p.index === S.index) { const [a, b, cc, d] = p.box.map((v) => v * k); ctx.strokeRect(a, b, cc - a, d - b); }
  if (S.drag) { const [a, b, cc, d] = normBox(S.drag).map((v) => v * k); ctx.strokeRect(a, b, cc - a, d - b); }
  ctx.setLineDash([]);
}

function normBox(d) { return [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)]; }

function toFrame(ev) {
  const r = $("#overlay").getBoundingClientRect();
  return [((ev.clientX - r.left) / r.width) * S.plan.input.width, ((ev.clientY - r.top) / r.height) * S.plan.input.height];
}

// -- tracks and timeline ---------------------------------------------------------------
function trackStats(tr) {
  const fr = tr.frames;
  return { first: fr[0].index, last: fr[fr.length - 1].index, len: fr.length, low: Math.min(...fr.map((f) => f.score)) };
}

function renderTracks() {
  const box = $("#tracks");
  box.innerHTML = "";
  const tracks = [...S.plan.tracks].sort((a, b) => a.frames[0].index - b.frames[0].index || a.id - b.id);
  $("#track-count").textContent = `${tracks.length} (${tracks.filter((t) => t.decision === "anonymize").length} anonymized)`;
  for (const tr of tracks) {
    const st = trackStats(tr);
    const div = document.createElement("div");
    div.className = `track ${tr.decision} ${tr.source === "manual" ? "manual" : ""} ${tr.id === S.selected ? "selected" : ""}`;
    div.dataset.id = tr.id;
    const extra = [tr.identity ? `identity ${tr.identity}` : "", tr.distance_m != null ? `${tr.distance_m} m` : ""].filter(Boolean).join(" · ");
    div.innerHTML = `<img loading="lazy" alt="">
      <div><span class="name">#${tr.id}</span> <span class="state">${tr.decision === "keep" ? "kept" : "anonymized"}${tr.source === "manual" ? " · manual" : ""}</span>
      <div class="meta">frames ${st.first}–${st.last} (${st.len}) · lowest score ${st.low.toFixed(2)}${extra ? " · " + extra : ""}</div>
      <div class="meta reason"></div>
      <div class="actions">
        <button class="toggle">${tr.decision === "keep" ? "anonymize" : "keep"}</button>
        <button class="trim-start" title="start the track here ([)">[ start here</button>
        <button class="trim-end" title="end the track here (])">end here ]</button>
        <button class="delete">delete</button>
        <label><input type="checkbox" class="sel" ${S.merge.has(tr.id) ? "checked" : ""}> merge</label>
      </div></div>`;
    const thumb = div.querySelector("img");
    whenFirstFrame(() => { thumb.src = `/api/jobs/${S.job.id}/tracks/${tr.id}/thumb.jpg?v=${S.version}`; });
    div.querySelector(".reason").textContent = tr.reason;  // text: reasons come from people
    div.addEventListener("click", (ev) => {
      if (ev.target.closest("button, input, label")) return;
      select(tr.id); showFrame(st.first);
    });
    div.querySelector(".toggle").onclick = () => toggle(tr.id);
    div.querySelector(".trim-start").onclick = () => trim(tr.id, "start");
    div.querySelector(".trim-end").onclick = () => trim(tr.id, "end");
    div.querySelector(".delete").onclick = () => edit({ op: "delete", track: tr.id });
    div.querySelector(".sel").onchange = (ev) => { if (ev.target.checked) S.merge.add(tr.id); else S.merge.delete(tr.id); };
    box.appendChild(div);
  }
}

function renderTimeline() {
  const rows = $("#rows");
  rows.innerHTML = "";
  const n = frames();
  const pct = (i) => `${(i / n) * 100}%`;
  for (const tr of [...S.plan.tracks].sort((a, b) => a.frames[0].index - b.frames[0].index || a.id - b.id)) {
    const row = document.createElement("div");
    row.className = `row ${tr.id === S.selected ? "selected" : ""}`;
    row.dataset.id = tr.id;
    let start = tr.frames[0].index, prev = start;
    const cls = tr.decision === "keep" ? "keep" : tr.source === "manual" ? "manual" : "anonymize";
    const seg = (a, b) => { const s = document.createElement("div"); s.className = `seg ${cls}`; s.style.left = pct(a); s.style.width = pct(b - a + 1); row.appendChild(s); };
    for (const f of tr.frames.slice(1)) {
      if (f.index > prev + 1) {
        seg(start, prev);
        const g = document.createElement("div"); g.className = "gap"; g.style.left = pct(prev + 1); g.style.width = pct(f.index - prev - 1); row.appendChild(g);
        start = f.index;
      }
      prev = f.index;
    }
    seg(start, prev);
    row.onclick = (ev) => {
      const r = row.getBoundingClientRect();
      select(tr.id);
      showFrame(Math.floor(((ev.clientX - r.left) / r.width) * n));
    };
    rows.appendChild(row);
  }
  placePlayhead();
}

function placePlayhead() {
  const n = frames();
  if (!n) return;
  $("#playhead").style.left = `${((S.index + 0.5) / n) * 100}%`;
}

function select(id) {
  S.selected = id;
  document.querySelectorAll(".track, #rows .row").forEach((el) => el.classList.toggle("selected", Number(el.dataset.id) === id));
  drawOverlay();
}

// -- edits -----------------------------------------------------------------------------
async function edit(body) {
  showError("");
  try {
    const r = await api("POST", `/api/jobs/${S.job.id}/edits`, { ...body, base_version: S.version });
    setPlan(r.plan, r.version);
    status(`saved · version ${r.version}`);
    await refreshJob();
    return true;
  } catch (e) { showError(`not saved: ${e.message}`); return false; }
}

async function refreshJob() { S.job = await api("GET", `/api/jobs/${S.job.id}`); finishState(); }

function askReason(title) {
  return new Promise((resolve) => {
    const d = $("#reason-dialog");
    $("#reason-title").textContent = title;
    $("#reason").value = "";
    d.onclose = () => resolve(d.returnValue === "ok" ? $("#reason").value.trim() : null);
    d.showModal();
  });
}

async function toggle(id) {
  const tr = S.plan.tracks.find((t) => t.id === id);
  if (!tr) return;
  const to = tr.decision === "keep" ? "anonymize" : "keep";
  const reason = await askReason(`Why ${to === "keep" ? "keep track #" + id + " visible" : "anonymize track #" + id}?`);
  if (!reason) return;
  await edit({ op: "decision", track: id, decision: to, reason });
}

function trim(id, end) {
  const st = trackStats(S.plan.tracks.find((t) => t.id === id));
  edit(end === "start" ? { op: "trim", track: id, first: S.index, last: st.last } : { op: "trim", track: id, first: st.first, last: S.index });
}

async function moveHistory(step) {
  showError("");
  try {
    const r = await api("POST", `/api/jobs/${S.job.id}/${step < 0 ? "undo" : "redo"}`);
    setPlan(r.plan, r.version);
    status(`${step < 0 ? "undone" : "redone"} · version ${r.version}`);
    await refreshJob();
  } catch (e) { showError(e.message); }
}

function setDraw(on) {
  S.draw = on;
  if (on && S.playing) $("#video").pause();
  $("#stage").classList.toggle("drawing", on);
  $("#add-panel").hidden = !on;
  if (!on) { S.pending = []; S.drag = null; }
  $("#kf-count").textContent = S.pending.length;
  $("#add-from").value = S.index; $("#add-to").value = S.index;
  drawOverlay();
}

async function applyAdd() {
  if (!S.pending.length) { showError("draw a box over the face first"); return; }
  const mode = document.querySelector('input[name="mode"]:checked').value;
  const last = S.pending[S.pending.length - 1];
  let body;
  if (mode === "static") body = { op: "add", mode, keyframes: [[last.index, last.box]], first: Number($("#add-from").value), last: Number($("#add-to").value) };
  else if (mode === "follow") body = { op: "add", mode, keyframes: [[last.index, last.box]] };
  else body = { op: "add", mode, keyframes: S.pending.map((p) => [p.index, p.box]) };
  status(mode === "follow" ? "following the face…" : "adding…");
  if (await edit(body)) setDraw(false);
}

// -- leaks -----------------------------------------------------------------------------
function suspects() {
  const out = new Map();
  const add = (i, why) => out.set(i, [...(out.get(i) || []), why]);
  for (const tr of S.plan.tracks) {
    if (tr.decision !== "anonymize" || tr.source === "manual") continue;
    const fr = tr.frames;
    for (let k = 0; k < fr.length; k++) {
      if (k > 0 && fr[k].index > fr[k - 1].index + 1) add(fr[k - 1].index + 1, `gap in track #${tr.id}`);
      if (fr[k].score < S.low) add(fr[k].index, `low score in track #${tr.id}`);
    }
  }
  return out;
}

function nextLeak() {
  const all = suspects();
  const next = [...all.keys()].filter((i) => i > S.index).sort((a, b) => a - b)[0];
  if (next === undefined) { status("no gap or low score after this frame"); return; }
  step(next - S.index);
  status(`frame ${next}: ${all.get(next).join(", ")}`);
}

// -- review and export -----------------------------------------------------------------
function finishState() {
  if (!S.job) return;
  const j = S.job;
  $("#reviewed").disabled = !S.seenLast || j.reviewed_to_end || !["review", "exported"].includes(j.status);
  $("#export").disabled = !j.reviewed_to_end || j.status === "exporting";
  $("#review-state").textContent = j.reviewed_to_end
    ? `reviewed to the end by ${j.reviewed_by}` : S.seenLast ? "last frame seen: confirm the review" : "not yet reviewed to the end";
  const dl = $("#download");
  dl.hidden = !j.output_ready;
  dl.href = `/api/jobs/${j.id}/output`;
  const h = $("#history");
  h.hidden = false;
  h.href = `/api/jobs/${j.id}/bundle`;
}

async function markReviewed() {
  try {
    S.job = await api("POST", `/api/jobs/${S.job.id}/reviewed`, { to_end: true, frame: frames() - 1 });
    finishState();
  } catch (e) { showError(e.message); }
}

async function exportJob() {
  showError("");
  try {
    S.job = await api("POST", `/api/jobs/${S.job.id}/export`);
    finishState();
    follow(S.job.id);
  } catch (e) { showError(`export refused: ${e.message}`); }
}

// -- wiring ----------------------------------------------------------------------------
function wire() {
  $("#reviewer").value = localStorage.getItem("veil-reviewer") || "";
  $("#reviewer").onchange = () => localStorage.setItem("veil-reviewer", $("#reviewer").value);
  $("#file").onchange = (ev) => { if (ev.target.files[0]) upload(ev.target.files[0]); ev.target.value = ""; };
  $("#jobs").onchange = (ev) => { if (ev.target.value) openJob(ev.target.value); };
  $("#help").onclick = () => $("#legend").showModal();
  $("#play").onclick = play;
  $("#prev-frame").onclick = () => step(-1);
  $("#next-frame").onclick = () => step(1);
  $("#back-second").onclick = () => stepSeconds(-1);
  $("#fwd-second").onclick = () => stepSeconds(1);
  $("#speed").onchange = () => { $("#video").playbackRate = Number($("#speed").value); };
  $("#preview").onchange = refreshFrame;
  $("#beforeafter").onchange = () => { layout(); refreshFrame(); };
  $("#leak").onclick = nextLeak;
  $("#undo").onclick = () => moveHistory(-1);
  $("#redo").onclick = () => moveHistory(1);
  $("#merge").onclick = () => {
    if (S.merge.size < 2) { showError("tick 'merge' on two or more tracks first"); return; }
    edit({ op: "merge", tracks: [...S.merge] }).then((ok) => { if (ok) S.merge.clear(); });
  };
  $("#draw").onclick = () => setDraw(!S.draw);
  $("#add-apply").onclick = applyAdd;
  $("#add-cancel").onclick = () => setDraw(false);
  $("#reviewed").onclick = markReviewed;
  $("#export").onclick = exportJob;
  const v = $("#video");
  v.addEventListener("pause", () => stopped(false));
  v.addEventListener("ended", () => stopped(true));
  const c = $("#overlay");
  c.addEventListener("mousedown", (ev) => {
    if (!S.draw || S.playing) return;
    const [x, y] = toFrame(ev);
    S.drag = { x0: x, y0: y, x1: x, y1: y };
  });
  c.addEventListener("mousemove", (ev) => {
    if (!S.drag) return;
    [S.drag.x1, S.drag.y1] = toFrame(ev);
    drawOverlay();
  });
  window.addEventListener("mouseup", () => {
    if (!S.drag) return;
    const box = normBox(S.drag).map((v) => Math.round(v * 10) / 10);
    S.drag = null;
    if (box[2] - box[0] < 4 || box[3] - box[1] < 4) { drawOverlay(); return; }
    S.pending = S.pending.filter((p) => p.index !== S.index);
    S.pending.push({ index: S.index, box });
    S.pending.sort((a, b) => a.index - b.index);
    $("#kf-count").textContent = S.pending.length;
    $("#add-from").value = Math.min(Number($("#add-from").value), S.index);
    $("#add-to").value = Math.max(Number($("#add-to").value), S.index);
    $("#add-hint").textContent = `box on frame ${S.index}: choose how to add it`;
    drawOverlay();
  });
  window.addEventListener("resize", layout);
  document.addEventListener("keydown", onKey);
}

function onKey(ev) {
  if (ev.target.closest("input, select, textarea, dialog") || !S.plan) {
    if (ev.key === "?" && !ev.target.closest("input")) $("#legend").showModal();
    return;
  }
  const k = ev.key;
  const sel = S.selected;
  const actions = {
    " ": play, ArrowLeft: () => (ev.shiftKey ? stepSeconds(-1) : step(-1)),
    ArrowRight: () => (ev.shiftKey ? stepSeconds(1) : step(1)), Home: () => step(-S.index),
    End: () => step(frames() - 1 - S.index), n: nextLeak, N: nextLeak, d: () => setDraw(!S.draw),
    p: () => { $("#preview").checked = !$("#preview").checked; refreshFrame(); },
    b: () => { $("#beforeafter").checked = !$("#beforeafter").checked; layout(); refreshFrame(); },
    z: () => moveHistory(-1), y: () => moveHistory(1), "?": () => $("#legend").showModal(),
    k: () => sel !== null && toggle(sel), "[": () => sel !== null && trim(sel, "start"),
    "]": () => sel !== null && trim(sel, "end"), Delete: () => sel !== null && edit({ op: "delete", track: sel }),
    Escape: () => setDraw(false),
  };
  if (actions[k]) { ev.preventDefault(); actions[k](); }
}

wire();
loadJobs().then(() => {
  const m = location.hash.match(/job=(\w+)/);
  if (m) openJob(m[1]).catch((e) => showError(e.message));
}).catch((e) => showError(e.message));
