// The Performance and cost tab (managers and owners): P50/P95/P99 per route over the last
// hour, day or week, the slowest routes, answers by layer and the cache-and-FAQ share,
// the month's spend per day against the budget, and the budget form (owners).
"use strict";

import { $, TEXT, api, el, may, problem, state, t } from "./staff-common.js";
import { barChart, columnChart, seriesChart } from "./charts.js";

const CACHED = ["exact", "semantic", "faq"];
let ready = false;
let shown = { performance: null, costs: null, budget: null };
const asked = { performance: 0, costs: 0, budget: 0 }; // each part's newest load: older answers are dropped

const number = (value, digits = 0) =>
  new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits }).format(value);

export function ms(value) {
  if (value >= 1000) return `${number(value / 1000, 2)} s`;
  return `${number(value, value < 10 ? 1 : 0)} ms`;
}

// Under a dollar, three significant digits: a day of cached answers costs $0.0000312.
export function usd(value) {
  const digits = value >= 1 ? { maximumFractionDigits: 2 } : { maximumSignificantDigits: 3 };
  return new Intl.NumberFormat(state.lang, {
    style: "currency", currency: "USD", minimumFractionDigits: 0, ...digits,
  }).format(value);
}

// A layer this page has no word for shows by its own name.
const layerName = (layer) => (TEXT[state.lang][`layer_${layer}`] ? t(`layer_${layer}`) : layer);
const percent = (ratio) => `${number(ratio * 100, 0)}%`;
const widthOf = (id) => $(id).clientWidth;
const dayLabel = (day) => String(Number(day.slice(8, 10)));
const dayTitle = (day) =>
  new Date(`${day}T12:00:00Z`).toLocaleDateString(state.lang, { day: "numeric", month: "short", timeZone: "UTC" });

function thisMonth() {
  return new Date().toISOString().slice(0, 7);
}

function routesTable(routes) {
  $("perf-routes").tBodies[0].replaceChildren(...routes.map((r) =>
    el("tr", { dataset: { route: r.route } },
      el("td", { class: "route" }, r.route),
      el("td", {}, number(r.requests)),
      el("td", { class: "p50" }, ms(r.p50_ms)),
      el("td", { class: "p95" }, ms(r.p95_ms)),
      el("td", { class: "p99" }, ms(r.p99_ms)),
      el("td", { class: r.errors ? "error" : "" }, number(r.errors)))));
  $("perf-routes").hidden = routes.length === 0;
  $("perf-routes-empty").hidden = routes.length > 0;
}

function drawPerformance(data) {
  routesTable(data.routes);
  const slowest = data.slowest.map((r) => ({
    label: r.route, value: r.p95_ms,
    title: `${r.route}: P50 ${ms(r.p50_ms)} · P95 ${ms(r.p95_ms)} · P99 ${ms(r.p99_ms)} · ${t("requests")(r.requests)}`,
  }));
  $("chart-slowest").replaceChildren(slowest.length
    ? barChart({ items: slowest, width: widthOf("chart-slowest"), format: ms, label: t("slowestRoutes"), axis: "P95" })
    : el("p", { class: "muted" }, t("noTraffic")));
  const total = data.answers_total;
  $("perf-share").textContent = total
    ? t("cacheShare")(percent(data.cache_faq_share ?? 0), total)
    : t("noAnswers");
  const layers = data.answers.map((a) => ({
    label: layerName(a.layer), value: a.answers, className: CACHED.includes(a.layer) ? "cached" : "",
    title: `${layerName(a.layer)}: ${t("answersN")(a.answers)} (${percent(total ? a.answers / total : 0)})`,
  }));
  $("chart-layers").replaceChildren(layers.length
    ? barChart({ items: layers, width: widthOf("chart-layers"), format: (v) => number(v), label: t("answersByLayer"), axis: t("answersAxis"), whole: true })
    : "");
  $("perf-lookups").replaceChildren(...data.layers.map((l) =>
    el("li", {}, t("lookups")(layerName(l.layer), percent(l.hit_rate ?? 0), l.hits + l.misses))));
}

