// Consign dashboard: the only hand-written script. Everything works without it; it adds
// "Copy" buttons for values such as ingest URLs and secrets shown once.
// (htmx 2.0.11, vendored beside it, handles the test send and live attempt refresh.)
(function () {
  "use strict";
  var live = document.createElement("div");
  live.className = "sr-only";
  live.setAttribute("aria-live", "polite");
  document.addEventListener("DOMContentLoaded", function () { document.body.appendChild(live); });
  function announce(btn, text) {
    btn.textContent = text;
    live.textContent = text === "Copied" ? "Copied to the clipboard" : text;
    setTimeout(function () { btn.textContent = "Copy"; }, 2000);
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button[data-copy]");
    if (!btn) return;
    var field = document.getElementById(btn.getAttribute("data-copy"));
    if (!field) return;
    var text = field.value || field.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { announce(btn, "Copied"); },
        function () { announce(btn, "Press Ctrl+C"); field.select(); });
      return;
    }
    field.focus();
    field.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    announce(btn, ok ? "Copied" : "Press Ctrl+C");
  });
})();
