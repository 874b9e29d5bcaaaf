/*
 * Switchboard chat widget: one tag adds a chat launcher and panel to any page.
 *
 *   <script src="https://HOST/widget.js" data-title="Kestrel Mobile" data-color="#0b6e4f"></script>
 *
 * Optional: data-greeting, and for a signed-in customer data-customer-id, data-customer-expires
 * (unix seconds, at most 24 hours ahead) and data-customer-hash = hex(HMAC-SHA256(key = widget
 * secret, message = "<customer id>.<expires>")), computed by the operator's backend.
 *
 * Plain JavaScript, no framework, no build step. Renders into a shadow root. Every text from the
 * customer, the assistant or an agent is set with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__switchboardWidget) {
    return;
  }
  window.__switchboardWidget = true;

  var CSS = "__SWITCHBOARD_WIDGET_CSS__";
  var MAX_TEXT_CHARS = 4000;

  var data = script.dataset || {};
  var apiBase = new URL(script.src, window.location.href).origin;
  var config = {
    title: (data.title || "Chat with us").slice(0, 80),
    color: data.color || "",
    greeting: data.greeting || "Hello! I'm the virtual assistant. Ask me about bills, plans, data, roaming or a problem with your phone.",
    customerId: data.customerId || "",
    customerExpires: parseInt(data.customerExpires || "", 10),
    customerHash: data.customerHash || ""
  };
  var storageKey = "switchboard:" + apiBase + ":" + (config.customerId || "guest");

  var state = {
    conversationId: null,
    lastSeq: null,
    source: null,
    streamReady: false,
    readyWaiters: [],
    reconnectDelay: 1000,
    reconnectTimer: null,
    busy: false,
    streaming: null,
    started: false
  };

  // ------------------------------------------------------------------ storage

  function loadId() {
    try {
      return window.localStorage.getItem(storageKey);
    } catch (e) {
      return null;
    }
  }

  function saveId(id) {
    try {
      if (id) {
        window.localStorage.setItem(storageKey, id);
      } else {
        window.localStorage.removeItem(storageKey);
      }
    } catch (e) {
      /* storage disabled: the conversation lasts as long as the page */
    }
  }

  // ------------------------------------------------------------------ DOM

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        node.setAttribute(name, attrs[name]);
      });
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  var host = el("div", { id: "switchboard-widget" });
  var root = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = CSS;
  root.appendChild(style);
  if (config.color && window.CSS && window.CSS.supports && window.CSS.supports("color", config.color)) {
    host.style.setProperty("--sb-accent", config.color);
  }

  var launcher = el("button", {
    type: "button",
    class: "launcher",
    "aria-label": "Open chat: " + config.title,
    "aria-expanded": "false",
    "aria-controls": "sb-panel"
  });
  var svgNs = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNs, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(svgNs, "path");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
  icon.appendChild(path);
  launcher.appendChild(icon);

  var panel = el("section", { class: "panel", id: "sb-panel", role: "dialog", "aria-labelledby": "sb-title", hidden: "" });
  var header = el("div", { class: "header" });
  var title = el("h2", { id: "sb-title" }, config.title);
  var restart = el("button", { type: "button", class: "restart", "aria-label": "Start a new conversation" }, "New chat");
  var close = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "\u00d7");
  header.appendChild(title);
  header.appendChild(restart);
  header.appendChild(close);

  var connection = el("div", { class: "connection", role: "status" });
  var messages = el("ol", { class: "messages", "aria-label": "Conversation" });
  var live = el("div", { class: "sr-only live", "aria-live": "polite", "aria-atomic": "false" });

  var form = el("form", { class: "composer" });
  var label = el("label", { for: "sb-input", class: "sr-only" }, "Type your message");
  var input = el("textarea", {
    id: "sb-input",
    rows: "1",
    maxlength: String(MAX_TEXT_CHARS),
    placeholder: "Type your message\u2026",
    autocomplete: "off"
  });
  var send = el("button", { type: "submit", class: "send", "aria-label": "Send message" }, "Send");
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(send);
  var footer = el("div", { class: "footer" }, "Press Enter to send, Shift+Enter for a new line, Esc to close.");

  panel.appendChild(header);
  panel.appendChild(connection);
  panel.appendChild(messages);
  panel.appendChild(live);
  panel.appendChild(form);
  panel.appendChild(footer);
  root.appendChild(panel);
  root.appendChild(launcher);

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) {
    mount();
  } else {
    document.addEventListener("DOMContentLoaded", mount);
  }

  // ------------------------------------------------------------------ rendering

  function scrollDown() {
    messages.scrollTop = messages.scrollHeight;
  }

  function announce(text) {
    var line = el("p", null, text);
    live.appendChild(line);
    while (live.childNodes.length > 5) {
      live.removeChild(live.firstChild);
    }
  }

  function addMessage(role, text, who) {
    var item = el("li", { class: "msg msg-" + role });
    if (who) {
      item.appendChild(el("span", { class: "who" }, who));
    }
    item.appendChild(el("div", { class: "bubble" }, text));
    messages.appendChild(item);
    scrollDown();
    return item;
  }

  function clearChoices() {
    var groups = messages.querySelectorAll(".choices");
    Array.prototype.forEach.call(groups, function (group) {
      group.parentNode.removeChild(group);
    });
  }

  function renderSources(item, sources) {
    if (!sources || !sources.length) {
      return;
    }
    var list = el("ul", { class: "sources", "aria-label": "Sources" });
    var seen = {};
    sources.forEach(function (source) {
      var name = String(source.document || "");
      var section = String(source.section || "");
      var key = name + "\u0000" + section;
      if (!name || seen[key]) {
        return;
      }
      seen[key] = true;
      var entry = el("li");
      var text = "[" + (list.childNodes.length + 1) + "] " + name + (section ? " \u00b7 " + section : "");
      entry.appendChild(el("cite", { title: "Source: " + name + (section ? ", section " + section : "") }, text));
      list.appendChild(entry);
    });
    if (list.childNodes.length) {
      item.appendChild(list);
    }
  }

  function choicesOf(turn) {
    if (turn.choices && turn.choices.length) {
      return turn.choices;
    }
    if (turn.awaiting === "confirmation") {
      return [{ label: "Yes", value: "Yes" }, { label: "No", value: "No" }];
    }
    return [];
  }

  function renderChoices(item, choices) {
    if (!choices.length) {
      return;
    }
    var group = el("div", { class: "choices", role: "group", "aria-label": "Quick replies" });
    choices.forEach(function (choice) {
      var button = el("button", { type: "button", class: "choice" }, choice.label);
      if (choice.description) {
        button.setAttribute("title", choice.description);
        button.setAttribute("aria-label", choice.label + ", " + choice.description);
      }
      button.addEventListener("click", function () {
        if (state.busy) {
          return;
        }
        clearChoices();
        submit(String(choice.value));
        input.focus();
      });
      group.appendChild(button);
    });
    item.appendChild(group);
  }

  function renderLinks(item, links) {
    (links || []).forEach(function (link) {
      // Only paths on the chat's own server (verification pages), opened beside the chat.
      if (typeof link.url !== "string" || link.url.charAt(0) !== "/" || link.url.charAt(1) === "/") {
        return;
      }
      item.appendChild(el("a", { class: "link", href: apiBase + link.url, target: "_blank", rel: "noopener noreferrer" }, link.label));
    });
  }

  var typing = null;

  function showTyping() {
    if (typing) {
      return;
    }
    typing = el("li", { class: "typing", role: "status", "aria-label": "The assistant is typing" });
    for (var i = 0; i < 3; i++) {
      typing.appendChild(el("span", { "aria-hidden": "true" }));
    }
    messages.appendChild(typing);
    scrollDown();
  }

  function hideTyping() {
    if (typing && typing.parentNode) {
      typing.parentNode.removeChild(typing);
    }
    typing = null;
  }

  function onToken(text) {
    if (!state.busy) {
      return;
    }
    if (!state.streaming) {
      hideTyping();
      var item = addMessage("assistant", "", "Assistant");
      item.setAttribute("aria-busy", "true");
      item.setAttribute("data-tokens", "0");
      state.streaming = item;
    }
    var bubble = state.streaming.querySelector(".bubble");
    bubble.textContent += text;
    state.streaming.setAttribute("data-tokens", String(Number(state.streaming.getAttribute("data-tokens")) + 1));
    scrollDown();
  }

  function seen(seq) {
    return typeof seq === "number" && state.lastSeq !== null && seq <= state.lastSeq;
  }

  function noteSeq(seq) {
    if (typeof seq === "number" && (state.lastSeq === null || seq > state.lastSeq)) {
      state.lastSeq = seq;
    }
  }

  /** Shows a turn once, whether it came from the stream or from the POST response. */
  function renderTurn(turn, live) {
    if (!turn || seen(turn.seq)) {
      return;
    }
    noteSeq(turn.seq);
    hideTyping();
    var reply = String(turn.reply || "");
    var item = state.streaming;
    state.streaming = null;
    if (!reply) {
      if (item) {
        item.parentNode.removeChild(item);
      }
      finishBusy();
      return;
    }
    if (item) {
      item.removeAttribute("aria-busy");
      item.setAttribute("data-streamed", "true");
      // The final reply may differ from the streamed draft (the grounding check can replace it).
      item.querySelector(".bubble").textContent = reply;
    } else {
      item = addMessage("assistant", reply, "Assistant");
    }
    item.setAttribute("data-seq", String(turn.seq));
    renderSources(item, turn.sources);
    clearChoices();
    renderChoices(item, choicesOf(turn));
    renderLinks(item, turn.links);
    if (turn.handoff) {
      addMessage("notice", "You are being connected with a member of our team.");
    }
    if (live !== false) {
      announce("Assistant: " + reply);
    }
    scrollDown();
    finishBusy();
  }

  function renderAgentMessage(message) {
    if (!message || seen(message.seq)) {
      return;
    }
    noteSeq(message.seq);
    var who = (message.agent ? String(message.agent) : "Agent") + " (team member)";
    var item = addMessage("agent", String(message.text || ""), who);
    item.setAttribute("data-seq", String(message.seq));
    announce(who + ": " + message.text);
  }

  // ------------------------------------------------------------------ HTTP

  function api(method, path, body) {
    var options = { method: method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(apiBase + path, options).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch (e) {
          json = null;
        }
        return { status: response.status, body: json };
      });
    });
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    return "m-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function createConversation() {
    var body = { channel: "web" };
    if (config.customerId && config.customerHash) {
      body.customer_id = config.customerId;
      body.customer_hash = config.customerHash;
      if (config.customerExpires > 0) {
        body.customer_expires = config.customerExpires;
      }
    }
    return api("POST", "/api/v1/conversations", body).then(function (response) {
      if (response.status !== 200 || !response.body || !response.body.id) {
        throw new Error((response.body && response.body.error && response.body.error.message) || "the chat is not available right now");
      }
      state.conversationId = response.body.id;
      state.lastSeq = null;
      saveId(state.conversationId);
      connect();
      return state.conversationId;
    });
  }

  // ------------------------------------------------------------------ stream

  function waitForStream(ms) {
    if (state.streamReady) {
      return Promise.resolve();
    }
    return new Promise(function (resolve) {
      var timer = setTimeout(resolve, ms);
      state.readyWaiters.push(function () {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  function connect() {
    if (!state.conversationId || !window.EventSource) {
      return;
    }
    if (state.source) {
      state.source.close();
    }
    clearTimeout(state.reconnectTimer);
    state.streamReady = false;
    var url = apiBase + "/api/v1/conversations/" + encodeURIComponent(state.conversationId) + "/stream";
    if (state.lastSeq !== null) {
      url += "?after=" + state.lastSeq;
    }
    var source = new EventSource(url);
    state.source = source;
    source.addEventListener("ready", function () {
      state.streamReady = true;
      state.reconnectDelay = 1000;
      connection.textContent = "";
      var waiters = state.readyWaiters;
      state.readyWaiters = [];
      waiters.forEach(function (resolve) {
        resolve();
      });
    });
    source.addEventListener("token", function (event) {
      var payload = parse(event.data);
      if (payload && typeof payload.text === "string") {
        onToken(payload.text);
      }
    });
    source.addEventListener("turn", function (event) {
      renderTurn(parse(event.data));
    });
    source.addEventListener("agent_message", function (event) {
      renderAgentMessage(parse(event.data));
    });
    source.onerror = function () {
      // Reconnect ourselves, resuming after the last event shown (missed ones are replayed).
      source.close();
      if (state.source !== source) {
        return;
      }
      state.source = null;
      state.streamReady = false;
      connection.textContent = "Connection lost. Reconnecting\u2026";
      state.reconnectTimer = setTimeout(connect, state.reconnectDelay);
      state.reconnectDelay = Math.min(state.reconnectDelay * 2, 15000);
    };
  }

  function parse(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  }

  window.addEventListener("online", function () {
    if (state.conversationId && !state.streamReady) {
      state.reconnectDelay = 1000;
      connect();
    }
  });

  // ------------------------------------------------------------------ sending

  function setBusy(busy) {
    state.busy = busy;
    send.disabled = busy;
    panel.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function finishBusy() {
    if (state.busy) {
      setBusy(false);
    }
  }

  function showError(message) {
    hideTyping();
    if (state.streaming) {
      state.streaming.parentNode.removeChild(state.streaming);
      state.streaming = null;
    }
    var item = addMessage("error", message);
    item.classList.add("msg-notice");
    announce(message);
    finishBusy();
  }

  /** Posts a message, resending with the same client id after a dropped connection. */
  function postMessage(text, clientId) {
    var attempt = 0;
    function tryOnce() {
      attempt += 1;
      var path = "/api/v1/conversations/" + encodeURIComponent(state.conversationId) + "/messages";
      return api("POST", path, { text: text, client_message_id: clientId }).then(
        function (response) {
          if (response.status === 200) {
            return response.body;
          }
          if (response.status === 409 || response.status === 503 || response.status >= 500) {
            // Still being answered, or the server is busy: the turn may also come on the stream.
            if (attempt >= 8) {
              throw new Error("the assistant is not answering right now; please try again in a moment");
            }
            return sleep(Math.min(500 * attempt, 4000)).then(function () {
              return state.busy ? tryOnce() : null;
            });
          }
          var message = response.body && response.body.error ? response.body.error.message : "the message could not be sent";
          var error = new Error(message);
          error.status = response.status;
          throw error;
        },
        function () {
          if (attempt >= 8) {
            throw new Error("the connection is down; please check your network and try again");
          }
          connection.textContent = "Connection lost. Retrying\u2026";
          return sleep(Math.min(1000 * attempt, 5000)).then(tryOnce);
        }
      );
    }
    return tryOnce();
  }

  function submit(raw) {
    var text = String(raw || "").trim();
    if (!text || state.busy) {
      return;
    }
    if (text.length > MAX_TEXT_CHARS) {
      showError("That message is too long. Please keep it under " + MAX_TEXT_CHARS + " characters.");
      return;
    }
    clearChoices();
    addMessage("customer", text, "You");
    setBusy(true);
    showTyping();
    var clientId = newClientId();
    var ensure = state.conversationId ? Promise.resolve(state.conversationId) : createConversation();
    ensure
      .then(function () {
        return waitForStream(3000);
      })
      .then(function () {
        return postMessage(text, clientId);
      })
      .then(
        function (turn) {
          connection.textContent = state.streamReady || !window.EventSource ? "" : connection.textContent;
          if (turn) {
            renderTurn(turn);
          }
          // Shown already (from the stream) or empty (a human agent holds the conversation).
          hideTyping();
          finishBusy();
        },
        function (error) {
          if (error && error.status === 404) {
            // The conversation is gone (the server forgot it): start a new one and resend once.
            forget();
            setBusy(false);
            submitAgain(text);
            return;
          }
          showError("Sorry, " + ((error && error.message) || "something went wrong") + ".");
        }
      );
  }

  function submitAgain(text) {
    messages.removeChild(messages.lastChild);
    hideTyping();
    submit(text);
  }

  function forget() {
    if (state.source) {
      state.source.close();
      state.source = null;
    }
    state.conversationId = null;
    state.lastSeq = null;
    state.streamReady = false;
    saveId(null);
  }

  // ------------------------------------------------------------------ restore

  function restore(id) {
    return api("GET", "/api/v1/conversations/" + encodeURIComponent(id)).then(
      function (response) {
        if (response.status !== 200 || !response.body) {
          if (response.status === 404) {
            saveId(null);
          }
          greet();
          return;
        }
        state.conversationId = id;
        var conversation = response.body;
        var items = conversation.messages || [];
        if (!items.length) {
          greet();
        }
        items.forEach(function (message) {
          if (message.role === "customer") {
            addMessage("customer", message.text, "You").setAttribute("data-seq", String(message.seq));
          } else if (message.role === "agent") {
            renderAgentMessage(message);
          } else if (message.role === "assistant") {
            var turn = message.turn || { reply: message.text };
            turn.seq = message.seq;
            renderTurn(turn, false);
          }
          noteSeq(message.seq);
        });
        noteSeq(conversation.last_seq);
        clearChoices();
        var last = messages.lastElementChild;
        if (last && last.classList.contains("msg-assistant") && conversation.state) {
          var pending = items.length ? items[items.length - 1].turn : null;
          renderChoices(last, choicesOf(pending || conversation.state));
        }
        connect();
      },
      function () {
        greet();
        connection.textContent = "The chat is offline. We'll keep trying.";
      }
    );
  }

  function greet() {
    if (!messages.querySelector(".msg-greeting")) {
      addMessage("assistant", config.greeting, "Assistant").classList.add("msg-greeting");
    }
  }

  function start() {
    if (state.started) {
      return;
    }
    state.started = true;
    var id = loadId();
    if (id) {
      restore(id);
    } else {
      greet();
    }
  }

  // ------------------------------------------------------------------ open, close, keys

  function open() {
    start();
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
    scrollDown();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", open);
  close.addEventListener("click", closePanel);
  restart.addEventListener("click", function () {
    forget();
    setBusy(false);
    hideTyping();
    while (messages.firstChild) {
      messages.removeChild(messages.firstChild);
    }
    greet();
    input.focus();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim() || state.busy) {
      return;
    }
    input.value = "";
    submit(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      closePanel();
    }
  });

  // Reopen after a reload when the customer had the chat open.
  window.Switchboard = {
    open: open,
    close: closePanel
  };
})();
