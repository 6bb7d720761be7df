// The command centre's dashboard: the warnings follow the outbox's stream (server-sent events
// that say only that something changed; the browser resumes after a dropped connection with
// Last-Event-ID), each event reloading the list from the server; the flows reload every
// minute. The text stays the catalogues' and nothing is drawn twice.
"use strict";
(function () {
  function reloader(box) {
    return function () {
      fetch(box.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
        .then(function (html) { box.innerHTML = html; })
        .catch(function () {});
    };
  }
  var flows = document.getElementById("flows");
  if (flows) setInterval(reloader(flows), 60000);
  var box = document.getElementById("warnings");
  var live = document.getElementById("warnings-live");
  if (!box || !live || !window.EventSource) return;
  var reload = reloader(box);
  function state(on) {
    live.classList.toggle("off", !on);
    live.textContent = on ? live.dataset.on : live.dataset.off;
    box.dataset.live = on ? "on" : "off";
  }
  var es = new EventSource(box.dataset.stream);
  es.onopen = function () { state(true); reload(); };
  es.onerror = function () { state(false); };
  ["alert.raised", "alert.acknowledged", "alert.resolved"].forEach(function (type) {
    es.addEventListener(type, reload);
  });
})();
