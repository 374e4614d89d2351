// In the widget's iframe: tell the embedding page (widget.js) how tall the content is, so the
// frame fits it without a scroll bar. Only a number is sent; nothing is read from the parent.
(function () {
  "use strict";
  function tell() {
    if (window.parent === window) return;
    window.parent.postMessage({ ticketflowWidgetHeight: document.documentElement.scrollHeight }, "*");
  }
  window.addEventListener("load", tell);
  window.addEventListener("resize", tell);
})();
