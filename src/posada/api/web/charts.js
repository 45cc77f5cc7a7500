// Small SVG charts for the staff page, drawn at the width they are given (a phone's or a
// laptop's) so their text stays at a readable size rather than scaled with a viewBox:
// barChart (horizontal bars: routes, layers), columnChart (one column per day, with
// reference lines such as a budget) and seriesChart (lines over days). Every bar and
// point has a <title> (the browser's tooltip) and data-value (what tests read). No
// library: the three are about two hundred lines, and the page loads nothing else.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const FONT = 12; // px; text widths below are estimated from it (no layout pass needed)
const CHAR = FONT * 0.6;

function node(tag, attrs = {}, ...children) {
  const made = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) made.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    made.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return made;
}

const tip = (text) => (text ? node("title", {}, text) : null);
const textWidth = (text) => String(text).length * CHAR;

// Cut a label to fit `room` pixels (the whole of it stays in the tooltip).
function fit(text, room) {
  const most = Math.max(3, Math.floor(room / CHAR + 0.01));
  return text.length <= most ? text : `${text.slice(0, most - 1)}…`;
}

// Axis ticks from 0 to at least `max`, about `count` of them, 1, 2 or 5 times a power of
// ten; `whole`: counts, so steps of at least 1.
export function ticks(max, count = 4, whole = false) {
  if (!(max > 0)) return [0, 1];
  const raw = whole ? Math.max(1, max / count) : max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let k = 0; k * step < max + step * 0.999; k += 1) out.push(Number((k * step).toPrecision(12)));
  if (out.length < 2) out.push(step);
  return out;
}

function frame(kind, width, height, label) {
  return node("svg", {
    class: `chart ${kind}`, width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-label": label,
  }, tip(label));
}

// Horizontal bars, one per item {label, value, title}. A narrow chart puts each label
// above its bar; a wide one puts the labels in a column on the left.
export function barChart({ items, width, format = String, label = "", axis = "", whole = false }) {
  const stacked = width < 480;
  const labelRoom = stacked ? 0 : Math.min(width * 0.4, Math.max(...items.map((i) => textWidth(i.label)), 40) + 10);
  const row = stacked ? 36 : 26;
  const top = 4;
  const bottom = 34; // tick labels and the axis' name
  const scale = ticks(Math.max(0, ...items.map((i) => i.value)), 4, whole);
  const left = Math.max(labelRoom, textWidth(format(0)) / 2 + 2);
  const right = textWidth(format(scale[scale.length - 1])) / 2 + 2; // the last tick's label
  const plot = Math.max(40, width - left - right);
  const height = top + row * Math.max(items.length, 1) + bottom;
  const top_value = scale[scale.length - 1];
  const x = (v) => left + (v / top_value) * plot;
  const svg = frame("bars", width, height, label);
  const grid = node("g", { class: "grid" });
  for (const value of scale) {
    grid.append(node("line", { x1: x(value), x2: x(value), y1: top, y2: height - bottom }),
      node("text", { x: x(value), y: height - bottom + 14, "text-anchor": "middle", class: "tick" }, format(value)));
  }
  if (axis) grid.append(node("text", { x: left + plot / 2, y: height - 4, "text-anchor": "middle", class: "axis" }, axis));
  svg.append(grid);
  items.forEach((item, k) => {
    const y = top + k * row;
    const barTop = stacked ? y + 16 : y + 4;
    const barHeight = stacked ? 14 : row - 8;
    const end = x(item.value);
    const shown = format(item.value);
    // The figure after the bar, or inside its end when there is no room after it.
    const inside = end + 4 + textWidth(shown) > width - right;
    const g = node("g", { class: `bar ${item.className || ""}`.trim(), "data-label": item.label, "data-value": item.value },
      tip(item.title || `${item.label}: ${shown}`),
      node("rect", { x: left, y: barTop, width: Math.max(1, end - left), height: barHeight, rx: 2 }),
      node("text", {
        x: inside ? end - 4 : end + 4, y: barTop + barHeight / 2 + 4,
        "text-anchor": inside ? "end" : "start", class: inside ? "value inside" : "value",
      }, shown),
      stacked
        ? node("text", { x: left, y: y + 12, class: "label" }, fit(item.label, width - right))
        : node("text", { x: left - 6, y: barTop + barHeight / 2 + 4, "text-anchor": "end", class: "label" }, fit(item.label, labelRoom - 10)));
    svg.append(g);
  });
  return svg;
}

// The left edge of a plot with a value axis: room for the widest tick label.
function valueAxis(svg, scale, { left, right, top, bottom, width, height, format }) {
  const y = (v) => height - bottom - (v / scale[scale.length - 1]) * (height - top - bottom);
  const grid = node("g", { class: "grid" });
  for (const value of scale) {
    grid.append(node("line", { x1: left, x2: width - right, y1: y(value), y2: y(value) }),
      node("text", { x: left - 4, y: y(value) + 4, "text-anchor": "end", class: "tick" }, format(value)));
  }
  svg.append(grid);
  return y;
}

