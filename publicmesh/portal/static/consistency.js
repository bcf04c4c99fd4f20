// やりとり履歴: the browser keeps the last checkpoint of the exchange record log it was shown (size, root, and the
// checkpoint a witness cosigned). On the next visit it asks for an RFC 9162 consistency proof from that size to
// today's and checks it here (SHA-256 by crypto.subtle), so a log cut back or rewritten between two visits is seen
// by the person, whatever the server says. The page works without it. A file of its own, not inline: the
// portal's Content-Security-Policy allows only scripts from this site.
(function () {
  "use strict";

  function bytes(b64) {
    return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
  }

  function same(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  async function sha256(data) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  }

  async function node(left, right) {
    var joined = new Uint8Array(65);
    joined[0] = 1;
    joined.set(left, 1);
    joined.set(right, 33);
    return sha256(joined);
  }

  // RFC 9162 §2.1.4.2, with the sizes 0 and old == new; halving by division keeps sizes above 2^31 exact.
  async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
    var isHash = function (h) { return h instanceof Uint8Array && h.length === 32; };
    if (!(oldSize >= 0 && oldSize <= newSize) || !isHash(oldRoot) || !isHash(newRoot) || !proof.every(isHash)) {
      return false;
    }
    if (oldSize === newSize) return proof.length === 0 && same(oldRoot, newRoot);
    if (oldSize === 0) return proof.length === 0 && same(oldRoot, await sha256(new Uint8Array(0)));
    if (proof.length === 0) return false;
    var path = proof.slice();
    var half = function (n) { return Math.floor(n / 2); };
    var odd = function (n) { return n % 2 === 1; };
    var power = 1;
    while (power < oldSize) power *= 2;
    if (power === oldSize) path.unshift(oldRoot);
    var fn = oldSize - 1, sn = newSize - 1;
    while (odd(fn)) { fn = half(fn); sn = half(sn); }
    var fr = path[0], sr = path[0];
    for (var i = 1; i < path.length; i++) {
      var c = path[i];
      if (sn === 0) return false;
      if (odd(fn) || fn === sn) {
        fr = await node(c, fr);
        sr = await node(c, sr);
        if (!odd(fn)) {
          while (fn !== 0 && !odd(fn)) { fn = half(fn); sn = half(sn); }
        }
      } else {
        sr = await node(sr, c);
      }
      fn = half(fn);
      sn = half(sn);
    }
    return same(fr, oldRoot) && same(sr, newRoot) && sn === 0;
  }

  window.publicmeshLog = { verifyConsistency: verifyConsistency, bytes: bytes };

  var shown = document.getElementById("log-consistency");
  if (!shown || !window.crypto || !crypto.subtle || !window.localStorage || !window.fetch) return;
  var key = "publicmesh.checkpoint." + shown.dataset.log;
  var current = { size: Number(shown.dataset.size), root: shown.dataset.root };
  var witness = shown.dataset.witness ? JSON.parse(shown.dataset.witness) : null;

  function kept() {
    try {
      var doc = JSON.parse(localStorage.getItem(key));
      return doc && Number.isSafeInteger(doc.size) && typeof doc.root === "string" ? doc : null;
    } catch (e) {
      return null;
    }
  }

  function keep() {
    var doc = { size: current.size, root: current.root, witness: witness, seen: new Date().toISOString() };
    try { localStorage.setItem(key, JSON.stringify(doc)); } catch (e) { /* storage full or refused: next time */ }
  }

  function say(ok) {
    shown.textContent = ok ? shown.dataset.ok : shown.dataset.bad;
    shown.className = ok ? "meta ok" : "bad";
    if (!ok) shown.setAttribute("role", "alert");
    shown.hidden = false;
  }

  var before = kept();
  if (!before) { keep(); return; }
  // What was kept stays until the log is shown consistent with it: a failed check is shown again next visit.
  if (before.size > current.size) { say(false); return; }
  var url = shown.dataset.proof + "?from=" + before.size + "&to=" + current.size;
  fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
    .then(function (answer) { return answer.ok ? answer.json() : null; })
    .then(async function (doc) {
      if (!doc || !Array.isArray(doc.proof)) return; // the portal could not ask the hub: check on the next visit
      var ok;
      try {
        ok = await verifyConsistency(before.size, current.size, bytes(before.root), bytes(current.root),
                                     doc.proof.map(bytes));
      } catch (e) {
        ok = false; // a proof that is not even base64 proves nothing
      }
      say(ok);
      if (ok) keep();
    })
    .catch(function () { /* offline: check on the next visit */ });
})();
