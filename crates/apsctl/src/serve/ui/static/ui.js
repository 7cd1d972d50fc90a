// apsctl web UI: the one piece of script. It follows a running operation live (steps, files,
// bytes) from its event stream (or, without EventSource, by polling its JSON), then reloads the
// page to show the outcome. Every form works without it; without it, the operation page
// refreshes itself every 2 seconds.
(function () {
  "use strict";
  var box = document.getElementById("operation");
  if (!box || box.dataset.state !== "running") { return; }
  var url = "/ui/operations/" + encodeURIComponent(box.dataset.operation);
  var steps = document.getElementById("op-steps");
  var counts = document.getElementById("op-counts");
  var bar = document.getElementById("op-progress");
  function show(op) {
    var p = op.progress || {};
    var list = p.steps || [];
    while (steps.children.length < list.length) {
      var li = document.createElement("li");
      li.textContent = list[steps.children.length];
      steps.appendChild(li);
    }
    counts.textContent = (p.phase ? p.phase + ": " : "") + (p.files || 0) + " files, " + (p.bytes || 0) + " bytes";
    if (p.total_bytes) { bar.max = p.total_bytes; bar.value = p.bytes || 0; }
  }
  if (window.EventSource) {
    var events = new EventSource(url + "/events");
    events.addEventListener("progress", function (e) { show(JSON.parse(e.data)); });
    events.addEventListener("end", function () { events.close(); location.reload(); });
    events.addEventListener("stopping", function () { events.close(); setTimeout(function () { location.reload(); }, 2000); });
    // A closed stream (the session expired, the service restarted): reload shows where it is.
    events.onerror = function () { events.close(); setTimeout(function () { location.reload(); }, 2000); };
    return;
  }
  function poll() {
    fetch(url + "/json", { credentials: "same-origin" })
      .then(function (r) {
        // An expired session answers the login page: go there.
        if (r.redirected || !r.ok) { location.href = "/ui/login"; throw new Error("logged out"); }
        return r.json();
      })
      .then(function (op) {
        show(op);
        if (op.state === "running") { setTimeout(poll, 500); } else { location.reload(); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
})();
