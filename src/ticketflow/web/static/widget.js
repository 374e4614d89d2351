// TicketFlow's embeddable widget. A site adds
//   <script src="https://tickets.example.com/widget.js" data-event="EVENT-ID" async></script>
// and this puts an iframe of the event's tickets where the script tag stands. The framed page
// says its height (widget_frame.js); only messages from our own origin are believed.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.getAttribute("data-event")) return;
  var origin = new URL(script.src).origin;
  var frame = document.createElement("iframe");
  frame.src = origin + "/widget/events/" + encodeURIComponent(script.getAttribute("data-event"));
  frame.title = script.getAttribute("data-title") || "Tickets";
  frame.loading = "lazy";
  frame.width = "100%";
  frame.height = "360";
  frame.setAttribute("frameborder", "0");
  script.parentNode.insertBefore(frame, script.nextSibling);
  window.addEventListener("message", function (message) {
    if (message.origin !== origin || message.source !== frame.contentWindow) return;
    var height = message.data && message.data.ticketflowWidgetHeight;
    if (typeof height === "number" && height > 0 && height < 5000) {
      frame.height = String(Math.ceil(height));
    }
  });
})();
