"use strict";
// The moda web app: pick or record inputs, preview the face, submit, follow the job, play the result.

const token = document.querySelector('meta[name="moda-token"]').content;
const $ = (id) => document.getElementById(id);
const inputs = { image: null, audio: null };  // {blob, name} of the chosen portrait and speech
let config = null;
let faceOk = false;

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (options.method && options.method !== "GET") headers["X-Moda-Token"] = token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) throw new Error(errorText(body) || `the server answered ${response.status}`);
  return body;
}

function errorText(body) {
  if (!body || body.detail === undefined) return "";
  if (typeof body.detail === "string") return body.detail;
  return body.detail.map((d) => d.msg).join("; ");
}

function note(id, text, error = false) {
  const element = $(id);
  element.textContent = text;
  element.classList.toggle("error", error);
}

function updateButton() {
  $("generate").disabled = !(inputs.image && inputs.audio && faceOk);
}

async function setImage(blob, name) {
  inputs.image = { blob, name };
  faceOk = false;
  updateButton();
  const thumb = $("image-thumb");
  thumb.src = URL.createObjectURL(blob);
  $("image-preview").hidden = false;
  $("face-box").hidden = true;
  note("image-note", "Looking for the face…");
  const form = new FormData();
  form.append("image", blob, name);
  try {
    const face = await api("/api/face", { method: "POST", body: form });
    const [x0, y0, x1, y1] = face.box;
    Object.assign($("face-box").style, { left: `${x0 * 100}%`, top: `${y0 * 100}%`,
                                         width: `${(x1 - x0) * 100}%`, height: `${(y1 - y0) * 100}%` });
    $("face-box").hidden = false;
    faceOk = true;
    note("image-note", face.faces > 1 ? `${face.faces} faces found; the largest (boxed) will speak.` :
                                        `Face found (${face.width}×${face.height} px).`);
  } catch (error) {
    note("image-note", error.message, true);
  }
  updateButton();
}

function setAudio(blob, name) {
  inputs.audio = { blob, name };
  const player = $("audio-player");
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
  player.onloadedmetadata = () => {
    const seconds = player.duration;
    const tooLong = config && isFinite(seconds) && seconds > config.max_duration_s;
    note("audio-note", tooLong ? `${seconds.toFixed(1)} s: longer than this server's limit of ${config.max_duration_s} s.`
                               : `${name}${isFinite(seconds) ? `, ${seconds.toFixed(1)} s` : ""}`, tooLong);
  };
  note("audio-note", name);
  updateButton();
}

function dropZone(zoneId, inputId, accept) {
  const zone = $(zoneId);
  $(inputId).addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) accept(file, file.name);
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) accept(file, file.name);
  });
}

async function useExample(item) {
  const blob = await (await fetch(item.url)).blob();
  const name = item.url.split("/").pop();
  if (item.kind === "image") await setImage(blob, name); else setAudio(blob, name);
}

