// Minimal webchat over Rasa's REST channel. The session id lives in localStorage,
// so a reload continues the same conversation and shows its history.
(function () {
  "use strict";
  const rasaUrl = (new URLSearchParams(location.search).get("rasa") || window.RASA_URL || "http://localhost:5005")
    .replace(/\/$/, "");
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const storageKey = "ridgeline-chat-session";

  function sessionId() {
    let id = localStorage.getItem(storageKey);
    if (!id) {
      id = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
      localStorage.setItem(storageKey, id);
    }
    return id;
  }

  function show(text, kind) {
    const item = document.createElement("li");
    item.className = "msg msg--" + kind;
    item.textContent = text;
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  async function loadHistory() {
    try {
      const response = await fetch(`${rasaUrl}/conversations/${encodeURIComponent(sessionId())}/tracker`);
      if (!response.ok) return;
      const tracker = await response.json();
      for (const event of tracker.events || []) {
        if (event.event === "user" && event.text) show(event.text, "user");
        if (event.event === "bot" && event.text) show(event.text, "bot");
      }
    } catch (error) { /* no history yet, or Rasa not reachable: the first send says so */ }
  }

  async function send(text) {
    show(text, "user");
    try {
      const response = await fetch(`${rasaUrl}/webhooks/rest/webhook`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: sessionId(), message: text }),
      });
      if (!response.ok) throw new Error(`Rasa answered HTTP ${response.status}`);
      const replies = await response.json();
      for (const reply of replies) {
        if (reply.text) show(reply.text, "bot");
        if (reply.image) show(reply.image, "bot");
      }
    } catch (error) {
      show(`Could not reach the assistant at ${rasaUrl} (${error.message}). Is \`make run\` running?`, "error");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    input.value = "";
    if (text) send(text);
  });
  document.getElementById("new-chat").addEventListener("click", () => {
    localStorage.removeItem(storageKey);
    list.innerHTML = "";
  });
  loadHistory();
})();
