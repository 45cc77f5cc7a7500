// The Conversations tab: the hotel's conversations, most recently active first, loaded as
// the list is scrolled; one opened with its older messages loaded at the top; a live inbox
// (EventSource) marking those waiting for a person; replies, and handing back to posada.
"use strict";

import { $, Pager, api, el, fillUnits, problem, t, when } from "./staff-common.js";

const LAYERS = ["faq", "extractive", "llm", "exact", "semantic", "handoff"];
const PAGE = 25;
let pager = null;
let older = null;
let opened = null; // the open conversation's id
let events = null;
const waiting = new Set();

export function translate() {
  fillUnits(document.querySelector("#conv-filters .units"), t("any"));
  const layer = $("conv-layer");
  const chosen = layer.value;
  layer.replaceChildren(el("option", { value: "" }, t("any")), ...LAYERS.map((l) => el("option", { value: l }, l)));
  layer.value = chosen;
  $("conv-reply").elements.text.placeholder = t("send") + "…";
}

function countWaiting() {
  $("waiting-count").hidden = waiting.size === 0;
  $("waiting-count").textContent = String(waiting.size);
}

function noteHandoff(id, handoff) {
  if (handoff === "waiting") waiting.add(id);
  else waiting.delete(id);
  countWaiting();
}

function stateLabel(handoff) {
  return handoff === "waiting" ? t("waiting") : handoff === "staff" ? t("withStaff") : "";
}

function item(c) {
  noteHandoff(c.id, c.handoff);
  const last = c.last_message;
  return el("li", {
    class: `conversation${c.handoff ? ` ${c.handoff}` : ""}${c.needs_attention ? " attention" : ""}`,
    dataset: { id: c.id }, tabindex: "0", role: "button",
    onclick: () => show(c.id), onkeydown: (e) => { if (e.key === "Enter") show(c.id); },
  },
  el("strong", { class: "name" }, `${c.guest_name || "—"}${c.unit ? ` · ${c.unit}` : ""}`),
  el("span", { class: "badge state" }, stateLabel(c.handoff)),
  el("span", { class: "title" }, c.title || ""),
  el("small", { class: "last muted" }, last ? `${t(roleKey(last.role))}: ${last.content}` : ""),
  el("small", { class: "muted when" }, `${when(c.updated_at)} · ${c.messages} ${t("messages")}`));
}

const roleKey = (role) => (role === "staff" ? "staffRole" : role);

async function load(cursor, current) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  const form = $("conv-filters");
  if (form.elements.unit.value) params.set("unit", form.elements.unit.value);
  if (form.elements.layer.value) params.set("layer", form.elements.layer.value);
  if (form.elements.attention.checked) params.set("attention", "true");
  if (cursor) params.set("before", cursor);
  const response = await api(`/api/staff/conversations?${params}`);
  if (!current()) return null;
  if (!cursor) $("conv-list").replaceChildren();
  if (!response.ok) {
    $("conv-error").textContent = await problem(response);
    return null;
  }
  const page = await response.json();
  for (const c of page.conversations) $("conv-list").append(item(c));
  $("conv-empty").hidden = $("conv-list").children.length > 0;
  return page.next_before;
}

function message(m) {
  const who = m.role === "staff" ? (m.staff_email || t("staffRole")) : t(roleKey(m.role));
  const facts = [who, when(m.created_at)];
  if (m.layer) facts.push(m.layer);
  if (m.feedback === -1) facts.push("👎");
  if (m.feedback === 1) facts.push("👍");
  return el("li", { class: m.role, dataset: { id: m.id } },
    el("small", { class: "muted" }, facts.join(" · ")),
    el("span", { class: "text" }, m.content));
}

function append(m) {
  const list = $("conv-messages");
  if (list.querySelector(`li[data-id="${m.id}"]`)) return;
  const scroller = $("conv-scroll");
  const atEnd = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  list.append(message(m));
  if (atEnd) scroller.scrollTop = scroller.scrollHeight;
}

function setState(handoff) {
  $("conv-state").textContent = stateLabel(handoff);
  $("conv-state").dataset.state = handoff || "";
  $("conv-handback").hidden = !handoff;
}

