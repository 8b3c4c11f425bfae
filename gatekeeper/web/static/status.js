// Refresh the pipelines in place (no full page reload) and apply the
// filters as they are typed. The server renders the HTML; this only swaps it.
(function () {
  "use strict";
  var box = document.getElementById("pipelines");
  var form = document.getElementById("filters");
  var updated = document.getElementById("updated");
  var etag = null, timer = null, busy = false;
  var PERIOD = 3000;

  function query() {
    var p = new URLSearchParams(new FormData(form));
    var out = new URLSearchParams();
    p.forEach(function (v, k) { if (v) { out.append(k, v); } });
    return out.toString();
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }

  function refresh() {
    if (busy) { schedule(200); return; }
    busy = true;
    var q = query();
    var headers = etag ? {"If-None-Match": etag} : {};
    fetch("/status/fragment" + (q ? "?" + q : ""), {headers: headers, cache: "no-cache"})
      .then(function (r) {
        if (r.status === 304) { return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        etag = r.headers.get("ETag");
        return r.text();
      })
      .then(function (html) {
        if (html !== null) { box.innerHTML = html; }
        document.body.classList.remove("stale");
        updated.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function (err) {
        document.body.classList.add("stale");
        updated.textContent = "cannot reach the server (" + err.message + ")";
      })
      .then(function () { busy = false; schedule(PERIOD); });
  }

  form.addEventListener("input", function () {
    var q = query();
    history.replaceState(null, "", q ? "?" + q : location.pathname);
    etag = null;
    schedule(250);
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); etag = null; schedule(0); });
  schedule(PERIOD);
})();
