// The Staff tab (owners): the hotel's accounts, added and removed.
"use strict";

import { $, api, el, problem, t, twoStep } from "./staff-common.js";

let ready = false;

export function translate() {}

function row(member) {
  const self = $("who").textContent.split(" · ")[0] === member.email;
  const remove = self ? null : twoStep(el("button", { type: "button", class: "quiet" }, t("remove")), t("confirmDelete"), async () => {
    const response = await api(`/api/staff/accounts/${encodeURIComponent(member.email)}`, { method: "DELETE" });
    if (response.ok) await load();
    else $("acc-form").querySelector(".error").textContent = await problem(response);
  });
  return el("li", { class: "member", dataset: { email: member.email } },
    el("strong", {}, member.email), el("span", { class: "badge" }, t(member.role)),
    el("span", { class: "row-actions" }, remove));
}

async function load() {
  const response = await api("/api/staff/accounts");
  if (!response.ok) {
    $("acc-form").querySelector(".error").textContent = await problem(response);
    return;
  }
  $("acc-list").replaceChildren(...(await response.json()).map(row));
}

async function add(event) {
  event.preventDefault();
  const form = $("acc-form");
  const response = await api("/api/staff/accounts", { method: "POST", json: Object.fromEntries(new FormData(form)) });
  if (!response.ok) {
    form.querySelector(".error").textContent = await problem(response);
    return;
  }
  form.reset();
  form.querySelector(".error").textContent = "";
  await load();
}

export function open() {
  if (!ready) {
    ready = true;
    $("acc-form").addEventListener("submit", add);
  }
  load();
}
