// The officer's page: checks without reloading, the full-screen verdict and its sound, the
// camera (the browser's BarcodeDetector, or frames read by the server), vehicle mode, this
// shift's list, and the checkpoint node's state. The page works without it (a plain form).
"use strict";
(function () {
  var form = document.getElementById("check");
  if (!form) return;
  var code = document.getElementById("code");
  var kind = document.getElementById("document_kind");
  var plate = document.getElementById("plate");
  var layer = document.getElementById("verdict");
  var notice = document.getElementById("notice");
  var msgs = document.getElementById("messages").dataset;
  var shiftList = document.getElementById("shift");
  var shiftEmpty = document.getElementById("shift-empty");
  var vehicleBox = document.getElementById("vehicle");
  var vehicleList = document.getElementById("vehicle-list");
  var occupants = document.getElementById("occupants");
  var summary = document.getElementById("vehicle-summary");
  var mode = "person";
  var typing = window.matchMedia && window.matchMedia("(pointer: fine)").matches;
  // From the scanned text arriving to the verdict painted, in milliseconds (read by the tests).
  var timings = [];
  window.txOfficer = { timings: timings };

  // ---- This shift's checks: kept in this browser's session only (masked, as shown).
  var SHIFT = "tx-officer-shift";
  function shift() {
    try { return JSON.parse(sessionStorage.getItem(SHIFT) || "[]"); } catch (e) { return []; }
  }
  function showShift() {
    var rows = shift();
    shiftList.innerHTML = rows.join("");
    shiftEmpty.hidden = rows.length > 0;
  }
  function addToShift(row) {
    var rows = shift();
    rows.unshift(row);
    try { sessionStorage.setItem(SHIFT, JSON.stringify(rows.slice(0, 50))); } catch (e) { /* full: the list stays on screen */ }
    showShift();
  }
  showShift();

  // ---- The checkpoint chosen stays chosen for the session.
  var cpSelect = document.getElementById("checkpoint_id");
  if (cpSelect && cpSelect.tagName === "SELECT") {
    var chosen = sessionStorage.getItem("tx-officer-checkpoint");
    if (chosen && cpSelect.querySelector("option[value=\"" + chosen.replace(/[^A-Za-z0-9_-]/g, "") + "\"]")) cpSelect.value = chosen;
    cpSelect.addEventListener("change", function () { sessionStorage.setItem("tx-officer-checkpoint", cpSelect.value); });
  }

  // ---- Person or vehicle.
  var modes = document.querySelector(".modes");
  modes.hidden = false;
  function setMode(m) {
    mode = m;
    modes.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.mode === m)); });
    vehicleBox.hidden = m !== "vehicle";
    vehicleList.hidden = m !== "vehicle";
    if (m === "vehicle") plate.focus(); else if (typing) code.focus();
  }
  modes.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-mode]");
    if (b) setMode(b.dataset.mode);
  });
  setMode(plate.value ? "vehicle" : "person");
  function countVehicle() {
    var n = occupants.children.length;
    var by = function (k) { return occupants.querySelectorAll("li." + k).length; };
    summary.textContent = n === 0 ? msgs.occupantsEmpty : msgs.vehicleSummary
      .replace("{n}", n).replace("{pass}", by("pass")).replace("{conditional}", by("conditional"))
      .replace("{deny}", by("deny") + by("refused"));
  }
  document.getElementById("next-vehicle").addEventListener("click", function () {
    occupants.innerHTML = "";
    plate.value = "";
    countVehicle();
    plate.focus();
  });

  // ---- The verdict.
  var resumeAt = 0;
  function hideVerdict() {
    if (layer.hidden) return;
    layer.hidden = true;
    layer.innerHTML = "";
    resumeAt = performance.now() + 1500; // the camera does not read the same pass again at once
    if (typing) code.focus();
  }
  layer.addEventListener("click", function (e) {
    if (e.target.closest("a.next")) e.preventDefault();
    hideVerdict();
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") hideVerdict();
  });
  // A scanner's next code (or the next number typed) clears the verdict.
  code.addEventListener("input", hideVerdict);
  function play(sound) {
    var a = document.getElementById("sound-" + sound);
    if (!a) return;
    try { a.currentTime = 0; } catch (e) { /* not loaded yet */ }
    var p = a.play();
    if (p && p.catch) p.catch(function () { /* the browser allows no sound before a gesture */ });
  }
  function painted(t0) {
    // After the next frame is painted.
    requestAnimationFrame(function () {
      setTimeout(function () {
        var ms = performance.now() - t0;
        timings.push(ms);
        layer.dataset.ms = ms.toFixed(1);
      }, 0);
    });
  }
  function say(html) {
    notice.innerHTML = html || "";
  }
  function show(a, t0) {
    if (a.row) {
      addToShift(a.row);
      if (mode === "vehicle") { occupants.insertAdjacentHTML("beforeend", a.row); countVehicle(); }
    }
    if (a.sound) {
      say("");
      delete layer.dataset.ms;
      layer.innerHTML = a.html;
      layer.hidden = false;
      play(a.sound);
      painted(t0);
    } else {
      say(a.html);
    }
  }

  // ---- Sending a check.
  var busy = false;
  function send(extra, t0) {
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    body.set("checkpoint_id", form.elements.checkpoint_id.value);
    if (mode === "vehicle" && plate.value.trim()) body.set("plate", plate.value.trim());
    Object.keys(extra).forEach(function (k) { body.set(k, extra[k]); });
    busy = true;
    return fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body: body
    }).then(function (r) {
      var type = r.headers.get("content-type") || "";
      if (type.indexOf("application/json") < 0) {
        // A sign-in page or a refused form: the session has ended.
        throw new Error(r.redirected || r.status === 403 ? "session" : "failed");
      }
      return r.json();
    }).then(function (a) {
      busy = false;
      if (a.outcome !== "retry") show(a, t0);
      return a;
    }, function (e) {
      busy = false;
      say("<p class=\"notice bad\" role=\"alert\"></p>");
      notice.firstChild.textContent = e.message === "session" ? msgs.sessionEnded : msgs.failed;
      return null;
    });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var t0 = performance.now();
    // A scanner's line end is not part of the code; a space may be.
    var text = code.value.replace(/[\r\n]+$/, "");
    code.value = "";
    if (!text.trim()) { hideVerdict(); return; }
    send({ code: text, document_kind: kind.value }, t0);
  });
  if (typing) code.focus();

  // ---- The camera.
  var start = document.getElementById("camera-start");
  var stop = document.getElementById("camera-stop");
  var box = document.getElementById("camera");
  var video = document.getElementById("video");
  var note = document.getElementById("camera-note");
  var canvas = document.createElement("canvas");
  var stream = null;
  var detector = null;
  var last = { text: "", at: 0 };
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) start.hidden = false;
  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    box.hidden = true;
    stop.hidden = true;
    start.hidden = false;
  }
  function tick() {
    if (!stream) return;
    if (busy || !layer.hidden || performance.now() < resumeAt || !video.videoWidth) { setTimeout(tick, 200); return; }
    if (detector) {
      detector.detect(video).then(function (found) {
        var hit = found.filter(function (c) { return c.rawValue; })[0];
        var now = performance.now();
        if (hit && !(hit.rawValue === last.text && now - last.at < 5000)) {
          last = { text: hit.rawValue, at: now };
          return send({ code: hit.rawValue }, now);
        }
      }).then(function () { setTimeout(tick, 120); }, function () { setTimeout(tick, 500); });
      return;
    }
    // No detector here: a frame, at most 960 pixels wide, read by the server.
    var t0 = performance.now();
    var scale = Math.min(1, 960 / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    send({ image: canvas.toDataURL("image/jpeg", 0.85) }, t0).then(function () { setTimeout(tick, 250); });
  }
  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 1280 } }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        box.hidden = false;
        start.hidden = true;
        stop.hidden = false;
        return video.play();
      })
      .then(function () {
        if (!("BarcodeDetector" in window)) return null;
        return window.BarcodeDetector.getSupportedFormats().then(function (f) {
          if (f.indexOf("qr_code") >= 0) detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        });
      })
      .then(function () {
        if (!detector) note.textContent = msgs.cameraServer;
        tick();
      })
      .catch(function () {
        stopCamera();
        say("<p class=\"notice bad\" role=\"alert\"></p>");
        notice.firstChild.textContent = msgs.cameraDenied;
      });
  });
  stop.addEventListener("click", stopCamera);

  // ---- The checkpoint node's state, every 5 seconds.
  var node = document.getElementById("node");
  if (node) {
    setInterval(function () {
      fetch("/officer/status", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) return;
          node.className = "node " + s.mode;
          node.innerHTML = s.html;
        }, function () { /* the node itself is unreachable: nothing to show */ });
    }, 5000);
  }
})();
