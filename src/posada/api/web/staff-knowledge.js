// The Report and Knowledge tabs (managers and owners): what posada could not answer, with
// "add to FAQ"; the hotel's documents (upload with progress, delete) and FAQ entries.
"use strict";

import { $, Pager, api, el, fillUnits, problem, readEvents, t, twoStep, when } from "./staff-common.js";

let faqPager = null;
let faqEditing = null; // the FAQ entry the dialog changes; null: a new one
let afterSave = null;

// ---- Report ----

function group(g) {
  const added = el("span", { class: "badge ok", hidden: true }, "✓");
  const reasons = g.reasons.map((r) => t(r)).join(", ");
  return el("li", { class: "group" },
    el("strong", { class: "question" }, g.question),
    el("span", { class: "badge" }, t("count")(g.count)),
    el("small", { class: "muted" }, `${t("reasons")}: ${reasons} · ${when(g.last_asked)}${g.unit ? ` · ${g.unit}` : ""}`),
    g.rewordings.length > 0 && el("details", {},
      el("summary", {}, `${t("rewordings")} (${g.rewordings.length})`),
      el("ul", { class: "plain" }, ...g.rewordings.map((w) => el("li", {}, w)))),
    el("span", { class: "row-actions" },
      el("button", { type: "button", onclick: () => editFaq(null, { question: g.question, unit: g.unit }, () => { added.hidden = false; }) }, t("addToFaq")),
      added));
}

async function loadReport() {
  const days = $("report-filters").elements.days.value || "30";
  const response = await api(`/api/staff/reports/unanswered?days=${encodeURIComponent(days)}`);
  const list = $("report-list");
  list.replaceChildren();
  if (!response.ok) {
    list.append(el("li", { class: "error" }, await problem(response)));
    return;
  }
  const data = await response.json();
  list.append(...data.groups.map(group));
  $("report-empty").hidden = data.groups.length > 0;
}

let reportReady = false;
export function openReport() {
  if (!reportReady) {
    reportReady = true;
    setUpDialog();
    $("report-filters").addEventListener("change", loadReport);
    $("report-filters").addEventListener("submit", (e) => { e.preventDefault(); loadReport(); });
  }
  loadReport();
}

// ---- FAQ entries ----

function editFaq(entry, prefill = {}, done = null) {
  faqEditing = entry;
  afterSave = done;
  const form = $("faq-form");
  form.reset();
  fillUnits(form.elements.unit, t("wholeHotel"));
  const values = entry || prefill;
  form.elements.question.value = values.question || "";
  form.elements.answer.value = values.answer || "";
  form.elements.unit.value = values.unit || "";
  form.elements.unit.disabled = Boolean(entry); // an entry keeps its scope
  const note = form.querySelector(".note");
  // Entries from a document: a later upload of that document brings its own text back.
  note.hidden = !entry || String(entry.source || "").startsWith("staff:");
  note.textContent = t("fromDocument");
  form.querySelector(".error").textContent = "";
  $("faq-dialog").showModal();
  form.elements[values.question ? "answer" : "question"].focus();
}

async function saveFaq(event) {
  event.preventDefault();
  const form = $("faq-form");
  const body = { question: form.elements.question.value.trim(), answer: form.elements.answer.value.trim() };
  let response;
  if (faqEditing) {
    response = await api(`/api/staff/faq/${faqEditing.id}`, { method: "PUT", json: body });
  } else {
    if (form.elements.unit.value) body.unit = form.elements.unit.value;
    response = await api("/api/staff/faq", { method: "POST", json: body });
  }
  if (!response.ok) {
    form.querySelector(".error").textContent = await problem(response);
    return;
  }
  $("faq-dialog").close();
  if (afterSave) afterSave();
  if (faqPager) faqPager.reset();
}

let dialogReady = false;
function setUpDialog() {
  if (dialogReady) return;
  dialogReady = true;
  $("faq-form").addEventListener("submit", saveFaq);
  $("faq-form").querySelector(".close").addEventListener("click", () => $("faq-dialog").close());
}

