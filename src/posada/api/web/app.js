// The guest chat: log in, ask, read the answer as it streams. No build step (a module:
// strict, and its names its own).
import { readEvents } from "./sse.js";

// The page's fixed labels in the four languages guests write in (answers come in the
// language of each question, from the server).
const TEXT = {
  es: { welcome: "Ingresa con la fecha de llegada de tu reserva y los últimos 4 dígitos de tu teléfono.",
        typing: "El conserje está escribiendo…", reception: "Hablar con recepción",
        waiting: "Una persona de recepción te responderá aquí.", withStaff: "Estás hablando con recepción.",
        staff: "Recepción", helpful: "Respuesta útil", unhelpful: "Respuesta poco útil",
        checkIn: "Fecha de llegada", phone: "Últimos 4 dígitos del teléfono", enter: "Entrar",
        send: "Enviar", newChat: "Nueva conversación", logout: "Salir", sources: "Fuentes",
        placeholder: "Escribe tu pregunta…", failed: "No pudimos verificar tu reserva.",
        error: "Algo salió mal; inténtalo de nuevo.", hello: "Hola",
        busy: "Demasiados intentos seguidos; espera un poco y vuelve a intentarlo.",
        unavailable: "El asistente no está disponible ahora; inténtalo de nuevo en un momento." },
  en: { welcome: "Log in with your reservation's check-in date and the last 4 digits of your phone.",
        typing: "The concierge is typing…", reception: "Talk to reception",
        waiting: "A person from reception will answer you here.", withStaff: "You are talking to reception.",
        staff: "Reception", helpful: "Helpful answer", unhelpful: "Unhelpful answer",
        checkIn: "Check-in date", phone: "Last 4 digits of your phone", enter: "Log in",
        send: "Send", newChat: "New conversation", logout: "Log out", sources: "Sources",
        placeholder: "Type your question…", failed: "We could not find your reservation.",
        error: "Something went wrong; please try again.", hello: "Hello",
        busy: "Too many tries in a row; please wait a little and try again.",
        unavailable: "The assistant is unavailable right now; please try again in a moment." },
  pt: { welcome: "Entre com a data de check-in da sua reserva e os últimos 4 dígitos do seu telefone.",
        typing: "O concierge está escrevendo…", reception: "Falar com a recepção",
        waiting: "Uma pessoa da recepção vai responder aqui.", withStaff: "Você está falando com a recepção.",
        staff: "Recepção", helpful: "Resposta útil", unhelpful: "Resposta pouco útil",
        checkIn: "Data de check-in", phone: "Últimos 4 dígitos do telefone", enter: "Entrar",
        send: "Enviar", newChat: "Nova conversa", logout: "Sair", sources: "Fontes",
        placeholder: "Escreva sua pergunta…", failed: "Não encontramos sua reserva.",
        error: "Algo deu errado; tente de novo.", hello: "Olá",
        busy: "Muitas tentativas seguidas; espere um pouco e tente de novo.",
        unavailable: "O assistente está indisponível agora; tente de novo em instantes." },
  fr: { welcome: "Connectez-vous avec la date d'arrivée de votre réservation et les 4 derniers chiffres de votre téléphone.",
        typing: "Le concierge écrit…", reception: "Parler à la réception",
        waiting: "Une personne de la réception va vous répondre ici.", withStaff: "Vous parlez avec la réception.",
        staff: "Réception", helpful: "Réponse utile", unhelpful: "Réponse peu utile",
        checkIn: "Date d'arrivée", phone: "4 derniers chiffres du téléphone", enter: "Se connecter",
        send: "Envoyer", newChat: "Nouvelle conversation", logout: "Se déconnecter", sources: "Sources",
        placeholder: "Écrivez votre question…", failed: "Nous n'avons pas trouvé votre réservation.",
        error: "Un problème est survenu ; veuillez réessayer.", hello: "Bonjour",
        busy: "Trop d'essais d'affilée ; patientez un peu et réessayez.",
        unavailable: "L'assistant est momentanément indisponible ; réessayez dans un instant." },
};

const params = new URLSearchParams(location.search);
const hotel = params.get("hotel") || location.hostname.split(".")[0];
// The token opens the guest's door code: kept for this tab only (sessionStorage), gone
// when it closes, never shared with other tabs or left on a shared device. The language
// is no secret and outlives the tab.
const store = {
  get: (key) => sessionStorage.getItem(`posada:${hotel}:${key}`),
  set: (key, value) => sessionStorage.setItem(`posada:${hotel}:${key}`, value),
  drop: (key) => sessionStorage.removeItem(`posada:${hotel}:${key}`),
};
const langKey = `posada:${hotel}:lang`;
// The guest's own choice, else the browser's first language the page has, else Spanish.
const preferred = [localStorage.getItem(langKey), ...(navigator.languages || [navigator.language])];
let lang = preferred.map((code) => (code || "").slice(0, 2).toLowerCase()).find((code) => TEXT[code]) || "es";
const $ = (id) => document.getElementById(id);
const HISTORY_PAGE = 30;

