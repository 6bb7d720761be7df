// The health authority's page: the alerts follow the outbox's stream (server-sent events; the
// browser resumes after a dropped connection with Last-Event-ID). Each event reloads the list
// from the server, so the text stays the catalogues' and nothing is drawn twice.
"use strict";
(function () {
  var box = document.getElementById("alerts");
  if (!box || !window.EventSource) return;
  var live = document.getElementById("alerts-live");
  function state(on) {
    if (!live) return;
    live.classList.toggle("off", !on);
    live.textContent = on ? live.dataset.on : live.dataset.off;
    box.dataset.live = on ? "on" : "off";
  }
  function reload() {
    fetch(box.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () {});
  }
  var es = new EventSource(box.dataset.stream);
  es.onopen = function () { state(true); reload(); };
  es.onerror = function () { state(false); };
  ["alert.raised", "alert.acknowledged", "alert.resolved"].forEach(function (type) {
    es.addEventListener(type, reload);
  });
})();
