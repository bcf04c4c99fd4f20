// 申請の状況: each status change arrives as a server-sent event and updates its row. The page works without it.
// A file of its own, not inline: the portal's Content-Security-Policy allows only scripts from this site.
(function () {
  var table = document.querySelector("table[data-live]");
  if (!table || !window.EventSource) return;
  var labels = JSON.parse(table.dataset.labels), withdrawable = JSON.parse(table.dataset.withdrawable);
  var source = new EventSource(table.dataset.live);
  source.addEventListener("status", function (e) {
    var u = JSON.parse(e.data), cell = document.querySelector("#a-" + u.application + " .status");
    if (!cell) return;
    cell.dataset.status = u.status;
    cell.textContent = labels[u.status] || u.status;
    if (u.reason) {
      var r = document.createElement("span"); r.className = "meta"; r.textContent = table.dataset.reason + ": " + u.reason;
      cell.appendChild(document.createElement("br")); cell.appendChild(r);
    }
    if (u.status === "returned") {
      var a = document.createElement("a"); a.className = "button"; a.textContent = table.dataset.resubmit;
      a.href = "/applications/" + encodeURIComponent(u.application) + "/resubmit";
      cell.appendChild(document.createElement("br")); cell.appendChild(a);
    }
    if (withdrawable.indexOf(u.status) >= 0) {
      var w = document.createElement("a"); w.className = "withdraw"; w.textContent = table.dataset.withdraw;
      w.href = "/applications/" + encodeURIComponent(u.application) + "/withdraw";
      cell.appendChild(document.createElement("br")); cell.appendChild(w);
    }
  });
})();