// What the page knows of the open conversation: the newest message id it has shown (the
// live stream resumes after it), the cursor of older history, and who has it now.
const chat = { lastId: 0, olderCursor: null, loadingOlder: false, handoff: null, live: null, answering: 0, held: [] };

function translate() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = TEXT[lang][node.dataset.i18n];
  $("message").placeholder = TEXT[lang].placeholder;
  $("lang").value = lang;
  for (const node of document.querySelectorAll(".typing")) node.setAttribute("aria-label", TEXT[lang].typing);
  for (const node of document.querySelectorAll("li.staff .who")) node.textContent = TEXT[lang].staff;
  for (const node of document.querySelectorAll(".feedback button")) {
    node.setAttribute("aria-label", TEXT[lang][node.dataset.helpful === "true" ? "helpful" : "unhelpful"]);
  }
  setHandoff(chat.handoff);
}

// What a refused request means to the guest: too many tries (429), the service not ready
// (503), or anything else.
function failure(response) {
  if (response.status === 429) return TEXT[lang].busy;
  if (response.status === 503) return TEXT[lang].unavailable;
  return TEXT[lang].error;
}

function show(loggedIn) {
  $("login").hidden = loggedIn;
  $("chat").hidden = !loggedIn;
  if (loggedIn) $("guest").textContent = `${TEXT[lang].hello}, ${store.get("guest") || ""}`;
}

// Keep the newest message in view, above the input box, while the guest is reading there.
function nearEnd() {
  const box = $("scroll");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}
function toEnd() { $("scroll").scrollTop = $("scroll").scrollHeight; }
// Whatever grows the conversation (words arriving, sources, a late font) keeps the end in
// view, unless the guest scrolled up to read.
let pinned = true;
$("scroll").addEventListener("scroll", () => { pinned = nearEnd(); });
new ResizeObserver(() => { if (pinned) toEnd(); }).observe($("messages"));

function bubble(message, { before = false } = {}) {
  const item = document.createElement("li");
  item.className = message.role === "guest" ? "guest" : message.role || "assistant";
  if (message.id) item.dataset.id = message.id;
  if (message.role === "staff") {
    const who = document.createElement("small");
    who.className = "who";
    who.textContent = TEXT[lang].staff;
    item.append(who);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = message.content || "";
  item.append(body);
  if (message.sources) setSources(item, message.sources);
  if (message.id && item.className === "assistant" && message.content) addFeedback(item, message.feedback);
  const follow = nearEnd();
  if (before) $("messages").prepend(item);
  else $("messages").append(item);
  if (!before && follow) toEnd();
  if (message.id) chat.lastId = Math.max(chat.lastId, Number(message.id));
  return item;
}

function setSources(item, sources) {
  if (!sources.length) return;
  const line = document.createElement("small");
  line.className = "sources";
  line.textContent = `${TEXT[lang].sources}: ` + sources.map((s) => s.heading.split(" › ").slice(-1)[0]).join(" · ");
  item.append(line);
}

// Dots that stand for the answer being written, named for screen readers; gone at the
// first words.
function showTyping(item) {
  const dots = document.createElement("span");
  dots.className = "typing";
  dots.setAttribute("role", "status");
  dots.setAttribute("aria-label", TEXT[lang].typing);
  dots.append(...[0, 1, 2].map(() => document.createElement("i")));
  item.append(dots);
}
function stopTyping(item) { item.querySelector(".typing")?.remove(); }

// Thumbs up or down on an answer: the hotel sees the answers guests found unhelpful.
function addFeedback(item, given = null) {
  if (item.querySelector(".feedback")) return;
  const box = document.createElement("span");
  box.className = "feedback";
  for (const helpful of [true, false]) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.helpful = String(helpful);
    button.append(thumb(helpful));
    button.setAttribute("aria-label", TEXT[lang][helpful ? "helpful" : "unhelpful"]);
    // The guest's earlier verdict (from the history) shows as pressed.
    button.setAttribute("aria-pressed", String(given === (helpful ? 1 : -1)));
    button.addEventListener("click", () => sendFeedback(item, helpful));
    box.append(button);
  }
  item.append(box);
}

