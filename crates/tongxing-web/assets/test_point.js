// The test point's page: the day's samples refreshed every 5 seconds (results arrive from the
// lab), and the letter shown in the person's language.
"use strict";
(function () {
  var day = document.getElementById("day");
  if (day) {
    var live = document.getElementById("day-live");
    setInterval(function () {
      fetch(day.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
        .then(function (html) {
          if (day.innerHTML !== html) day.innerHTML = html;
          if (live) live.classList.remove("off");
        })
        .catch(function () { if (live) live.classList.add("off"); });
    }, 5000);
  }
  document.querySelectorAll("button[data-letter]").forEach(function (b) {
    b.addEventListener("click", function () {
      ["zh", "en"].forEach(function (l) {
        var el = document.getElementById("letter-" + l);
        if (el) el.hidden = l !== b.dataset.letter;
      });
    });
  });
})();
