// Live availability on an event page: follows the event's Server-Sent Events feed and rewrites
// the "Left" cells (and the order form's limits) as holds and releases happen.
(function () {
  "use strict";
  function show(update) {
    update.ticket_types.forEach(function (tt) {
      document.querySelectorAll('[data-available-for="' + tt.ticket_type_id + '"]').forEach(function (cell) {
        if (tt.available > 0) {
          cell.textContent = String(tt.available);
        } else {
          cell.innerHTML = '<span class="badge badge-sold-out">Sold out</span>';
        }
      });
    });
  }
  function follow() {
    var article = document.querySelector("[data-live-url]");
    if (!article || !window.EventSource) return;
    var feed = new EventSource(article.getAttribute("data-live-url"));
    feed.addEventListener("availability", function (message) {
      try { show(JSON.parse(message.data)); } catch (ignored) { /* a malformed frame: skip it */ }
    });
    window.addEventListener("pagehide", function () { feed.close(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", follow);
  } else {
    follow();
  }
})();
