// The guest chat: log in, ask, read the answer as it streams. No build step.
"use strict";

// The page's fixed labels in the four languages guests write in (answers come in the
// language of each question, from the server).
const TEXT = {
  es: { welcome: "Ingresa con la fecha de llegada de tu reserva y los últimos 4 dígitos de tu teléfono.",
        checkIn: "Fecha de llegada", phone: "Últimos 4 dígitos del teléfono", enter: "Entrar",
        send: "Enviar", newChat: "Nueva conversación", logout: "Salir", sources: "Fuentes",
        placeholder: "Escribe tu pregunta…", failed: "No pudimos verificar tu reserva.",
        error: "Algo salió mal; inténtalo de nuevo.", hello: "Hola",
        busy: "Demasiados intentos seguidos; espera un poco y vuelve a intentarlo.",
        unavailable: "El asistente no está disponible ahora; inténtalo de nuevo en un momento." },
  en: { welcome: "Log in with your reservation's check-in date and the last 4 digits of your phone.",
        checkIn: "Check-in date", phone: "Last 4 digits of your phone", enter: "Log in",
        send: "Send", newChat: "New conversation", logout: "Log out", sources: "Sources",
        placeholder: "Type your question…", failed: "We could not find your reservation.",
        error: "Something went wrong; please try again.", hello: "Hello",
        busy: "Too many tries in a row; please wait a little and try again.",
        unavailable: "The assistant is unavailable right now; please try again in a moment." },
  pt: { welcome: "Entre com a data de check-in da sua reserva e os últimos 4 dígitos do seu telefone.",
        checkIn: "Data de check-in", phone: "Últimos 4 dígitos do telefone", enter: "Entrar",
        send: "Enviar", newChat: "Nova conversa", logout: "Sair", sources: "Fontes",
        placeholder: "Escreva sua pergunta…", failed: "Não encontramos sua reserva.",
        error: "Algo deu errado; tente de novo.", hello: "Olá",
        busy: "Muitas tentativas seguidas; espere um pouco e tente de novo.",
        unavailable: "O assistente está indisponível agora; tente de novo em instantes." },
  fr: { welcome: "Connectez-vous avec la date d'arrivée de votre réservation et les 4 derniers chiffres de votre téléphone.",
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

function translate() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = TEXT[lang][node.dataset.i18n];
  $("message").placeholder = TEXT[lang].placeholder;
  $("lang").value = lang;
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

function bubble(role, text, sources) {
  const item = document.createElement("li");
  item.className = role;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(body);
  if (sources) setSources(item, sources);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function setSources(item, sources) {
  if (!sources.length) return;
  const line = document.createElement("small");
  line.className = "sources";
  line.textContent = `${TEXT[lang].sources}: ` + sources.map((s) => s.heading.split(" › ").slice(-1)[0]).join(" · ");
  item.append(line);
}

async function loadHistory() {
  const id = store.get("conversation");
  if (!id) return;
  const response = await fetch(`/api/guest/conversations/${id}?limit=200`, { headers: auth() });
  if (response.status === 401) return logout();
  if (!response.ok) return store.drop("conversation");
  const data = await response.json();
  for (const m of data.messages) bubble(m.role === "guest" ? "guest" : "assistant", m.content, m.sources);
}

function auth() { return { Authorization: `Bearer ${store.get("token")}` }; }

function logout() {
  for (const key of ["token", "conversation", "guest"]) store.drop(key);
  $("messages").replaceChildren();
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
  bubble("guest", question);
  const item = bubble("assistant", "");
  let response = await send(question);
  if (response.status === 404 && store.get("conversation")) {
    // The conversation is gone (erased by the hotel): carry on in a new one.
    store.drop("conversation");
    response = await send(question);
  }
  if (response.status === 401) return logout();
  if (!response.ok) { item.querySelector(".text").textContent = failure(response); return; }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] || "{}");
      if (event === "meta") store.set("conversation", data.conversation_id);
      else if (event === "delta") item.querySelector(".text").textContent += data.text;
      else if (event === "done") setSources(item, data.sources);
      else if (event === "error") item.querySelector(".text").textContent = TEXT[lang].error;
      item.scrollIntoView({ block: "end" });
    }
  }
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
  ask(question).catch(() => bubble("assistant", TEXT[lang].error));
});

$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("ask").requestSubmit(); }
});

$("new").addEventListener("click", () => { store.drop("conversation"); $("messages").replaceChildren(); });
$("logout").addEventListener("click", logout);

translate();
fetch(`/api/public/${hotel}/info`).then((r) => (r.ok ? r.json() : null)).then((info) => {
  $("hotel-name").textContent = info ? info.name : hotel;
  document.title = info ? info.name : "Concierge";
});
show(Boolean(store.get("token")));
if (store.get("token")) loadHistory();