// Day (or any category) labels under the plot, every n-th one so that they never overlap.
function categoryAxis(svg, labels, { at, band, height, bottom, axis, left, width, right }) {
  const widest = Math.max(...labels.map(textWidth), 1) + 6;
  const every = Math.max(1, Math.ceil(widest / Math.max(band, 1)));
  const g = node("g", { class: "grid" });
  labels.forEach((text, k) => {
    if (k % every === 0) g.append(node("text", { x: at(k), y: height - bottom + 14, "text-anchor": "middle", class: "tick" }, text));
  });
  if (axis) g.append(node("text", { x: left + (width - left - right) / 2, y: height - 4, "text-anchor": "middle", class: "axis" }, axis));
  svg.append(g);
}

// Reference lines across the plot (a budget), labelled at their right end.
function rules(svg, lines, y, { left, right, width, format }) {
  for (const line of lines) {
    const at = y(line.value);
    svg.append(node("g", { class: `rule ${line.className || ""}`.trim(), "data-value": line.value },
      tip(`${line.label}: ${format(line.value)}`),
      node("line", { x1: left, x2: width - right, y1: at, y2: at }),
      node("text", { x: width - right, y: at - 4, "text-anchor": "end" }, `${line.label} ${format(line.value)}`)));
  }
}

function leftRoom(scale, format) {
  return Math.max(...scale.map((v) => textWidth(format(v)))) + 10;
}

// One column per label; `titles[k]` is column k's tooltip; `lines` are reference lines.
export function columnChart({ labels, values, titles = [], lines = [], width, height = 200, format = String, label = "", axis = "", whole = false }) {
  const scale = ticks(Math.max(0, ...values, ...lines.map((l) => l.value)), 4, whole);
  const box = { top: 18, bottom: 34, right: 8, width, height, format };
  box.left = leftRoom(scale, format);
  const svg = frame("columns", width, height, label);
  const y = valueAxis(svg, scale, box);
  const band = (width - box.left - box.right) / Math.max(labels.length, 1);
  const at = (k) => box.left + band * (k + 0.5);
  categoryAxis(svg, labels, { ...box, at, band, axis });
  values.forEach((value, k) => {
    const h = Math.max(value > 0 ? 1 : 0, y(0) - y(value));
    const wide = Math.min(band * 0.7, 40); // a few days' columns stay columns, not slabs
    svg.append(node("g", { class: "column", "data-label": labels[k], "data-value": value },
      tip(titles[k] || `${labels[k]}: ${format(value)}`),
      node("rect", { x: at(k) - wide / 2, y: y(0) - h, width: wide, height: h, rx: 1 })));
  });
  rules(svg, lines, y, box);
  return svg;
}

// Lines over the labels: series [{name, values (null: no point), className, dashed}],
// with a legend on top and reference lines; each point a circle with its tooltip.
export function seriesChart({ labels, series, lines = [], width, height = 220, format = String, label = "", axis = "" }) {
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const scale = ticks(Math.max(0, ...all, ...lines.map((l) => l.value)));
  const box = { top: 30, bottom: 34, right: 8, width, height, format };
  box.left = leftRoom(scale, format);
  const svg = frame("series", width, height, label);
  const y = valueAxis(svg, scale, box);
  const band = (width - box.left - box.right) / Math.max(labels.length, 1);
  const at = (k) => box.left + band * (k + 0.5);
  categoryAxis(svg, labels, { ...box, at, band, axis });
  rules(svg, lines, y, box);
  let legend = box.left;
  series.forEach((s, n) => {
    const name = s.className || `s${n}`;
    const key = node("g", { class: `legend ${name}` },
      node("line", { x1: legend, x2: legend + 16, y1: 10, y2: 10, "stroke-dasharray": s.dashed ? "4 3" : null }),
      node("text", { x: legend + 20, y: 14 }, s.name));
    svg.append(key);
    legend += 28 + textWidth(s.name);
    const points = s.values.map((v, k) => (v === null || v === undefined ? null : [at(k), y(v), v, k]));
    const path = points.filter(Boolean).map(([px, py], k) => `${k ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join(" ");
    const g = node("g", { class: `line ${name}`, "data-name": s.name },
      node("path", { d: path, "stroke-dasharray": s.dashed ? "5 4" : null }));
    for (const point of points.filter(Boolean)) {
      const [px, py, v, k] = point;
      g.append(node("circle", { cx: px, cy: py, r: 3, "data-label": labels[k], "data-value": v },
        tip(`${s.name}, ${labels[k]}: ${format(v)}`)));
    }
    svg.append(g);
  });
  return svg;
}
