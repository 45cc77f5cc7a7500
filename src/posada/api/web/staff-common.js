// What every tab of the staff page shares: labels, the session, requests, lists that
// load their next page as they are scrolled, and a reader of Server-Sent Events.
"use strict";

export const TEXT = {
  es: {
    title: "posada ·", hotelSlug: "Hotel (identificador)", email: "Correo", password: "Contraseña",
    enter: "Entrar", logout: "Salir",
    loginFailed: "Hotel, correo o contraseña incorrectos.",
    loginBusy: "Demasiados intentos: espera unos minutos y vuelve a intentarlo.",
    reservations: "Reservas", conversations: "Conversaciones", report: "Sin respuesta",
    knowledge: "Conocimiento", staff: "Personal",
    stayFrom: "Desde", stayTo: "Hasta", unit: "Unidad", status: "Estado", guestName: "Huésped",
    any: "Todas", addStay: "Nueva reserva", editStay: "Editar reserva", importCsv: "Importar CSV",
    ref: "Referencia", phone4: "Últimos 4 dígitos", checkIn: "Llegada", checkOut: "Salida",
    save: "Guardar", close: "Cerrar", edit: "Editar", cancelStay: "Cancelar reserva",
    confirmCancel: "¿Cancelar? Pulsa otra vez", none: "Nada por aquí.",
    confirmed: "confirmada", checked_in: "alojado", checked_out: "se fue", cancelled: "cancelada",
    imported: (r) => `Importadas: ${r.inserted} nuevas, ${r.updated} actualizadas.`,
    importFailed: "No se importó nada:",
    layer: "Capa", attention: "Requiere atención", back: "← Volver", handBack: "Devolver a posada",
    send: "Enviar", waiting: "esperando", withStaff: "con recepción", messages: "mensajes",
    guest: "Huésped", assistant: "posada", staffRole: "Recepción", notice: "Aviso",
    days: "Últimos días", count: (n) => (n === 1 ? "1 vez" : `${n} veces`), reasons: "Motivo", declined: "sin información",
    unhelpful: "marcada inútil", rewordings: "Otras formas", addToFaq: "Añadir a FAQ",
    documents: "Documentos", sharedDocs: "Documentos de turismo compartidos (solo lectura)", upload: "Subir .md o .zip", chunks: "fragmentos", faqs: "FAQ",
    delete: "Eliminar", confirmDelete: "¿Eliminar? Pulsa otra vez", parsed: "leído", failed: "falló",
    uploaded: (d) => `Guardado: ${d.documents} documentos, ${d.chunks} fragmentos, ${d.faqs} FAQ; fallaron ${d.failed.length}.`,
    faq: "Preguntas frecuentes", addFaq: "Nueva pregunta", faqEntry: "Pregunta frecuente",
    question: "Pregunta", answer: "Respuesta", unitOptional: "Unidad (vacío: todo el hotel)",
    wholeHotel: "Todo el hotel", fromDocument: "Viene de un documento: al volver a subirlo se restaura su versión.",
    role: "Rol", reception: "Recepción", manager: "Gerencia", owner: "Propietario",
    addMember: "Añadir cuenta", remove: "Quitar", error: "Algo salió mal; inténtalo de nuevo.",
    // The Performance and cost tab (staff-performance.js).
    performance: "Rendimiento y coste", perfWindow: "Periodo", lastHour: "Última hora",
    lastDay: "Último día", lastWeek: "Última semana", costMonth: "Mes de costes",
    latencyByRoute: "Tiempos de respuesta por ruta", route: "Ruta", requestsShort: "Peticiones",
    errorsShort: "Errores", noTraffic: "Sin peticiones en este periodo.",
    requests: (n) => (n === 1 ? "1 petición" : `${n} peticiones`),
    slowestRoutes: "Rutas más lentas (P95)", answersByLayer: "Respuestas por capa",
    cacheShare: (share, n) => `Desde caché o FAQ, sin llamar a un LLM: ${share} de ${n === 1 ? "1 respuesta" : `${n} respuestas`}.`,
    noAnswers: "Sin respuestas en este periodo.", answersAxis: "respuestas",
    answersN: (n) => (n === 1 ? "1 respuesta" : `${n} respuestas`),
    layer_exact: "caché exacta", layer_semantic: "caché semántica", layer_faq: "FAQ",
    layer_llm: "LLM", layer_extractive: "extracto", layer_handoff: "recepción", layer_public: "público",
    lookups: (layer, rate, n) => `${layer}: ${rate} de aciertos en ${n === 1 ? "1 búsqueda" : `${n} búsquedas`}`,
    spendMonth: "Gasto del mes", spendPerDay: "Gasto por día", callsPerDay: "Llamadas LLM por día", perDayTable: "Día a día",
    spentSoFar: (month, spent, projected) => (projected === null ? `${month}: gastado ${spent}.`
      : `${month}: gastado hasta hoy ${spent}; al ritmo actual el mes cerrará en ${projected}.`),
    spentToDate: "acumulado", projection: "proyección", dayOfMonth: "día del mes",
    day: "Día", llmCalls: "Llamadas LLM", tokens: "Tokens", llmSpend: "LLM", embeddingSpend: "Embeddings",
    llmCallsN: (n) => (n === 1 ? "1 llamada LLM" : `${n} llamadas LLM`), tokensN: (n) => `${n} tokens`,
    budget: "Presupuesto", budgetPerDay: "presupuesto/día", monthlyUsd: "Presupuesto mensual (USD)",
    overAction: "Al superarlo", action_continue: "seguir igual", action_small_only: "solo el modelo pequeño",
    action_no_llm: "sin LLM (FAQ, cachés y extractos)", budgetClear: "Quitar el presupuesto del hotel",
    noBudget: "Sin presupuesto mensual.",
    budgetLine: (budget, spent, projected, ratio, action, fromDefault) =>
      `${budget} al mes${fromDefault ? " (por defecto)" : ""}: gastado ${spent}, proyectado ${projected} (${ratio}). Al superarlo: ${action}.`,
  },
  en: {
    title: "posada ·", hotelSlug: "Hotel (identifier)", email: "E-mail", password: "Password",
    enter: "Log in", logout: "Log out",
    loginFailed: "Wrong hotel, e-mail or password.",
    loginBusy: "Too many tries: wait a few minutes and try again.",
    reservations: "Reservations", conversations: "Conversations", report: "Unanswered",
    knowledge: "Knowledge", staff: "Staff",
    stayFrom: "From", stayTo: "To", unit: "Unit", status: "Status", guestName: "Guest",
    any: "All", addStay: "New reservation", editStay: "Edit reservation", importCsv: "Import CSV",
    ref: "Reference", phone4: "Last 4 digits", checkIn: "Check-in", checkOut: "Check-out",
    save: "Save", close: "Close", edit: "Edit", cancelStay: "Cancel stay",
    confirmCancel: "Cancel? Press again", none: "Nothing here.",
    confirmed: "confirmed", checked_in: "checked in", checked_out: "checked out", cancelled: "cancelled",
    imported: (r) => `Imported: ${r.inserted} new, ${r.updated} updated.`,
    importFailed: "Nothing was imported:",
    layer: "Layer", attention: "Needs attention", back: "← Back", handBack: "Hand back to posada",
    send: "Send", waiting: "waiting", withStaff: "with reception", messages: "messages",
    guest: "Guest", assistant: "posada", staffRole: "Reception", notice: "Notice",
    days: "Last days", count: (n) => (n === 1 ? "once" : `${n} times`), reasons: "Why", declined: "no information",
    unhelpful: "marked unhelpful", rewordings: "Other wordings", addToFaq: "Add to FAQ",
    documents: "Documents", sharedDocs: "Shared tourism documents (read-only)", upload: "Upload .md or .zip", chunks: "chunks", faqs: "FAQ",
    delete: "Delete", confirmDelete: "Delete? Press again", parsed: "read", failed: "failed",
    uploaded: (d) => `Stored: ${d.documents} documents, ${d.chunks} chunks, ${d.faqs} FAQ; ${d.failed.length} failed.`,
    faq: "Frequent questions", addFaq: "New question", faqEntry: "Frequent question",
    question: "Question", answer: "Answer", unitOptional: "Unit (empty: the whole hotel)",
    wholeHotel: "Whole hotel", fromDocument: "From a document: uploading it again restores the file's version.",
    role: "Role", reception: "Reception", manager: "Manager", owner: "Owner",
    addMember: "Add account", remove: "Remove", error: "Something went wrong; please try again.",
    // The Performance and cost tab (staff-performance.js).
    performance: "Performance and cost", perfWindow: "Window", lastHour: "Last hour",
    lastDay: "Last day", lastWeek: "Last week", costMonth: "Cost month",
    latencyByRoute: "Response times by route", route: "Route", requestsShort: "Requests",
    errorsShort: "Errors", noTraffic: "No requests in this window.",
    requests: (n) => (n === 1 ? "1 request" : `${n} requests`),
    slowestRoutes: "Slowest routes (P95)", answersByLayer: "Answers by layer",
    cacheShare: (share, n) => `From cache or FAQ, with no LLM call: ${share} of ${n === 1 ? "1 answer" : `${n} answers`}.`,
    noAnswers: "No answers in this window.", answersAxis: "answers",
    answersN: (n) => (n === 1 ? "1 answer" : `${n} answers`),
    layer_exact: "exact cache", layer_semantic: "semantic cache", layer_faq: "FAQ",
    layer_llm: "LLM", layer_extractive: "extract", layer_handoff: "reception", layer_public: "public",
    lookups: (layer, rate, n) => `${layer}: ${rate} hits in ${n === 1 ? "1 lookup" : `${n} lookups`}`,
    spendMonth: "The month's spend", spendPerDay: "Spend per day", callsPerDay: "LLM calls per day", perDayTable: "Day by day",
    spentSoFar: (month, spent, projected) => (projected === null ? `${month}: spent ${spent}.`
      : `${month}: spent so far ${spent}; at this pace the month ends at ${projected}.`),
    spentToDate: "to date", projection: "projection", dayOfMonth: "day of the month",
    day: "Day", llmCalls: "LLM calls", tokens: "Tokens", llmSpend: "LLM", embeddingSpend: "Embeddings",
    llmCallsN: (n) => (n === 1 ? "1 LLM call" : `${n} LLM calls`), tokensN: (n) => `${n} tokens`,
    budget: "Budget", budgetPerDay: "budget/day", monthlyUsd: "Monthly budget (USD)",
    overAction: "Once over it", action_continue: "keep going", action_small_only: "small model only",
    action_no_llm: "no LLM (FAQ, caches and extracts)", budgetClear: "Remove the hotel's budget",
    noBudget: "No monthly budget.",
    budgetLine: (budget, spent, projected, ratio, action, fromDefault) =>
      `${budget} a month${fromDefault ? " (the default)" : ""}: spent ${spent}, projected ${projected} (${ratio}). Once over it: ${action}.`,
  },
};

