// Reconnect's page behaviour that must not wait for the server: Quick exit, announcements,
// and the long-message note. Injected by ui/app.py on every run; it sets itself up once.
(() => {
  const CONFIG = __CONFIG__;
  if (window.reconnectPage) return;

  const api = { left: false, announced: new Set() };
  window.reconnectPage = api;

  // --- Quick exit: on the client, at once, with or without a connection -------------------

  function leave(event) {
    if (event) event.preventDefault();
    api.left = true;
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

  function start() {
    exitBar();
    document.body.append(live, note);
    announceNew();
    // Streamlit's redraws may add answers or replace the input; the page's own notes don't.
    const own = (node) => node === live || node === note || live.contains(node)
      || note.contains(node);
    new MutationObserver((records) => {
      if (records.every((r) => own(r.target))) return;
      announceNew();
      checkLength();
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