function faqRow(entry) {
  const remove = twoStep(el("button", { type: "button", class: "quiet" }, t("delete")), t("confirmDelete"), async () => {
    const response = await api(`/api/staff/faq/${entry.id}`, { method: "DELETE" });
    if (response.ok) faqPager.reset();
    else $("doc-error").textContent = await problem(response);
  });
  return el("li", { class: "faq", dataset: { id: entry.id } },
    el("strong", { class: "question" }, entry.question),
    el("span", { class: "answer" }, entry.answer),
    el("small", { class: "muted" }, [entry.unit || t("wholeHotel"), entry.source].filter(Boolean).join(" · ")),
    el("span", { class: "row-actions" },
      el("button", { type: "button", class: "quiet", onclick: () => editFaq(entry) }, t("edit")), remove));
}

async function loadFaq(cursor, current) {
  const params = new URLSearchParams({ limit: "50" });
  if (cursor) params.set("after", cursor);
  const response = await api(`/api/staff/faq?${params}`);
  if (!current()) return null;
  if (!cursor) $("faq-list").replaceChildren();
  if (!response.ok) {
    $("doc-error").textContent = await problem(response);
    return null;
  }
  const data = await response.json();
  const entries = data.faqs ?? data.entries ?? data.items ?? [];
  $("faq-list").append(...entries.map(faqRow));
  $("faq-empty").hidden = $("faq-list").children.length > 0;
  return data.next_after ?? null;
}

// ---- Documents ----

function documentRow(doc) {
  const remove = doc.shared ? null : twoStep(el("button", { type: "button", class: "quiet" }, t("delete")), t("confirmDelete"), async () => {
    const response = await api(`/api/staff/documents/${doc.id}`, { method: "DELETE" });
    if (response.ok) { await loadDocuments(); faqPager.reset(); }
    else $("doc-error").textContent = await problem(response);
  });
  return el("li", { class: `document${doc.shared ? " shared" : ""}`, dataset: { id: doc.id } },
    el("strong", { class: "title" }, doc.title || doc.source),
    el("span", { class: "source" }, doc.source),
    el("small", { class: "muted" }, `${doc.unit || doc.scope} · ${doc.chunks} ${t("chunks")} · ${doc.faqs} ${t("faqs")} · ${when(doc.updated_at)}`),
    el("span", { class: "row-actions" }, remove));
}

async function loadDocuments() {
  const response = await api("/api/staff/documents");
  const list = $("doc-list");
  if (!response.ok) {
    $("doc-error").textContent = await problem(response);
    return;
  }
  const data = await response.json();
  const own = data.documents.filter((d) => !d.shared);
  const shared = data.documents.filter((d) => d.shared);
  list.replaceChildren(...own.map(documentRow));
  $("doc-shared").replaceChildren(...shared.map(documentRow));
  $("doc-empty").hidden = own.length > 0;
  $("doc-shared-box").hidden = shared.length === 0;
}

function fileLine(data) {
  return el("li", { class: data.status, dataset: { name: data.name } },
    el("span", {}, `${data.name} — ${t(data.status)}`),
    ...(data.errors || []).map((error) => el("code", { class: "error" }, error)));
}

async function upload() {
  const input = $("doc-upload");
  if (!input.files.length) return;
  const form = new FormData();
  for (const file of input.files) form.append("files", file, file.name);
  input.value = "";
  $("doc-error").textContent = "";
  const bar = $("doc-progress").querySelector("progress");
  bar.value = 0;
  $("doc-files").replaceChildren();
  $("doc-summary").textContent = "";
  $("doc-progress").hidden = false;
  const response = await api("/api/staff/documents", { method: "POST", body: form });
  if (!response.ok) {
    $("doc-progress").hidden = true;
    $("doc-error").textContent = await problem(response);
    return;
  }
  await readEvents(response, (name, data) => {
    if (name === "file") $("doc-files").append(fileLine(data));
    else if (name === "progress") bar.value = data.total ? data.done / data.total : 1;
    else if (name === "done") { bar.value = 1; $("doc-summary").textContent = t("uploaded")(data); }
    else if (name === "error") $("doc-error").textContent = data.detail;
  });
  await loadDocuments();
  faqPager.reset();
}

let knowledgeReady = false;
export function open() {
  if (!knowledgeReady) {
    knowledgeReady = true;
    setUpDialog();
    faqPager = new Pager($("faq-more"), loadFaq);
    $("doc-upload").addEventListener("change", upload);
    $("faq-add").addEventListener("click", () => editFaq(null));
  }
  $("doc-error").textContent = "";
  loadDocuments();
  faqPager.reset();
}