const LANG_KEY = "posada:staff:lang";
const preferred = [localStorage.getItem(LANG_KEY), ...(navigator.languages || [navigator.language])];
export const state = {
  lang: preferred.map((code) => (code || "").slice(0, 2).toLowerCase()).find((code) => TEXT[code]) || "es",
  csrf: null, role: null, tenant: null, units: [],
  onLoggedOut: () => {},
};
export const t = (key) => TEXT[state.lang][key] ?? key;
export const $ = (id) => document.getElementById(id);

export function setLang(lang) {
  state.lang = lang;
  localStorage.setItem(LANG_KEY, lang);
}

// A small element builder: el("li", {class: "x", onclick: f}, "text", child).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

const ROLES = ["reception", "manager", "owner"];
export const may = (role) => ROLES.indexOf(state.role) >= ROLES.indexOf(role);

// Every request: same-origin cookie; the CSRF token on every change; a lost session (401)
// sends the page back to the login form.
export async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET") init.headers["X-CSRF-Token"] = state.csrf || "";
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) init.body = body;
  const response = await fetch(path, init);
  if (response.status === 401 && state.csrf) state.onLoggedOut();
  return response;
}

// The server's words for a refused request ("line 3: unknown unit ...", field errors).
export async function problem(response) {
  try {
    const data = await response.json();
    if (Array.isArray(data.errors) && data.errors.length) {
      return data.errors.map((e) => `${e.field}: ${e.error}`).join("\n");
    }
    if (typeof data.detail === "string") return data.detail;
  } catch { /* not JSON */ }
  return t("error");
}

