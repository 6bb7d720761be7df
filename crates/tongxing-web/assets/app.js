// Shared by every page: small progressive enhancements. Pages work without it.
"use strict";
(function () {
  // A button with data-confirm asks before its form is sent.
  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    if (b && b.dataset.confirm && !window.confirm(b.dataset.confirm)) e.preventDefault();
  });
  // A file picked for a CSV field is read into its text area (the form posts text).
  document.querySelectorAll("input[type=file][data-into]").forEach(function (input) {
    input.addEventListener("change", function () {
      var target = document.getElementById(input.dataset.into);
      var file = input.files && input.files[0];
      if (!target || !file) return;
      file.text().then(function (t) { target.value = t; });
    });
  });
})();
