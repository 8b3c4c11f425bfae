// Follow a running build's console: one streaming fetch, text appended as it
// arrives (as text nodes: the console is never parsed as HTML).
(function () {
  "use strict";
  var pre = document.getElementById("console");
  var state = document.getElementById("console-state");
  var build = pre.getAttribute("data-build");
  var decoder = new TextDecoder();
  var atBottom = function () {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  };
  fetch("/api/console/" + encodeURIComponent(build) + "?follow=1", {cache: "no-store"})
    .then(function (r) {
      if (!r.ok) {
        return r.json().then(function (j) {
          state.textContent = j.error || ("HTTP " + r.status);
          if (j.log_url) {
            var a = document.createElement("a");
            a.href = j.log_url; a.textContent = " logs";
            state.appendChild(a);
          }
          document.body.setAttribute("data-console", "ended");
        });
      }
      state.textContent = "streaming";
      document.body.setAttribute("data-console", "streaming");
      var reader = r.body.getReader();
      function pump() {
        return reader.read().then(function (res) {
          if (res.done) {
            state.textContent = "the build ended";
            document.body.setAttribute("data-console", "ended");
            return;
          }
          var follow = atBottom();
          pre.appendChild(document.createTextNode(decoder.decode(res.value, {stream: true})));
          if (follow) { window.scrollTo(0, document.body.scrollHeight); }
          return pump();
        });
      }
      return pump();
    })
    .catch(function (err) {
      state.textContent = "connection lost: " + err.message;
      document.body.setAttribute("data-console", "lost");
    });
})();
