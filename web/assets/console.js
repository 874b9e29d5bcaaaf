// Switchboard agent console: the live queue, the conversation view and the assist panel.
// Plain JavaScript, no framework, no build step.
//
// Safety: everything a customer (or anyone) wrote is put into the page with textContent. The
// only HTML this script inserts is the customer panel fragment, which the server renders with
// askama (every value escaped). State-changing calls send the session's CSRF token in the
// X-CSRF-Token header; the page's Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const pageName = document.body.dataset.page;

  // ------------------------------------------------------------------ helpers

  /** Creates an element; `text` becomes its textContent, other keys attributes. */
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child) node.append(child);
    }
    return node;
  }

  let flashTimer = null;
  function flash(message, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.dataset.kind = kind || "info";
    box.classList.add("shown");
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => box.classList.remove("shown"), kind === "error" ? 8000 : 4000);
  }

  /** A JSON call; throws an Error carrying the API's message. 401 goes to the sign-in page. */
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") {
      headers["X-CSRF-Token"] = csrfToken;
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    const response = await fetch(url, init);
    if (response.status === 401) {
      window.location.assign("/console/login");
      throw new Error("your session ended; sign in again");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      error.status = response.status;
      error.code = data && data.error && data.error.code;
      throw error;
    }
    return data;
  }

  function durationLabel(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    if (seconds < 86400) {
      const minutes = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
      return `${Math.floor(seconds / 3600)} h ${minutes} min`;
    }
    return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
  }

  /** Keeps "waiting" cells current between updates. */
  function refreshWaitingTimes() {
    const now = Date.now();
    for (const cell of document.querySelectorAll("td.waiting[data-since]")) {
      const since = Date.parse(cell.dataset.since);
      if (!Number.isNaN(since)) cell.textContent = durationLabel((now - since) / 1000);
    }
  }

  function setLiveState(state, text) {
    const badge = document.getElementById("live-state");
    if (!badge) return;
    badge.dataset.state = state;
    badge.textContent = text;
  }

  // ------------------------------------------------------------------ queue and dashboard

  function queueRow(row) {
    const customer = el("td", { className: "customer" }, [el("a", { href: row.href, text: row.customer })]);
    if (row.flagged) {
      customer.append(" ", el("span", { className: "badge warn", text: "flagged", title: "The assistant failed to understand the customer repeatedly" }));
    }
    const waiting = el("td", { className: "waiting", "data-since": row.waiting_since, text: row.snoozed_until || row.waiting });
    const withCell = el("td", {}, row.holder
      ? [document.createTextNode(row.holder)]
      : [
          el("span", { className: "muted", text: "assistant" }),
          row.assignee ? el("span", { className: "small muted", text: ` · assigned to ${row.assignee}` }) : null,
        ]);
    return el("tr", { "data-id": row.id, className: row.flagged ? "flagged" : "" }, [
      customer,
      el("td", {}, [el("span", { className: `channel channel-${row.channel}`, text: row.channel })]),
      el("td", { text: row.intent }),
      el("td", {}, [el("span", { className: `badge status-${row.status}`, text: row.status_label })]),
      waiting,
      el("td", { className: "summary", title: row.summary, text: row.summary }),
      withCell,
    ]);
  }

  function renderQueue(queue) {
    for (const section of ["waiting", "active", "snoozed"]) {
      const rows = queue[section] || [];
      const body = document.querySelector(`tbody[data-section="${section}"]`);
      if (body) body.replaceChildren(...rows.map(queueRow));
      const count = document.querySelector(`[data-count="${section}"]`);
      if (count) count.textContent = String(rows.length);
      const empty = document.querySelector(`[data-empty="${section}"]`);
      if (empty) empty.hidden = rows.length > 0;
    }
    refreshWaitingTimes();
  }

  function renderNumbers(numbers) {
    for (const [key, value] of Object.entries(numbers || {})) {
      for (const node of document.querySelectorAll(`[data-number="${key}"]`)) node.textContent = String(value);
    }
  }

  function liveQueue() {
    const source = new EventSource("/console/api/queue/stream");
    source.addEventListener("open", () => setLiveState("live", "Live"));
    source.addEventListener("error", () => setLiveState("reconnecting", "Reconnecting…"));
    source.addEventListener("queue", (event) => renderQueue(JSON.parse(event.data)));
    source.addEventListener("numbers", (event) => renderNumbers(JSON.parse(event.data)));
    source.addEventListener("signed_out", () => {
      source.close();
      window.location.assign("/console/login");
    });
    setInterval(refreshWaitingTimes, 15000);
  }

  // ------------------------------------------------------------------ conversation

  function conversationPage() {
    const root = document.getElementById("conversation");
    const id = root.dataset.id;
    const base = `/console/api/conversations/${encodeURIComponent(id)}`;
    const transcript = document.getElementById("transcript");
    const composer = document.getElementById("composer");
    const text = document.getElementById("composer-text");
    const cannedList = document.getElementById("canned-matches");
    const dialog = document.getElementById("confirm-action");
    const confirmText = document.getElementById("confirm-text");
    const confirmError = document.getElementById("confirm-error");
    const confirmGo = document.getElementById("confirm-go");
    const buttons = {
      takeOver: document.getElementById("take-over"),
      handBack: document.getElementById("hand-back"),
      close: document.getElementById("close"),
      snooze: document.getElementById("snooze"),
      assign: document.getElementById("assign"),
      assignMe: document.getElementById("assign-me"),
      send: document.getElementById("send"),
    };
    let header = {
      status: root.dataset.status,
      holder: root.dataset.holder,
      held_by_me: root.dataset.heldByMe === "true",
    };

    function scrollToEnd() {
      transcript.scrollTop = transcript.scrollHeight;
    }

    function renderItem(item) {
      if (!item || transcript.querySelector(`li[data-seq="${item.seq}"]`)) return;
      const meta = el("div", { className: "msg-meta" }, [
        el("span", { className: "author", text: item.author }),
        document.createTextNode(" "),
        el("time", { datetime: item.at, text: item.time }),
      ]);
      if (item.kind === "note") meta.append(" ", el("span", { className: "badge", text: "private note" }));
      const entry = el("li", { className: `msg msg-${item.kind}`, "data-seq": item.seq }, [
        meta,
        el("div", { className: "bubble", text: item.text }),
      ]);
      if (item.sources && item.sources.length) {
        entry.append(el("ul", { className: "sources" }, item.sources.map((source) => el("li", { text: source }))));
      }
      // Keep the log order even when a live item and a reply to our own call cross.
      const later = [...transcript.children].find((node) => Number(node.dataset.seq) > item.seq);
      transcript.insertBefore(entry, later || null);
      scrollToEnd();
    }

    function setButtons(state) {
      buttons.takeOver.disabled = state.held_by_me;
      buttons.handBack.disabled = !state.holder;
      buttons.close.disabled = state.status === "resolved";
      buttons.snooze.disabled = state.status === "resolved";
    }

    function applyHeader(next) {
      header = next;
      const badge = document.getElementById("status-badge");
      badge.className = `badge status-${next.status}`;
      badge.textContent = next.status_label;
      document.getElementById("holder-label").textContent = next.holder ? `with ${next.holder}` : "with the assistant";
      document.getElementById("csat-label").textContent = next.csat ? `CSAT ${next.csat}` : "";
      root.dataset.status = next.status;
      root.dataset.holder = next.holder;
      root.dataset.heldByMe = String(next.held_by_me);
      setButtons(next);
      const select = document.getElementById("assign-to");
      if (select && document.activeElement !== select) select.value = next.assignee || "";
    }

    async function change(path, body, done) {
      try {
        const result = await api("POST", `${base}/${path}`, body);
        if (result.item) renderItem(result.item);
        if (result.header) applyHeader(result.header);
        if (done) flash(done);
        return result;
      } catch (error) {
        flash(error.message, "error");
        return null;
      }
    }

    // Live transcript, header and panel.
    const after = root.dataset.lastSeq;
    const source = new EventSource(`${base}/stream${after !== "" ? `?after=${encodeURIComponent(after)}` : ""}`);
    let suggestionTimer = null;
    source.addEventListener("item", (event) => {
      const item = JSON.parse(event.data);
      renderItem(item);
      if (item.kind === "customer") {
        // A new customer message: new suggestions, once the burst is over.
        clearTimeout(suggestionTimer);
        suggestionTimer = setTimeout(() => loadSuggestions(), 1500);
      }
    });
    source.addEventListener("header", (event) => applyHeader(JSON.parse(event.data)));
    source.addEventListener("panel", () => refreshPanel());
    source.addEventListener("signed_out", () => {
      source.close();
      window.location.assign("/console/login");
    });
    setButtons(header);
    scrollToEnd();

    // Controls.
    buttons.takeOver.addEventListener("click", () => change("take-over", {}, "You hold the conversation; the assistant is silent."));
    buttons.handBack.addEventListener("click", () => change("hand-back", {}, "Handed back to the assistant."));
    buttons.close.addEventListener("click", () => {
      if (window.confirm("Resolve the conversation and ask the customer for a rating?")) {
        change("close", {}, "Resolved; the customer was asked for a rating.");
      }
    });
    buttons.snooze.addEventListener("click", () => {
      const minutes = Number(document.getElementById("snooze-minutes").value);
      change("snooze", { minutes }, "Snoozed.");
    });
    buttons.assign.addEventListener("click", () => {
      const agent = document.getElementById("assign-to").value;
      change("assign", { agent: agent || null }, agent ? `Assigned to ${agent}.` : "Unassigned.");
    });
    buttons.assignMe.addEventListener("click", () => change("assign", { agent: document.body.dataset.agent }, "Assigned to you."));

    // Composer: reply or private note; Ctrl+Enter sends; /code inserts a canned response.
    let canned = [];
    api("GET", "/console/api/canned").then((rows) => (canned = rows || [])).catch(() => {});

    function mode() {
      const checked = composer.querySelector('input[name="mode"]:checked');
      return checked ? checked.value : "message";
    }

    function cannedMatches() {
      const value = text.value;
      if (!value.startsWith("/") || /\s/.test(value)) return [];
      const typed = value.slice(1).toLowerCase();
      return canned.filter((row) => row.code.startsWith(typed)).slice(0, 6);
    }

    function insertCanned(row) {
      text.value = row.text;
      cannedList.hidden = true;
      text.focus();
    }

    function showCanned() {
      const matches = cannedMatches();
      cannedList.hidden = matches.length === 0;
      cannedList.replaceChildren(
        ...matches.map((row) => {
          const pick = el("button", { type: "button" }, [el("code", { text: row.shortcode }), document.createTextNode(` ${row.text}`)]);
          pick.addEventListener("click", () => insertCanned(row));
          return el("li", {}, [pick]);
        }),
      );
    }

    text.addEventListener("input", showCanned);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        composer.requestSubmit();
      } else if (event.key === "Tab" && !cannedList.hidden) {
        const matches = cannedMatches();
        if (matches.length) {
          event.preventDefault();
          insertCanned(matches[0]);
        }
      } else if (event.key === "Escape") {
        cannedList.hidden = true;
      }
    });

    composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = text.value.trim();
      if (!body) {
        flash("Write something first.", "error");
        return;
      }
      buttons.send.disabled = true;
      const asNote = mode() === "note";
      const result = await change(asNote ? "notes" : "messages", { text: body }, asNote ? "Note saved (private)." : "Sent.");
      buttons.send.disabled = false;
      if (result) {
        text.value = "";
        cannedList.hidden = true;
        if (!asNote) loadSuggestions();
      }
      text.focus();
    });

    for (const radio of composer.querySelectorAll('input[name="mode"]')) {
      radio.addEventListener("change", () => {
        composer.classList.toggle("note-mode", mode() === "note");
        buttons.send.textContent = mode() === "note" ? "Save note" : "Send";
      });
    }

    // Keyboard: Alt+T takes over (from anywhere on the page).
    document.addEventListener("keydown", (event) => {
      if (event.altKey && !event.ctrlKey && !event.metaKey && (event.code === "KeyT" || event.key === "t" || event.key === "T")) {
        event.preventDefault();
        if (!buttons.takeOver.disabled) buttons.takeOver.click();
      }
    });

    // Suggested replies.
    const suggestions = document.getElementById("suggestions");
    function useSuggestion(suggestion) {
      text.value = suggestion.text;
      const reply = composer.querySelector('input[name="mode"][value="message"]');
      if (reply) {
        reply.checked = true;
        reply.dispatchEvent(new Event("change"));
      }
      text.focus();
      text.setSelectionRange(text.value.length, text.value.length);
    }
    async function loadSuggestions() {
      try {
        const data = await api("GET", `${base}/suggestions`);
        const list = data.suggestions || [];
        if (!list.length) {
          suggestions.replaceChildren(el("li", { className: "muted", text: "No suggestion for this conversation." }));
          return;
        }
        suggestions.replaceChildren(
          ...list.map((suggestion) => {
            const use = el("button", { type: "button", className: "small use-suggestion", text: "Use" });
            use.addEventListener("click", () => useSuggestion(suggestion));
            const item = el("li", { className: "suggestion", "data-origin": suggestion.origin }, [
              el("div", { className: "suggestion-head" }, [el("span", { className: "badge", text: suggestion.origin.replace("_", " ") }), use]),
              el("p", { text: suggestion.text }),
            ]);
            if (suggestion.sources && suggestion.sources.length) {
              item.append(el("ul", { className: "sources" }, suggestion.sources.map((s) => el("li", { text: s }))));
            }
            return item;
          }),
        );
      } catch (error) {
        suggestions.replaceChildren(el("li", { className: "muted", text: `No suggestions: ${error.message}` }));
      }
    }
    loadSuggestions();

    // The checked model summary replaces the one read off the log when it is ready.
    api("GET", `${base}/summary`)
      .then((data) => {
        if (data && data.summary) {
          const summary = document.getElementById("summary");
          summary.textContent = data.summary;
          summary.dataset.state = data.source;
        }
      })
      .catch(() => {});

    // Knowledge search.
    const results = document.getElementById("kb-results");
    document.getElementById("kb-search").addEventListener("submit", async (event) => {
      event.preventDefault();
      const query = document.getElementById("kb-query").value.trim();
      if (!query) return;
      results.replaceChildren(el("li", { className: "muted", text: "Searching…" }));
      try {
        const data = await api("GET", `/console/api/knowledge?q=${encodeURIComponent(query)}`);
        const list = data.results || [];
        if (!list.length) {
          results.replaceChildren(el("li", { className: "muted", text: "Nothing found." }));
          return;
        }
        results.replaceChildren(
          ...list.map((result) => {
            const insert = el("button", { type: "button", className: "small", text: "Insert" });
            insert.addEventListener("click", () => {
              text.value = text.value ? `${text.value}\n${result.text}` : result.text;
              text.focus();
            });
            return el("li", {}, [
              el("div", { className: "suggestion-head" }, [el("strong", { text: result.section ? `${result.document} › ${result.section}` : result.document }), insert]),
              el("p", { text: result.text }),
            ]);
          }),
        );
      } catch (error) {
        results.replaceChildren(el("li", { className: "muted", text: error.message }));
      }
    });

    // The customer panel (server-rendered fragment) and its account actions.
    const panel = document.getElementById("panel");
    async function refreshPanel() {
      try {
        const response = await fetch(`${base}/panel`, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) return;
        const template = document.createElement("template");
        template.innerHTML = await response.text(); // escaped by the server's templates
        panel.replaceChildren(template.content);
      } catch (_) {
        /* the next update tries again */
      }
    }

    let pending = null;
    function actionArgs(button) {
      const customer = panel.querySelector("[data-customer]");
      const args = { customer_id: customer ? customer.dataset.customer : "" };
      if (button.dataset.line) args.line_id = button.dataset.line;
      if (button.dataset.bill) args.bill_id = button.dataset.bill;
      if (button.dataset.amount) args.gb_amount = Number(document.getElementById(button.dataset.amount).value);
      if (button.dataset.plan) args.plan_id = document.getElementById(button.dataset.plan).value;
      return args;
    }

    panel.addEventListener("click", async (event) => {
      const identity = event.target.closest("button.identity");
      if (identity) {
        const verb = identity.dataset.identity === "verify" ? "verify this customer" : "unlock this customer's verification";
        const reason = window.prompt(`Why do you ${verb}? (audited under your name)`);
        if (reason && reason.trim()) {
          await change(identity.dataset.identity, { reason: reason.trim() }, "Done.");
          refreshPanel();
        }
        return;
      }
      const button = event.target.closest("button.action");
      if (!button) return;
      button.disabled = true;
      try {
        const preview = await api("POST", `${base}/actions/preview`, { name: button.dataset.action, args: actionArgs(button) });
        pending = preview;
        confirmText.textContent = preview.description;
        confirmError.hidden = !preview.refusal;
        confirmError.textContent = preview.refusal ? `The policy refuses this now: ${preview.refusal}` : "";
        confirmGo.disabled = Boolean(preview.refusal);
        dialog.showModal();
        confirmGo.focus();
      } catch (error) {
        flash(error.message, "error");
      } finally {
        button.disabled = false;
      }
    });

    confirmGo.addEventListener("click", async (event) => {
      event.preventDefault();
      if (!pending) return;
      confirmGo.disabled = true;
      try {
        const done = await api("POST", `${base}/actions`, {
          name: pending.name,
          args: pending.args,
          idempotency_key: pending.idempotency_key,
        });
        dialog.close();
        flash(`${done.action} done.`);
        pending = null;
        refreshPanel();
      } catch (error) {
        confirmError.hidden = false;
        confirmError.textContent = error.message;
      } finally {
        confirmGo.disabled = false;
      }
    });
    dialog.addEventListener("close", () => {
      pending = null;
    });
  }

  // ------------------------------------------------------------------ start

  if (pageName === "queue" || pageName === "dashboard") {
    liveQueue();
  } else if (pageName === "conversation") {
    conversationPage();
  }
})();
