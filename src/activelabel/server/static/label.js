// The labeling page's behaviour: keyboard shortcuts, the guidelines and history panels, the heartbeat
// that keeps the served item ours, and errors that are shown instead of swallowed.
//
// No build step and no inline script (the Content-Security-Policy allows scripts from this server only):
// values come from data- attributes of #label-app, requests go through htmx, and every failure of a
// request is turned into a visible message by htmx's events:
//   - session ended (401, or a redirect to the login page): a link to log in again; the item stays on screen;
//   - the server unreachable or failing (network error, timeout, 5xx): the answer is resent with backoff
//     (the server stores an answer to one assignment once, so a resent answer is never counted twice);
//   - another refusal (403, 400, 404, 413, 422, ...): what the server said went wrong.
// While an answer is in flight or waiting to be resent, a key press says so rather than doing nothing.
(function () {
  "use strict";

  var app = document.getElementById("label-app");
  if (!app) return;
  var statusBox = document.getElementById("status");
  var guidelines = document.getElementById("guidelines");
  var historyPanel = document.getElementById("history");
  var historyButton = document.getElementById("history-button");
  var BACKOFF = [1, 2, 4, 8, 15, 30];  // seconds before each resend; the last one repeats

  var state = {
    inFlight: null,       // the answer form whose request is under way
    pending: null,        // {form, attempt, due, timer, tick}: an answer waiting to be resent
    sessionEnded: false
  };

  // ------------------------------------------------------------------ messages

  function clearStatus() {
    statusBox.hidden = true;
    statusBox.className = "status";
    statusBox.textContent = "";
  }

  // Show a message made of text pieces and elements (never HTML from a response).
  function say(kind, parts, id) {
    statusBox.textContent = "";
    statusBox.className = "status " + kind;
    if (id) statusBox.dataset.kind = id; else delete statusBox.dataset.kind;
    parts.forEach(function (part) {
      statusBox.appendChild(typeof part === "string" ? document.createTextNode(part) : part);
    });
    statusBox.hidden = false;
  }

  function flash() {
    statusBox.classList.remove("flash");
    void statusBox.offsetWidth;  // restart the animation
    statusBox.classList.add("flash");
  }

  function link(text, href) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function button(text, onClick, id) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "secondary small";
    b.textContent = text;
    if (id) b.id = id;
    b.addEventListener("click", onClick);
    return b;
  }

  function answerName(form) {
    return (form && form.dataset.answer) || "your answer";
  }

  // What the server said went wrong: the JSON "detail", else the text of an HTML page, else the status.
  function detailOf(xhr) {
    var type = xhr.getResponseHeader("content-type") || "";
    var body = xhr.responseText || "";
    if (type.indexOf("json") >= 0) {
      try {
        var detail = JSON.parse(body).detail;
        if (typeof detail === "string") return detail;
        if (Array.isArray(detail)) {
          return detail.map(function (d) {
            var where = d.loc && d.loc.length ? d.loc[d.loc.length - 1] + ": " : "";
            return where + d.msg;
          }).join("; ");
        }
      } catch (ignored) { /* not JSON after all: fall through */ }
    }
    if (type.indexOf("html") >= 0) {
      var doc = new DOMParser().parseFromString(body, "text/html");  // parsed, never run or shown as HTML
      var node = doc.querySelector(".error") || doc.querySelector("main") || doc.body;
      var text = node ? node.textContent.replace(/\s+/g, " ").trim() : "";
      if (text) return text.slice(0, 300);
    }
    return body.trim().slice(0, 300) || xhr.statusText || "no reason given";
  }

  // ------------------------------------------------------------------ the three kinds of failure

  function sessionEnded() {
    state.sessionEnded = true;
    cancelResend();
    say("error", ["Your session has ended, so this answer was not saved. The item stays here: ",
                  link("log in again", "/login"), " to go on labeling it."], "session");
  }

  function refused(xhr, form) {
    var what = form && form.matches(".answer") ? "“" + answerName(form) + "” was not saved: " : "";
    var detail = detailOf(xhr);
    var parts = ["The server refused this (" + xhr.status + "): " + what + detail + "."];
    if (xhr.status === 403 && /csrf/i.test(detail)) {
      parts.push(" Reload the page to get a fresh form: ");
      parts.push(link("reload", "/label"));
    }
    say("error", parts, "refused");
  }

  function unreachable(form, why) {
    if (!form || !form.matches("[data-retry]")) {  // only an answer is resent by itself
      var again = form && form.matches(".undo") ? " Press Z again when it is back." : "";
      say("error", [why + ": nothing was changed." + again], "unreachable");
      return;
    }
    var attempt = state.pending && state.pending.form === form ? state.pending.attempt + 1 : 0;
    cancelResend();
    var wait = BACKOFF[Math.min(attempt, BACKOFF.length - 1)];
    var pending = {form: form, attempt: attempt, due: Date.now() + wait * 1000, why: why};
    pending.timer = setTimeout(resend, wait * 1000);
    pending.tick = setInterval(showPending, 1000);
    state.pending = pending;
    showPending();
  }

  function showPending() {
    var p = state.pending;
    if (!p) return;
    var left = Math.max(0, Math.ceil((p.due - Date.now()) / 1000));
    say("error", [p.why + ". “" + answerName(p.form) + "” is kept and will be sent again in " + left + " s" +
                  (p.attempt ? " (try " + (p.attempt + 1) + ")" : "") + ". ",
                  button("Send now (R)", resend, "resend-now")], "unreachable");
  }

  function cancelResend() {
    if (!state.pending) return;
    clearTimeout(state.pending.timer);
    clearInterval(state.pending.tick);
  }

  function resend() {
    var p = state.pending;
    if (!p) return;
    clearTimeout(p.timer);
    clearInterval(p.tick);
    if (!document.body.contains(p.form)) { state.pending = null; return; }
    say("busy", ["Sending “" + answerName(p.form) + "” again…"], "resending");
    p.form.requestSubmit();  // htmx takes the submit over, with the same fields: the same answer
  }

  // ------------------------------------------------------------------ htmx's events

  document.body.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.detail.elt;
    if (!form.matches || !form.matches("form.answer, form.undo")) return;
    if (state.inFlight && state.inFlight !== form) {  // one answer at a time: a click says so too
      e.preventDefault();
      say("busy", ["Still sending “" + answerName(state.inFlight) + "”: wait a moment."], "busy");
      flash();
      return;
    }
    state.inFlight = form;
    document.body.classList.add("sending");
  });

  // The request of ``elt`` is over. Called from every outcome: htmx:afterRequest alone would not do, as it
  // fires on the form after the swap removed it from the page, so it never reaches this listener.
  function finished(elt) {
    if (elt && elt === state.inFlight) {
      state.inFlight = null;
      document.body.classList.remove("sending");
    }
  }

  document.body.addEventListener("htmx:afterRequest", function (e) { finished(e.detail.elt); });

  // A 401 answered with a redirect arrives as the login page with status 200: never swap that in.
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail.xhr;
    var asker = e.detail.requestConfig.elt;  // this event fires on the target (#work), not on the form
    finished(asker);
    var url = xhr.responseURL ? new URL(xhr.responseURL) : null;
    if (url && url.pathname === "/login") {
      e.detail.shouldSwap = false;
      e.detail.isError = false;
      sessionEnded();
      return;
    }
    if (xhr.status >= 200 && xhr.status < 300) succeeded(asker);
  });

  document.body.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    var form = e.detail.elt;
    finished(form);
    if (xhr.status === 401) sessionEnded();
    else if (xhr.status >= 500) unreachable(form, "The server had a problem (" + xhr.status + ")");
    else refused(xhr, form);
  });

  document.body.addEventListener("htmx:sendError", function (e) {
    finished(e.detail.elt);
    unreachable(e.detail.elt, "Cannot reach the server");
  });

  document.body.addEventListener("htmx:timeout", function (e) {
    finished(e.detail.elt);
    unreachable(e.detail.elt, "The server did not answer in time");
  });

  function succeeded(elt) {
    var wasPending = state.pending && state.pending.form === elt;
    var hadError = !statusBox.hidden && /error|busy/.test(statusBox.className);
    if (wasPending) { cancelResend(); state.pending = null; }
    state.sessionEnded = false;
    if (wasPending) {
      say("ok", ["Back in touch with the server: “" + answerName(elt) + "” was saved."], "recovered");
      setTimeout(function () { if (statusBox.dataset.kind === "recovered") clearStatus(); }, 5000);
    } else if (hadError && !state.pending) {
      clearStatus();
    }
  }

  // The history panel follows the answers while it is open.
  document.body.addEventListener("answered", function () {
    if (!historyPanel.hidden) htmx.trigger(historyPanel, "refresh");
  });
  // A suggestion that arrived after its item (the model was still loading) marks its button too.
  document.body.addEventListener("htmx:load", function (e) {
    var suggested = e.detail.elt;
    if (!suggested || suggested.id !== "suggestion") return;
    document.querySelectorAll("#buttons form.answer").forEach(function (form) {
      if (form.dataset.answer === suggested.dataset.label && form.querySelector("input[name=label]")) {
        form.querySelector("button").classList.add("suggested");
      }
    });
  });
  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "note-result") {
      var text = document.getElementById("note-text");
      if (text) text.value = "";
    }
  });

  // ------------------------------------------------------------------ panels

  function toggleGuidelines() {
    if (guidelines.open) guidelines.close(); else guidelines.showModal();
  }

  function toggleHistory() {
    historyPanel.hidden = !historyPanel.hidden;
    historyButton.setAttribute("aria-expanded", String(!historyPanel.hidden));
    if (!historyPanel.hidden) {
      htmx.trigger(historyPanel, "refresh");
      historyPanel.scrollIntoView({block: "nearest"});
    }
  }

  function openNote() {
    var box = document.getElementById("note-box");
    if (!box) return;
    box.open = true;
    document.getElementById("note-text").focus();
  }

  document.getElementById("guidelines-button").addEventListener("click", toggleGuidelines);
  document.getElementById("guidelines-close").addEventListener("click", function () { guidelines.close(); });
  historyButton.addEventListener("click", toggleHistory);

  // ------------------------------------------------------------------ keys

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (/INPUT|TEXTAREA|SELECT/.test(e.target.tagName)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    var key = e.key.toLowerCase();
    if (guidelines.open) {
      if (key === "g" || key === "?") { e.preventDefault(); guidelines.close(); }
      return;  // Escape closes the dialog by itself
    }
    if (key === "g" || key === "?") { e.preventDefault(); toggleGuidelines(); return; }
    if (key === "h") { e.preventDefault(); toggleHistory(); return; }
    if (key === "c") { e.preventDefault(); openNote(); return; }
    if (key === "r" && state.pending) { e.preventDefault(); resend(); return; }
    var target = document.querySelector('#work [data-key="' + CSS.escape(key) + '"]');
    if (!target) return;
    e.preventDefault();
    if (state.sessionEnded) { sessionEnded(); flash(); return; }
    if (state.pending) { showPending(); flash(); return; }
    if (state.inFlight) {
      say("busy", ["Still sending “" + answerName(state.inFlight) + "”: wait a moment."], "busy");
      flash();
      return;
    }
    if (!target.disabled) target.click();
  });

  // ------------------------------------------------------------------ heartbeat

  // Keep the item ours while the page is open and in use: renew the assignment every few seconds if
  // someone touched the page within the idle time; a page left alone lets the item go back to the
  // queue after the idle time. A heartbeat refused for want of a session says so at once.
  var heartbeatMs = parseFloat(app.dataset.heartbeatSeconds) * 1000;
  var idleMs = parseFloat(app.dataset.idleSeconds) * 1000;
  var lastUse = Date.now();
  ["keydown", "mousemove", "mousedown", "touchstart", "scroll"].forEach(function (name) {
    document.addEventListener(name, function () { lastUse = Date.now(); }, {passive: true});
  });
  setInterval(function () {
    if (document.visibilityState !== "visible" || Date.now() - lastUse > idleMs || state.sessionEnded) return;
    fetch("/api/heartbeat", {method: "POST", headers: {"X-CSRF-Token": app.dataset.csrf},
                             credentials: "same-origin", redirect: "manual"})
      .then(function (r) { if (r.status === 401) sessionEnded(); })
      .catch(function () { /* unreachable: the next answer says so, and is resent */ });
  }, heartbeatMs);
})();