// A thumb drawn here, not an emoji: not every device has an emoji font.
function thumb(up) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const hand = document.createElementNS("http://www.w3.org/2000/svg", "path");
  hand.setAttribute("d", "M2 10h4v11H2zM8 10l4-7c1.5 0 2.5 1 2 3l-1 4h6c1.5 0 2.5 1.3 2 2.8l-2 6.7c-.3.9-1.1 1.5-2 1.5H8z");
  if (!up) hand.setAttribute("transform", "rotate(180 12 12)");
  svg.append(hand);
  return svg;
}

async function sendFeedback(item, helpful) {
  const response = await fetch(`/api/guest/messages/${item.dataset.id}/feedback`, {
    method: "POST", headers: { ...auth(), "Content-Type": "application/json" }, body: JSON.stringify({ helpful }),
  });
  if (response.status === 401) return logout();
  if (!response.ok) return;
  for (const button of item.querySelectorAll(".feedback button")) {
    button.setAttribute("aria-pressed", String(button.dataset.helpful === String(helpful)));
  }
}

function setHandoff(state) {
  chat.handoff = state || null;
  const banner = $("handoff");
  banner.hidden = !chat.handoff;
  banner.textContent = chat.handoff === "staff" ? TEXT[lang].withStaff : chat.handoff ? TEXT[lang].waiting : "";
  $("reception").hidden = Boolean(chat.handoff);
}

function conversationUrl(query) {
  return `/api/guest/conversations/${store.get("conversation")}?${new URLSearchParams(query)}`;
}

// The newest page first; older ones as the guest scrolls up to them.
async function loadHistory() {
  if (!store.get("conversation")) return;
  const response = await fetch(conversationUrl({ limit: HISTORY_PAGE }), { headers: auth() });
  if (response.status === 401) return logout();
  if (!response.ok) return store.drop("conversation");
  const data = await response.json();
  for (const m of data.messages) bubble(m);
  chat.olderCursor = data.next_before ?? null;
  setHandoff(data.handoff);
  toEnd();
  listen();
  loadOlderWhileVisible();
}

async function loadOlder() {
  if (chat.loadingOlder || !chat.olderCursor || !store.get("conversation")) return;
  chat.loadingOlder = true;
  try {
    const response = await fetch(conversationUrl({ limit: HISTORY_PAGE, before: chat.olderCursor }), { headers: auth() });
    if (!response.ok) return;
    const data = await response.json();
    const box = $("scroll");
    const height = box.scrollHeight;
    for (const m of [...data.messages].reverse()) {
      if (!$("messages").querySelector(`li[data-id="${m.id}"]`)) bubble(m, { before: true });
    }
    box.scrollTop += box.scrollHeight - height; // what the guest was reading stays put
    chat.olderCursor = data.next_before ?? null;
  } finally {
    chat.loadingOlder = false;
  }
  loadOlderWhileVisible();
}

// The observer fires when the top comes into view; a short page may leave it in view.
function loadOlderWhileVisible() {
  const top = $("older").getBoundingClientRect().bottom;
  if (chat.olderCursor && top >= $("scroll").getBoundingClientRect().top - 100) loadOlder();
}
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadOlder();
}, { root: $("scroll"), rootMargin: "100px" }).observe($("older"));

