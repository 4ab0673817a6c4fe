// Times are written by the server in UTC (<time class="local" datetime="...">); show them in the reader's
// own time zone, in the page as first loaded and in every fragment htmx swaps in later.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {year: "numeric", month: "short", day: "numeric",
                                                     hour: "2-digit", minute: "2-digit"});

  function localize(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll("time.local[datetime]:not([data-local])").forEach(function (el) {
      el.dataset.local = "1";
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.title = el.textContent;
      el.textContent = format.format(when);
    });
  }

  localize(document);
  document.addEventListener("htmx:load", function (e) { localize(e.detail.elt); });
})();
