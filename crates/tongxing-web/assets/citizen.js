// The citizen's code: each QR is replaced by a freshly signed one once three quarters of its
// life have passed (a 15-minute pass: after 11¼ minutes), so a code on screen never expires;
// one that could not be refreshed is greyed out with a note when it does. The times are the
// QR's data-issued and data-expires (epoch ms), read again at every tick.
"use strict";
(function () {
  var busy = new WeakSet();
  function due(el) {
    var issued = +el.dataset.issued, expires = +el.dataset.expires;
    return issued + (expires - issued) * 0.75;
  }
  function refresh(el) {
    if (busy.has(el)) return;
    busy.add(el);
    fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) { el.parentNode.innerHTML = html; })
      .catch(function () { busy.delete(el); el.dataset.failedAt = String(Date.now()); });
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".qr[data-refresh]").forEach(function (el) {
      el.classList.toggle("stale", now >= +el.dataset.expires);
      var failed = +(el.dataset.failedAt || 0);
      if (now >= due(el) && now - failed > 10000) refresh(el);
    });
  }
  setInterval(tick, 1000);
  tick();
  // A phone unlocked: look at once.
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
})();
