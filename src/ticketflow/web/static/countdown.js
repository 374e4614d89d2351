// The hold's countdown on the checkout page: the expiry comes from the server (in the page);
// this only shows the time left, and says when the hold has lapsed.
(function () {
  "use strict";
  function start() {
    var holder = document.querySelector("[data-countdown-until]");
    if (!holder) return;
    var until = Date.parse(holder.getAttribute("data-countdown-until"));
    var left = holder.querySelector(".countdown-left");
    function tick() {
      var seconds = Math.max(0, Math.round((until - Date.now()) / 1000));
      var minutes = Math.floor(seconds / 60);
      var rest = seconds % 60;
      if (seconds > 0) {
        left.textContent = "(" + minutes + ":" + (rest < 10 ? "0" : "") + rest + " left)";
        return;
      }
      clearInterval(timer);
      holder.classList.add("countdown-expired");
      left.textContent = "(the hold has expired: reload to see what is left)";
      document.querySelectorAll("[data-hold-form] button").forEach(function (button) {
        button.disabled = true;
      });
    }
    var timer = setInterval(tick, 1000);
    tick();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
