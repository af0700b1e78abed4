// Reconnect's page behaviour that must not wait for the server: Quick exit, announcements,
// the long-message note and the thinking indicator shown at Enter. Injected by ui/app.py on
// every run; it sets itself up once.
(() => {
  const CONFIG = __CONFIG__;
  if (window.reconnectPage) return;

  const api = { left: false, announced: new Set() };
  window.reconnectPage = api;

  // --- Quick exit: on the client, at once, with or without a connection -------------------

  function leave(event) {
    if (event) event.preventDefault();
    api.left = true;
    clearPending();
    // Hide the conversation first: the next page may take a moment to arrive.
    document.documentElement.style.visibility = "hidden";
    const root = document.getElementById("root");
    if (root) root.remove();
    try { window.sessionStorage.clear(); } catch (e) { /* storage blocked: nothing kept */ }
    forgetOnServer();
    // replace(): this page is dropped from the tab's history, so Back can't return to it.
    window.location.replace(CONFIG.neutral);
  }

  function forgetOnServer() {
    // Best effort: also clear the conversation on the server while the socket is up.
    const button = document.querySelector(".st-key-forget button");
    try { if (button) button.click(); } catch (e) { /* leaving anyway */ }
  }

  function exitBar() {
    const bar = document.createElement("div");
    bar.id = "rc-exit";
    bar.setAttribute("role", "region");
    bar.setAttribute("aria-label", "Quick exit");
    const hint = document.createElement("span");
    hint.className = "rc-exit-hint";
    hint.textContent = "or press Esc";
    const button = document.createElement("button");
    button.type = "button";
    button.id = "rc-exit-button";
    button.textContent = "Quick exit";
    button.title = CONFIG.exitHelp;
    button.setAttribute("aria-keyshortcuts", "Escape");
    button.addEventListener("click", leave);
    bar.append(hint, button);
    // First in the document, so it is the first Tab stop on every screen.
    document.body.prepend(bar);
  }

  function popupOpen() {
    // Esc closes an open list, menu or dialog first; only a second Esc leaves.
    return Boolean(document.querySelector(
      '[role="listbox"], [role="dialog"]:not([aria-hidden="true"]), [data-baseweb="popover"]'
    ));
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.repeat && !popupOpen()) leave(event);
  }, true);

  // A page restored from the back-forward cache after leaving goes straight away again.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && api.left) window.location.replace(CONFIG.neutral);
  });

  // --- announcements: each new answer once, through one polite live region ----------------

  const live = document.createElement("div");
  live.id = "rc-live";
  live.className = "rc-sr-only";
  live.setAttribute("aria-live", "polite");
  live.setAttribute("aria-atomic", "true");

  function answerText(marker) {
    const message = marker.closest('[data-testid="stChatMessage"]');
    if (!message) return "";
    const parts = [];
    message.querySelectorAll(".rc-banner, [data-testid='stMarkdownContainer']").forEach((el) => {
      if (el.closest("[data-testid='stExpander']")) return; // sources are read on request
      parts.push(el.innerText.trim());
    });
    return parts.filter(Boolean).join("\n");
  }

  function announceNew() {
    document.querySelectorAll("[data-rc-done]").forEach((marker) => {
      const id = marker.getAttribute("data-rc-done");
      if (api.announced.has(id)) return;
      api.announced.add(id);
      if (marker.getAttribute("data-rc-quiet") === "1") return; // drawn again, not new
      const text = answerText(marker);
      if (!text) return;
      live.textContent = "";
      window.setTimeout(() => { live.textContent = text; }, 100);
    });
  }

  // --- long messages: say so while typing, before anything is sent -----------------------

  const note = document.createElement("div");
  note.id = "rc-too-long";
  note.setAttribute("role", "status");

  function checkLength() {
    const box = document.querySelector('[data-testid="stChatInputTextArea"]');
    const n = box ? box.value.length : 0;
    const text = n > CONFIG.maxChars
      ? CONFIG.tooLong
        .replace("{n}", n.toLocaleString("en-US"))
        .replace("{max}", CONFIG.maxChars.toLocaleString("en-US"))
      : "";
    // Only a change is written: the note is watched by the observer below, and rewriting
    // the same words would wake it again, forever (a long paste froze the page that way).
    if (note.textContent === text) return;
    note.textContent = text;
    note.className = text ? "rc-note rc-too-long" : "";
  }

  document.addEventListener("input", (event) => {
    if (event.target && event.target.matches('[data-testid="stChatInputTextArea"]')) checkLength();
  }, true);

  // --- thinking: shown the moment a message is sent, until the answer shows ---------------
  // The server's own "Thinking…" needs a round trip (~0.4 s on a busy machine); this one is
  // drawn in the keydown itself. It lives outside Streamlit's (React's) markup, fixed just
  // above the input, and goes as soon as the answer to the message shows anything.

  const INPUT = '[data-testid="stChatInputTextArea"]';
  const MESSAGE = '[data-testid="stChatMessage"]';
  const PENDING_MAX_MS = 120000;
  // Every indicator ever drawn: the observer below ignores their coming and going.
  const ownNodes = new WeakSet();
  // base: the number of messages at Enter (the person's bubble is message base, the answer
  // base + 1); done: answers finished at Enter; shown: the states drawn in messages at Enter.
  const pending = { el: null, base: 0, done: new Set(), shown: 0, timer: 0 };

  function sendable(box) {
    const text = box ? box.value : "";
    // A longer message is flagged by the note above the input instead (and answered in part).
    return text.trim() !== "" && text.length <= CONFIG.maxChars;
  }

  function doneIds() {
    return new Set([...document.querySelectorAll(`${MESSAGE} [data-rc-done]`)]
      .map((m) => m.getAttribute("data-rc-done")));
  }

  function statesShown() {
    return document.querySelectorAll(`${MESSAGE} .rc-thinking, ${MESSAGE} .rc-note`).length;
  }

  function place() {
    // Just above the input, from its left edge: clear of it as it grows, and of Quick exit.
    const input = document.querySelector('[data-testid="stChatInput"]');
    if (!pending.el || !input) return;
    const r = input.getBoundingClientRect();
    if (!r.height) return;
    const bottom = `${Math.round(Math.max(window.innerHeight - r.top, 0) + 8)}px`;
    const left = `${Math.round(Math.max(r.left, 8))}px`;
    if (pending.el.style.bottom !== bottom) pending.el.style.bottom = bottom;
    if (pending.el.style.left !== left) pending.el.style.left = left;
  }

  function showPending() {
    window.clearTimeout(pending.timer);
    pending.timer = window.setTimeout(clearPending, PENDING_MAX_MS);
    // A second message sent while the first waits keeps the one indicator.
    if (pending.el) return;
    const el = document.createElement("div");
    el.id = "rc-pending";
    el.className = "rc-thinking";
    // Polite, like the server's state: never the #rc-live region, which reads the answer.
    el.setAttribute("role", "status");
    const dots = document.createElement("span");
    dots.className = "rc-dots";
    dots.setAttribute("aria-hidden", "true");
    el.append(dots, CONFIG.thinking);
    ownNodes.add(el);
    pending.el = el;
    pending.base = document.querySelectorAll(MESSAGE).length;
    pending.done = doneIds();
    pending.shown = statesShown();
    document.body.append(el);
    place();
    // Once Streamlit has emptied (and shrunk) the input.
    window.requestAnimationFrame(place);
  }

  function clearPending() {
    window.clearTimeout(pending.timer);
    if (pending.el) pending.el.remove();
    pending.el = null;
  }

  function answerShows() {
    const n = document.querySelectorAll(MESSAGE).length;
    // The answer's own bubble, or a conversation cleared meanwhile.
    if (n >= pending.base + 2 || n < pending.base) return true;
    // An answer finished, or a new state drawn (a thinking indicator, a note) in a message.
    if ([...doneIds()].some((id) => !pending.done.has(id))) return true;
    if (statesShown() > pending.shown) return true;
    // The message is on screen and the server says it is getting ready (a cold start).
    if (n > pending.base) {
      const status = [...document.querySelectorAll(".rc-thinking, .rc-note")]
        .filter((el) => !ownNodes.has(el) && !el.id && !el.closest(MESSAGE));
      if (status.length) return true;
    }
    return false;
  }

  function checkPending() {
    if (!pending.el) return;
    if (answerShows()) clearPending(); else place();
  }

  // Capture phase: before Streamlit's own handler sends the text and empties the box.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.ctrlKey || event.metaKey
      || event.isComposing) return;
    const box = event.target;
    if (box && box.matches && box.matches(INPUT) && sendable(box)) showPending();
  }, true);

  document.addEventListener("click", (event) => {
    const button = event.target && event.target.closest
      && event.target.closest('[data-testid="stChatInputSubmitButton"]');
    if (!button || button.disabled) return;
    const form = button.closest('[data-testid="stChatInput"]');
    const box = form ? form.querySelector(INPUT) : document.querySelector(INPUT);
    if (sendable(box)) showPending();
  }, true);

  window.addEventListener("resize", () => { if (pending.el) place(); });

  function start() {
    exitBar();
    document.body.append(live, note);
    announceNew();
    // Streamlit's redraws may add answers or replace the input; the page's own notes and
    // indicator don't (drawing them must not wake this observer into drawing them again).
    const own = (node) => node === live || node === note || ownNodes.has(node)
      || live.contains(node) || note.contains(node);
    const ownRecord = (r) => own(r.target) || (r.target === document.body
      && r.addedNodes.length + r.removedNodes.length > 0
      && [...r.addedNodes, ...r.removedNodes].every(own));
    new MutationObserver((records) => {
      if (records.every(ownRecord)) return;
      announceNew();
      checkLength();
      checkPending();
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