// One page of the open conversation: the newest first, older ones as the top is reached.
async function loadMessages(cursor) {
  const id = opened;
  const params = new URLSearchParams({ limit: "30" });
  if (cursor) params.set("before", cursor);
  const response = await api(`/api/staff/conversations/${id}?${params}`);
  if (id !== opened) return null;
  if (!response.ok) {
    $("conv-error").textContent = await problem(response);
    return null;
  }
  const data = await response.json();
  const scroller = $("conv-scroll");
  const list = $("conv-messages");
  if (!cursor) {
    list.replaceChildren(...data.messages.map(message));
    $("conv-title").textContent = `${data.guest_name || "—"}${data.unit ? ` · ${data.unit}` : ""}`;
    setState(data.handoff);
    noteHandoff(id, data.handoff);
    scroller.scrollTop = scroller.scrollHeight;
  } else {
    // Keep what the reader was looking at in place while older messages go above it.
    const before = scroller.scrollHeight;
    list.prepend(...data.messages.filter((m) => !list.querySelector(`li[data-id="${m.id}"]`)).map(message));
    scroller.scrollTop += scroller.scrollHeight - before;
  }
  return data.next_before;
}

async function show(id) {
  opened = id;
  $("conv-error").textContent = "";
  $("conv-open").hidden = false;
  document.querySelector("#conversations .split").classList.add("reading");
  for (const li of $("conv-list").children) li.classList.toggle("open", Number(li.dataset.id) === id);
  $("conv-messages").replaceChildren();
  older.cursor = undefined;
  older.generation += 1;
  older.busy = true;
  older.cursor = await loadMessages(undefined);
  older.busy = false;
  if (older.cursor && older.visible()) older.more();
  $("conv-reply").elements.text.focus();
}

async function reply(event) {
  event.preventDefault();
  const box = $("conv-reply").elements.text;
  const text = box.value.trim();
  if (!text || !opened) return;
  const response = await api(`/api/staff/conversations/${opened}/reply`, { method: "POST", json: { text } });
  if (!response.ok) {
    $("conv-error").textContent = await problem(response);
    return;
  }
  const stored = await response.json();
  box.value = "";
  $("conv-error").textContent = "";
  append({ id: stored.id, role: "staff", content: text, created_at: stored.created_at, staff_email: $("who").textContent.split(" · ")[0] });
  setState("staff");
  noteHandoff(opened, "staff");
}

async function handBack() {
  const response = await api(`/api/staff/conversations/${opened}/handback`, { method: "POST" });
  if (!response.ok) {
    $("conv-error").textContent = await problem(response);
    return;
  }
  setState(null);
  noteHandoff(opened, null);
  const li = $("conv-list").querySelector(`li[data-id="${opened}"]`);
  if (li) li.classList.remove("waiting", "staff");
}

// A live event: the conversation moves to the top of the list, marked as it now is.
async function onEvent(data) {
  noteHandoff(data.id, data.handoff);
  if (data.id === opened) {
    setState(data.handoff);
    if (data.message) append(data.message);
  }
  const list = $("conv-list");
  let li = list.querySelector(`li[data-id="${data.id}"]`);
  if (!li) {
    // A filtered list shows only what its filters give; the waiting count still moved.
    const form = $("conv-filters");
    if (form.elements.unit.value || form.elements.layer.value || form.elements.attention.checked) return;
    const response = await api(`/api/staff/conversations/${data.id}?limit=1`);
    if (!response.ok) return;
    const c = await response.json();
    li = item({ ...c, title: c.messages[0]?.content, messages: "", updated_at: new Date().toISOString() });
  }
  li.classList.remove("waiting", "staff");
  if (data.handoff) li.classList.add(data.handoff);
  li.querySelector(".state").textContent = stateLabel(data.handoff);
  if (data.message) {
    li.querySelector(".last").textContent = `${t(roleKey(data.message.role))}: ${data.message.content}`;
    li.querySelector(".when").textContent = when(data.message.created_at);
  }
  list.prepend(li);
  $("conv-empty").hidden = true;
}

export function listen() {
  stop();
  events = new EventSource("/api/staff/events");
  events.addEventListener("conversation", (e) => onEvent(JSON.parse(e.data)));
}

export function stop() {
  if (events) events.close();
  events = null;
  waiting.clear();
  countWaiting();
}

function setUp() {
  translate();
  pager = new Pager($("conv-more"), load);
  older = new Pager($("conv-older"), (cursor) => (cursor ? loadMessages(cursor) : Promise.resolve(null)), $("conv-scroll"));
  older.cursor = null;
  $("conv-filters").addEventListener("change", () => pager.reset());
  $("conv-reply").addEventListener("submit", reply);
  $("conv-reply").elements.text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("conv-reply").requestSubmit(); }
  });
  $("conv-handback").addEventListener("click", handBack);
  $("conv-back").addEventListener("click", () => {
    opened = null;
    $("conv-open").hidden = true;
    document.querySelector("#conversations .split").classList.remove("reading");
  });
}

export function open() {
  if (!pager) setUp();
  else translate();
  pager.reset();
}
