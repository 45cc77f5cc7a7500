// The Reservations tab: the hotel's stays by check-in, filtered, loaded page by page as
// the list is scrolled; add, edit, cancel; a CSV import with the server's line numbers.
"use strict";

import { $, Pager, api, el, fillUnits, problem, t, twoStep } from "./staff-common.js";

const STATUSES = ["confirmed", "checked_in", "checked_out", "cancelled"];
const PAGE = 25;
let pager = null;
let editing = null; // the reservation the form changes; null: a new one

function fillStatuses(select, blank) {
  const chosen = select.value;
  select.replaceChildren(...(blank ? [el("option", { value: "" }, blank)] : []));
  for (const status of STATUSES) select.append(el("option", { value: status }, t(status)));
  select.value = chosen || (blank ? "" : "confirmed");
}

export function translate() {
  for (const select of document.querySelectorAll("#reservations .units")) {
    fillUnits(select, select.closest("#res-filters") ? t("any") : "");
  }
  fillStatuses(document.querySelector("#res-filters .statuses"), t("any"));
  fillStatuses(document.querySelector("#res-form .statuses"), null);
}

function query(cursor) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  for (const [key, value] of new FormData($("res-filters"))) {
    if (String(value).trim()) params.set(key, String(value).trim());
  }
  if (cursor) params.set("after", cursor);
  return params;
}

async function load(cursor, current) {
  const response = await api(`/api/staff/reservations?${query(cursor)}`);
  if (!current()) return null;
  if (!cursor) $("res-list").replaceChildren();
  if (!response.ok) {
    $("res-import-result").textContent = await problem(response);
    return null;
  }
  const page = await response.json();
  for (const stay of page.reservations) $("res-list").append(row(stay));
  $("res-empty").hidden = $("res-list").children.length > 0;
  return page.next_after;
}

function row(stay) {
  const cancel = stay.status === "cancelled" ? null : twoStep(
    el("button", { type: "button", class: "quiet" }, t("cancelStay")), t("confirmCancel"),
    async () => {
      const response = await api(`/api/staff/reservations/${stay.id}/cancel`, { method: "POST" });
      if (response.ok) await pager.reset();
      else $("res-import-result").textContent = await problem(response);
    },
  );
  return el("li", { class: `stay ${stay.status}`, dataset: { id: stay.id } },
    el("strong", { class: "name" }, stay.guest_name),
    el("span", { class: "where" },
      el("span", { class: "unit" }, stay.unit_name),
      el("span", { class: "dates" }, `${stay.check_in} → ${stay.check_out}`)),
    el("span", { class: `badge ${stay.status}` }, t(stay.status)),
    el("small", { class: "muted" }, `${stay.external_ref} · ••${stay.phone_last4}`),
    el("span", { class: "row-actions" },
      el("button", { type: "button", class: "quiet", onclick: () => edit(stay) }, t("edit")), cancel));
}

function edit(stay) {
  editing = stay;
  const form = $("res-form");
  form.reset();
  translate();
  $("res-form-title").textContent = t(stay ? "editStay" : "addStay");
  form.querySelector(".error").textContent = "";
  form.elements.external_ref.disabled = Boolean(stay);
  if (stay) {
    for (const name of ["external_ref", "unit", "guest_name", "phone_last4", "check_in", "check_out", "status"]) {
      form.elements[name].value = stay[name];
    }
  }
  form.hidden = false;
  form.elements[stay ? "guest_name" : "external_ref"].focus();
}

async function save(event) {
  event.preventDefault();
  const form = $("res-form");
  const values = Object.fromEntries(new FormData(form));
  let response;
  if (editing) {
    // Only what changed: the server checks the stay whole again.
    const changes = Object.fromEntries(Object.entries(values).filter(([k, v]) => editing[k] !== v));
    delete changes.external_ref;
    response = await api(`/api/staff/reservations/${editing.id}`, { method: "PATCH", json: changes });
  } else {
    response = await api("/api/staff/reservations", { method: "POST", json: values });
  }
  if (!response.ok) {
    form.querySelector(".error").textContent = await problem(response);
    return;
  }
  form.hidden = true;
  await pager.reset();
}

async function importCsv() {
  const input = $("res-import");
  const file = input.files[0];
  if (!file) return;
  const result = $("res-import-result");
  result.replaceChildren();
  const response = await api("/api/staff/reservations/import", {
    method: "POST", headers: { "Content-Type": "text/csv" }, body: await file.text(),
  });
  input.value = "";
  if (response.ok) {
    result.className = "ok";
    result.textContent = t("imported")(await response.json());
    await pager.reset();
    return;
  }
  // "line 3: ...; line 7: ... (nothing was imported)": one line each.
  const lines = (await problem(response)).replace(/ \(nothing was imported\)$/, "").split("; ");
  result.className = "error";
  result.append(el("p", {}, t("importFailed")), el("ul", {}, ...lines.map((line) => el("li", {}, line))));
}

let typing = null;

function setUp() {
  translate();
  pager = new Pager($("res-more"), load);
  const filters = $("res-filters");
  filters.addEventListener("change", () => pager.reset());
  filters.addEventListener("input", (event) => {
    if (event.target.name !== "name") return;
    clearTimeout(typing);
    typing = setTimeout(() => pager.reset(), 300);
  });
  filters.addEventListener("submit", (event) => { event.preventDefault(); pager.reset(); });
  $("res-add").addEventListener("click", () => edit(null));
  $("res-form").addEventListener("submit", save);
  $("res-form").querySelector(".close").addEventListener("click", () => { $("res-form").hidden = true; });
  $("res-import").addEventListener("change", importCsv);
}

export function open() {
  if (!pager) setUp();
  else translate();
  pager.reset();
}