let recorder = null;
async function toggleRecording() {
  const button = $("record");
  if (recorder) { recorder.stop(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    note("audio-note", `No microphone: ${error.message}`, true);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  const started = Date.now();
  const timer = setInterval(() => { $("record-time").textContent = `${((Date.now() - started) / 1000).toFixed(0)} s`; }, 250);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = () => {
    clearInterval(timer);
    stream.getTracks().forEach((track) => track.stop());
    const type = recorder.mimeType || "audio/webm";
    setAudio(new Blob(chunks, { type }), type.includes("ogg") ? "recording.ogg" : "recording.webm");
    recorder = null;
    button.textContent = "● Record from the microphone";
  };
  recorder.start();
  button.textContent = "■ Stop recording";
}

function sessionJobs() { return JSON.parse(sessionStorage.getItem("moda-jobs") || "[]"); }

function rememberJob(entry) {
  const jobs = sessionJobs().filter((job) => job.id !== entry.id);
  jobs.unshift(entry);
  sessionStorage.setItem("moda-jobs", JSON.stringify(jobs.slice(0, 20)));
  showJobs();
}

function showJobs() {
  const list = $("jobs");
  list.replaceChildren();
  const jobs = sessionJobs();
  if (!jobs.length) {
    const empty = document.createElement("li");
    empty.className = "note";
    empty.textContent = "None yet.";
    list.append(empty);
  }
  for (const job of jobs) {
    const item = document.createElement("li");
    const label = `${job.time} — ${job.image} + ${job.audio}: ${job.status}`;
    if (job.status === "done") {
      const link = document.createElement("a");
      link.href = `/api/jobs/${job.id}/video`;
      link.textContent = label;
      item.append(link);
    } else {
      item.textContent = label;
    }
    list.append(item);
  }
}

function stageText(job) {
  if (job.status === "queued") return job.position ? `Queued: ${job.position} job(s) ahead…` : "Starting…";
  if (job.stage === "motion") return `Generating motion from the speech… ${Math.round(job.progress * 100)} %`;
  if (job.stage === "render") return `Rendering frames… ${Math.round(job.progress * 100)} %`;
  return "Working…";
}

async function follow(job, entry) {
  const live = $("live");
  while (true) {
    let state;
    try { state = await api(`/api/jobs/${job.id}`); } catch (error) { note("status", error.message, true); return; }
    $("progress").value = state.stage === "render" ? 0.1 + 0.9 * state.progress : 0.1 * state.progress;
    if (state.status === "done" || state.status === "failed" || state.status === "cancelled") {
      entry.status = state.status;
      rememberJob(entry);
      $("cancel").hidden = true;
      live.hidden = true;
      if (state.status === "done") {
        note("status", "Done.");
        $("progress").value = 1;
        $("result").src = state.video;
        $("result").hidden = false;
        $("download").href = state.video;
        $("download").hidden = false;
      } else {
        note("status", state.status === "cancelled" ? "Cancelled." : state.error, state.status === "failed");
      }
      return;
    }
    note("status", stageText(state));
    if (state.stage === "render") {
      live.src = `/api/jobs/${job.id}/preview?t=${Date.now()}`;
      live.hidden = false;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function submit(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("image", inputs.image.blob, inputs.image.name);
  form.append("audio", inputs.audio.blob, inputs.audio.name);
  form.append("emotion", $("emotion").value);
  form.append("seed", $("seed").value || "0");
  form.append("cfg_audio", $("cfg_audio").value);
  if (Number($("cfg_emotion").value) > 0) form.append("cfg_emotion", $("cfg_emotion").value);
  if ($("text").value.trim()) form.append("text", $("text").value);
  $("progress-panel").hidden = false;
  $("result").hidden = true;
  $("download").hidden = true;
  $("progress").value = 0;
  note("status", "Uploading…");
  let job;
  try {
    job = await api("/api/jobs", { method: "POST", body: form });
  } catch (error) {
    note("status", error.message, true);
    return;
  }
  const entry = { id: job.id, image: inputs.image.name, audio: inputs.audio.name,
                  time: new Date().toLocaleTimeString(), status: job.status };
  rememberJob(entry);
  $("cancel").hidden = false;
  $("cancel").onclick = () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).catch(() => {});
  await follow(job, entry);
}

function slider(id, format) {
  const input = $(id);
  const show = () => { $(`${id}_value`).textContent = format(Number(input.value)); };
  input.addEventListener("input", show);
  show();
}

async function start() {
  config = await api("/api/config");
  for (const emotion of config.emotions) {
    const option = document.createElement("option");
    option.textContent = emotion;
    $("emotion").append(option);
  }
  if (!config.emotions_work) note("emotion-note", "This model's emotions have little effect; the released weights have them.");
  if (!config.transcripts) for (const id of ["text", "text-label"]) $(id).hidden = true;
  $("cfg_audio").max = String(Math.min(config.max_guidance, 4));
  $("cfg_audio").value = String(config.default_cfg_audio);
  slider("cfg_audio", (value) => value.toFixed(1) + (value === config.default_cfg_audio ? " (default)" : ""));
  slider("cfg_emotion", (value) => (value > 0 ? value.toFixed(1) : "off"));
  note("limits", `Uploads up to ${config.max_upload_mb} MB; speech up to ${config.max_duration_s} s.`);
  for (const item of config.examples) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = item.name;
    button.dataset.example = item.url;
    button.addEventListener("click", () => useExample(item));
    $(item.kind === "image" ? "image-examples" : "audio-examples").append(button);
  }
  dropZone("image-drop", "image", setImage);
  dropZone("audio-drop", "audio", setAudio);
  $("record").addEventListener("click", toggleRecording);
  if (!window.MediaRecorder || !navigator.mediaDevices) $("record").hidden = true;
  $("form").addEventListener("submit", submit);
  showJobs();
}

start().catch((error) => note("status", error.message, true));