export function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return date.toLocaleString(state.lang, { dateStyle: "short", timeStyle: "short" });
}

export function fillUnits(select, blank) {
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, blank));
  for (const unit of state.units) select.append(el("option", { value: unit.slug }, unit.name));
  select.value = chosen;
}

// A list that fetches its next page when its sentinel comes into view. `load(cursor,
// current)` adds rows and returns the next cursor, or null at the end; `current()` turns
// false once the list was started again meanwhile (its rows are then not wanted).
export class Pager {
  constructor(sentinel, load, root = null) {
    this.sentinel = sentinel;
    this.load = load;
    this.root = root;
    this.cursor = undefined;
    this.busy = false;
    this.generation = 0;
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.more();
    }, { root, rootMargin: "200px" });
    this.observer.observe(sentinel);
  }

  // Start again from the first page (filters changed, tab opened).
  async reset() {
    this.generation += 1;
    this.cursor = undefined;
    this.busy = false;
    await this.more();
  }

  async more() {
    if (this.busy || this.cursor === null) return;
    this.busy = true;
    const generation = this.generation;
    try {
      const next = await this.load(this.cursor, () => generation === this.generation);
      if (generation !== this.generation) return;
      this.cursor = next;
    } finally {
      if (generation === this.generation) this.busy = false;
    }
    // Still in view after a short page: the observer fires only on a change, so ask again.
    if (this.cursor !== null && this.visible()) await this.more();
  }

  visible() {
    const box = this.sentinel.getBoundingClientRect();
    if (box.width + box.height === 0) return false; // its tab is hidden
    const area = this.root ? this.root.getBoundingClientRect() : { top: 0, bottom: innerHeight };
    return box.top < area.bottom + 200 && box.bottom > area.top - 200;
  }
}

export { readEvents } from "./sse.js";

// Buttons that act on a second press (no browser dialog: it blocks the page).
export function twoStep(button, confirmLabel, action) {
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.dataset.label = button.textContent;
      button.textContent = confirmLabel;
      button.classList.add("danger");
      setTimeout(() => {
        armed = false;
        button.textContent = button.dataset.label;
        button.classList.remove("danger");
      }, 4000);
      return;
    }
    armed = false;
    button.disabled = true;
    try { await action(); } finally { button.disabled = false; }
  });
  return button;
}
