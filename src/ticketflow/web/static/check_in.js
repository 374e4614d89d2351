// The check-in page with htmx: after each answer, empty the code field and put the cursor back
// in it, so the next scan (a USB scanner types the code and Enter) goes straight in.
(function () {
  "use strict";
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "scan-form") return;
    var input = form.querySelector("input[name=code]");
    input.value = "";
    input.focus();
  });
})();