// Live: staff replies and notices (and the handoff's state) as they happen, read with
// fetch since EventSource cannot send the token; on a drop it resumes after the last id.
function listen() {
  const conversation = store.get("conversation");
  if (!conversation || (chat.live && chat.live.conversation === conversation)) return;
  stopListening();
  const live = { conversation, stop: new AbortController() };
  chat.live = live;
  (async () => {
    for (let wait = 1000; chat.live === live; wait = Math.min(wait * 2, 15000)) {
      try {
        // From the start of a new conversation (0): its first question and answer come
        // back with their ids, which the thumbs need.
        const response = await fetch(`/api/guest/conversations/${conversation}/events?after=${chat.lastId}`, {
          headers: auth(), signal: live.stop.signal,
        });
        if (response.status === 401) return logout();
        if (response.status === 404) return;
        if (response.ok) {
          wait = 1000;
          await readEvents(response, (name, data) => { if (chat.live === live) onLive(name, data); });
        }
      } catch (error) {
        if (live.stop.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
}

function stopListening() {
  if (chat.live) chat.live.stop.abort();
  chat.live = null;
}

function onLive(name, data) {
  // While an answer streams in, its own stored copy may arrive here first: wait for it.
  if (chat.answering) { chat.held.push([name, data]); return; }
  if (name === "handoff") setHandoff(data.state);
  if (name !== "message" || $("messages").querySelector(`li[data-id="${data.id}"]`)) return;
  // The page's own question, answer or notice, now with its id (the thumbs need it).
  const own = [...$("messages").querySelectorAll("li:not([data-id])")]
    .find((li) => li.querySelector(".text").textContent === data.content
      && (li.className === data.role || (data.role === "notice" && li.className === "assistant")));
  if (own) {
    own.dataset.id = data.id;
    if (data.role === "notice") own.className = "notice";
    if (own.className === "assistant") addFeedback(own);
    chat.lastId = Math.max(chat.lastId, Number(data.id));
    return;
  }
  if (data.role === "staff") setHandoff("staff");
  bubble(data);
}

function auth() { return { Authorization: `Bearer ${store.get("token")}` }; }

function forget() {
  stopListening();
  store.drop("conversation");
  $("messages").replaceChildren();
  Object.assign(chat, { lastId: 0, olderCursor: null, held: [] });
  setHandoff(null);
}

function logout() {
  forget();
  for (const key of ["token", "guest"]) store.drop(key);
  show(false);
}

function send(question) {
  const body = { message: question };
  const conversation = store.get("conversation");
  if (conversation) body.conversation_id = Number(conversation);
  return fetch("/api/guest/chat/stream", {
    method: "POST", headers: { ...auth(), "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
}

async function ask(question) {
  bubble({ role: "guest", content: question });
  const item = bubble({ role: "assistant", content: "" });
  showTyping(item);
  toEnd();
  chat.answering += 1;
  try {
    await answer(question, item);
  } finally {
    stopTyping(item);
    // Nothing was said (a person has the conversation): no empty bubble left behind.
    if (!item.querySelector(".text").textContent) item.remove();
    chat.answering -= 1;
    if (!chat.answering) for (const [name, data] of chat.held.splice(0)) onLive(name, data);
  }
}

async function answer(question, item) {
  const text = item.querySelector(".text");
  let response = await send(question);
  if (response.status === 404 && store.get("conversation")) {
    // The conversation is gone (erased by the hotel): carry on in a new one.
    stopListening();
    store.drop("conversation");
    Object.assign(chat, { lastId: 0, olderCursor: null });
    setHandoff(null);
    response = await send(question);
  }
  if (response.status === 401) return logout();
  if (!response.ok) { text.textContent = failure(response); return; }
  await readEvents(response, (event, data) => {
    const follow = nearEnd();
    if (event === "meta") {
      store.set("conversation", data.conversation_id);
      listen();
    } else if (event === "delta") {
      stopTyping(item);
      text.textContent += data.text;
    } else if (event === "done") {
      setSources(item, data.sources);
      if (data.handoff !== undefined) setHandoff(data.handoff);
      if (data.handoff && text.textContent) item.className = "notice"; // "a person will answer"
      if (data.message_id) { item.dataset.id = data.message_id; addFeedback(item); }
    } else if (event === "error") text.textContent = TEXT[lang].error;
    if (follow) toEnd();
  });
}

async function askForReception() {
  const conversation = store.get("conversation");
  const response = await fetch("/api/guest/handoff", {
    method: "POST", headers: { ...auth(), "Content-Type": "application/json" },
    body: JSON.stringify({ conversation_id: conversation ? Number(conversation) : null }),
  });
  if (response.status === 401) return logout();
  if (!response.ok) { bubble({ role: "notice", content: failure(response) }); return; }
  const data = await response.json();
  store.set("conversation", data.conversation_id);
  setHandoff(data.handoff);
  if (data.message && !$("messages").querySelector(`li[data-id="${data.message.id}"]`)) bubble(data.message);
  toEnd();
  listen();
}

$("lang").addEventListener("change", () => {
  lang = $("lang").value;
  localStorage.setItem(langKey, lang);
  translate();
  show(Boolean(store.get("token")));
});

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/api/guest/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ tenant: hotel, check_in: $("check-in").value, phone_last4: $("phone").value }),
  });
  if (!response.ok) {
    // Throttled is not wrong: the guest should wait, not doubt the date they typed.
    const refused = response.status === 429 || response.status === 503;
    $("login-error").textContent = refused ? failure(response) : TEXT[lang].failed;
    return;
  }
  const data = await response.json();
  store.set("token", data.token);
  store.set("guest", data.guest_name);
  show(true);
});

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("message").value.trim();
  if (!question) return;
  $("message").value = "";
  ask(question).catch((error) => {
    console.error(error);
    bubble({ role: "assistant", content: TEXT[lang].error });
  });
});

$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("ask").requestSubmit(); }
});

$("new").addEventListener("click", forget);
$("logout").addEventListener("click", logout);
$("reception").addEventListener("click", () => askForReception().catch(() => bubble({ role: "notice", content: TEXT[lang].error })));

translate();
fetch(`/api/public/${hotel}/info`).then((r) => (r.ok ? r.json() : null)).then((info) => {
  $("hotel-name").textContent = info ? info.name : hotel;
  document.title = info ? info.name : "Concierge";
});
show(Boolean(store.get("token")));
if (store.get("token")) loadHistory();