function drawCosts(costs, budget) {
  const days = costs.days;
  const size = costs.projection.days_in_month;
  const labels = Array.from({ length: size }, (_, k) => String(k + 1));
  const monthly = budget && budget.monthly_usd;
  const p = costs.projection;
  const month = new Date(`${costs.month}-15T12:00:00Z`).toLocaleDateString(state.lang, { month: "long", year: "numeric", timeZone: "UTC" });
  $("cost-summary").textContent = t("spentSoFar")(month, usd(p.spent_usd), p.finished ? null : usd(p.projected_usd));
  let running = 0;
  const spent = labels.map((_, k) => (k < days.length ? (running += days[k].spend_usd) : null));
  const series = [{ name: t("spentToDate"), values: spent, className: "spent" }];
  if (!p.finished && days.length && days.length < size) {
    const last = days.length - 1;
    const step = (p.projected_usd - spent[last]) / (size - 1 - last);
    series.push({
      name: t("projection"), className: "projected", dashed: true,
      values: labels.map((_, k) => (k < last ? null : spent[last] + step * (k - last))),
    });
  }
  const lines = monthly ? [{ value: monthly, label: t("budget"), className: "budget" }] : [];
  $("chart-spend").replaceChildren(seriesChart({
    labels, series, lines, width: widthOf("chart-spend"), format: usd, label: t("spendMonth"), axis: t("dayOfMonth"),
  }));
  const perDay = monthly ? [{ value: monthly / size, label: t("budgetPerDay"), className: "budget" }] : [];
  $("chart-days").replaceChildren(columnChart({
    labels: days.map((d) => dayLabel(d.day)), values: days.map((d) => d.spend_usd), lines: perDay,
    titles: days.map((d) => `${dayTitle(d.day)}: ${usd(d.spend_usd)} · ${t("llmCallsN")(d.llm_calls)} · ${t("tokensN")(number(d.input_tokens + d.output_tokens))}`),
    width: widthOf("chart-days"), format: usd, label: t("spendPerDay"), axis: t("dayOfMonth"),
  }));
  $("chart-calls").replaceChildren(columnChart({
    labels: days.map((d) => dayLabel(d.day)), values: days.map((d) => d.llm_calls), whole: true,
    titles: days.map((d) => `${dayTitle(d.day)}: ${t("llmCallsN")(d.llm_calls)} · ${usd(d.llm_usd)}`),
    width: widthOf("chart-calls"), height: 160, format: (v) => number(v), label: t("callsPerDay"), axis: t("dayOfMonth"),
  }));
  $("cost-days").tBodies[0].replaceChildren(...days.map((d) => el("tr", {},
    el("td", {}, dayTitle(d.day)), el("td", {}, number(d.llm_calls)),
    el("td", {}, number(d.input_tokens + d.output_tokens)), el("td", {}, usd(d.llm_usd)),
    el("td", {}, usd(d.embedding_usd)))));
}

function drawBudget(budget) {
  const status = $("budget-status");
  status.classList.toggle("warning", Boolean(budget.warning));
  status.classList.toggle("over", Boolean(budget.over));
  status.textContent = budget.monthly_usd === null
    ? t("noBudget")
    : t("budgetLine")(usd(budget.monthly_usd), usd(budget.spent_usd), usd(budget.projected_usd),
      percent(budget.ratio ?? 0), t(`action_${budget.action}`), budget.source === "default");
  const form = $("budget-form");
  form.hidden = !may("owner");
  if (document.activeElement?.form !== form) {
    form.elements.monthly_usd.value = budget.source === "hotel" ? budget.monthly_usd : "";
    form.elements.action.value = budget.action;
  }
}

// Everything again from what was last fetched (a language change, a new width).
function redraw() {
  const { performance, costs, budget } = shown;
  if ($("performance").hidden) return;
  if (performance) drawPerformance(performance);
  if (costs) drawCosts(costs, budget);
  if (budget) drawBudget(budget);
}

async function fetchJson(path) {
  const response = await api(path);
  if (!response.ok) throw new Error(await problem(response));
  return response.json();
}

async function load(parts = ["performance", "costs", "budget"]) {
  const mine = Object.fromEntries(parts.map((part) => [part, ++asked[part]]));
  const filters = $("perf-filters").elements;
  const paths = {
    performance: `/api/staff/performance?window=${encodeURIComponent(filters.window.value)}`,
    costs: `/api/staff/costs?month=${encodeURIComponent(filters.month.value || thisMonth())}`,
    budget: "/api/staff/budget",
  };
  // Each part on its own: a refused month still leaves the routes' figures drawn.
  const got = await Promise.allSettled(parts.map((part) => fetchJson(paths[part])));
  const failed = [];
  parts.forEach((part, k) => {
    if (mine[part] !== asked[part]) return;
    if (got[k].status === "fulfilled") shown[part] = got[k].value;
    else failed.push(got[k].reason.message);
  });
  $("perf-error").textContent = [...new Set(failed)].join("\n");
  redraw();
}

async function saveBudget(body) {
  const form = $("budget-form");
  const response = await api("/api/staff/budget", { method: "PUT", json: body });
  form.querySelector(".error").textContent = response.ok ? "" : await problem(response);
  if (response.ok) {
    shown.budget = await response.json();
    if (document.activeElement) document.activeElement.blur();
    redraw();
  }
}

function wire() {
  const filters = $("perf-filters");
  filters.elements.month.value = thisMonth();
  filters.elements.window.addEventListener("change", () => load(["performance"]));
  filters.elements.month.addEventListener("change", () => {
    if (filters.elements.month.value) load(["costs"]);
  });
  filters.addEventListener("submit", (event) => event.preventDefault());
  const form = $("budget-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const amount = form.elements.monthly_usd.value;
    saveBudget({ monthly_usd: amount === "" ? null : Number(amount), action: form.elements.action.value });
  });
  $("budget-clear").addEventListener("click", () => saveBudget({ monthly_usd: null, action: form.elements.action.value }));
  // Charts are drawn at their box's width: draw them again when it changes.
  let width = 0;
  new ResizeObserver(() => {
    const now = $("performance").clientWidth;
    if (now && now !== width) {
      width = now;
      redraw();
    }
  }).observe($("performance"));
}

export function translate() {
  redraw();
}

export function open() {
  if (!ready) {
    ready = true;
    wire();
  }
  shown = { performance: null, costs: null, budget: null };
  load();
}
