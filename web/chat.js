// Mount the rasa-webchat widget (served from web/node_modules by stack/webchat.py) on #webchat.
// It connects to Rasa's socket.io channel; with `session_persistence: true` in credentials.yml
// and storage "local" the session id and the messages stay in localStorage, so a reload
// continues the same conversation and shows its history.
(function () {
  "use strict";
  const rasaUrl = (window.RASA_URL || "http://localhost:5005")
    .replace(/\/$/, "");
  const errorBox = document.getElementById("chat-error");

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  // The privacy notice under the chat shows this visitor's conversation id (the widget keeps it in
  // localStorage 'chat_session' once connected), to quote when asking for the conversation's deletion.
  const conversationId = document.getElementById("conversation-id");
  const erasureEmail = document.getElementById("erasure-email");
  const supportAddress = erasureEmail.getAttribute("href").replace(/^mailto:/, "").split("?")[0];
  function showConversationId() {
    let id = null;
    try {
      id = (JSON.parse(localStorage.getItem("chat_session") || "null") || {}).session_id || null;
    } catch (e) { id = null; }
    if (!id || conversationId.textContent === id) return;
    conversationId.textContent = id;
    erasureEmail.href = `mailto:${supportAddress}?subject=${encodeURIComponent(`Please delete conversation ${id}`)}`;
  }
  showConversationId();
  setInterval(showConversationId, 1000);

  if (!window.WebChat || typeof window.WebChat.default !== "function") {
    showError("The chat widget is not installed: run `make setup` (it installs web/node_modules).");
    return;
  }
  window.WebChat.default({
    socketUrl: rasaUrl,
    socketPath: "/socket.io/",
    embedded: true,
    title: "Sherpa",
    subtitle: "Ridgeline Outfitters support",
    inputTextFieldHint: "Ask about an order, returns, or which tent to buy…",
    connectingText: "Connecting to Sherpa…",
    hideWhenNotConnected: false,
    params: { storage: "local" },
    customMessageDelay: () => 300,
    onSocketEvent: {
      connect_error: () => showError(`Could not reach the assistant at ${rasaUrl}. Is \`make run\` running?`),
      connect: () => { errorBox.hidden = true; },
    },
  }, document.getElementById("webchat"));

  // "Sherpa is typing…" while the visitor waits: from their message until the next reply. The
  // widget shows its own dots only between replies that have already arrived; an answer from the
  // LLM takes seconds. The last message group in the conversation says who spoke last. A reply
  // never comes later than Rasa's 60 s conversation lock, so the indicator gives up then.
  const typing = document.getElementById("typing");
  const TYPING_GIVE_UP_MS = 60000;
  let givingUp = null;
  function visitorIsWaiting() {
    const groups = document.querySelectorAll("#webchat .rw-group-message");
    const last = groups[groups.length - 1];
    return Boolean(last && last.classList.contains("rw-from-client"));
  }
  function updateTyping() {
    const waiting = visitorIsWaiting();
    if (waiting === !typing.hidden) return;
    typing.hidden = !waiting;
    clearTimeout(givingUp);
    if (waiting) givingUp = setTimeout(() => { typing.hidden = true; }, TYPING_GIVE_UP_MS);
  }
  new MutationObserver(updateTyping).observe(document.getElementById("webchat"), { childList: true, subtree: true });

  document.getElementById("new-chat").addEventListener("click", () => {
    localStorage.removeItem("chat_session");
    location.reload();
  });
})();
