// The hotel staff's page: log in, then one tab per part of the work the role allows.
// No build step; each tab is a module of its own.
"use strict";

import { $, api, may, setLang, state, t } from "./staff-common.js";
import * as reservations from "./staff-reservations.js";
import * as conversations from "./staff-conversations.js";
import * as knowledge from "./staff-knowledge.js";
import * as accounts from "./staff-accounts.js";
import * as performance from "./staff-performance.js";

const TABS = {
  reservations,
  conversations,
  report: { open: knowledge.openReport, translate: () => {} },
  knowledge: { open: knowledge.open, translate: () => {} },
  performance,
  staff: accounts,
};
let current = null;

function translate() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("lang").value = state.lang;
  for (const tab of Object.values(TABS)) tab.translate();
}

function allowed(button) {
  return !button.dataset.role || may(button.dataset.role);
}

function openTab(name) {
  const buttons = [...document.querySelectorAll("#tabs [role=tab]")].filter(allowed);
  const button = buttons.find((b) => b.dataset.tab === name) || buttons[0];
  current = button.dataset.tab;
  for (const b of document.querySelectorAll("#tabs [role=tab]")) {
    b.setAttribute("aria-selected", String(b === button));
  }
  for (const panel of document.querySelectorAll("main > section")) panel.hidden = panel.id !== current;
  if (location.hash.slice(1) !== current) history.replaceState(null, "", `#${current}`);
  TABS[current].open();
}

async function enter(session) {
  state.csrf = session.csrf_token;
  state.role = session.role;
  state.tenant = session.tenant;
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  $("hotel").textContent = session.tenant;
  $("who").textContent = `${session.email} · ${t(session.role)}`;
  for (const b of document.querySelectorAll("#tabs [role=tab]")) b.hidden = !allowed(b);
  const units = await fetch(`/api/public/${encodeURIComponent(session.tenant)}/units`);
  state.units = units.ok ? await units.json() : [];
  conversations.listen();
  openTab(location.hash.slice(1));
}

function leave() {
  state.csrf = null;
  state.role = null;
  conversations.stop();
  for (const panel of document.querySelectorAll("main > section")) panel.hidden = true;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("hotel").textContent = "";
  $("login").hidden = false;
}
state.onLoggedOut = leave;

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const body = {
    tenant: $("login-tenant").value.trim(),
    email: $("login-email").value.trim(),
    password: $("login-password").value,
  };
  const response = await fetch("/api/staff/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  // 401 never says which part was wrong. A 429 says to wait, as the guest page does: a
  // member told "wrong password" while throttled would think they forgot it.
  if (!response.ok) {
    const said = { 401: "loginFailed", 429: "loginBusy" }[response.status];
    $("login-error").textContent = t(said || "error");
    return;
  }
  $("login-password").value = "";
  localStorage.setItem("posada:staff:tenant", body.tenant);
  await enter(await response.json());
});

$("logout").addEventListener("click", async () => {
  await api("/api/staff/logout", { method: "POST" });
  leave();
});

$("lang").addEventListener("change", () => {
  setLang($("lang").value);
  translate();
  if (state.role) {
    $("who").textContent = `${$("who").textContent.split(" · ")[0]} · ${t(state.role)}`;
    TABS[current].open(); // its rows again, in the new language
  }
});

for (const button of document.querySelectorAll("#tabs [role=tab]")) {
  button.addEventListener("click", () => openTab(button.dataset.tab));
}

translate();
$("login-tenant").value = new URLSearchParams(location.search).get("hotel")
  || localStorage.getItem("posada:staff:tenant") || "";
// A reloaded page keeps its session: the cookie is HttpOnly, so ask who it belongs to.
fetch("/api/staff/me", { credentials: "same-origin" }).then(async (response) => {
  if (response.ok) await enter(await response.json());
  else leave();
}).catch(leave);

