// Follows a running publication on its page: the progress bars move without reloading, and the page reloads
// once for the summary. Without JavaScript the page refreshes itself every few seconds (the noscript meta).
(function () {
  "use strict";
  var section = document.querySelector("[data-progress-url]");
  if (!section) return;
  var url = section.getAttribute("data-progress-url");

  function show(phase, done, total) {
    var row = section.querySelector('[data-phase="' + phase + '"]');
    if (!row) return;
    var bar = row.querySelector("progress");
    bar.max = total;
    bar.value = done;
    row.querySelector(".count").textContent = done.toLocaleString("ja-JP") + " / " + total.toLocaleString("ja-JP");
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {accept: "application/json"}})
      .then(function (answer) {
        if (!answer.ok) throw new Error(String(answer.status));
        return answer.json();
      })
      .then(function (run) {
        if (run.status !== "running") {
          window.location.reload();
          return;
        }
        Object.keys(run.progress).forEach(function (phase) {
          show(phase, run.progress[phase][0], run.progress[phase][1]);
        });
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  window.setTimeout(poll, 1000);
})();
