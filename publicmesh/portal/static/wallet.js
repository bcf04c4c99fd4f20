// Smartphone wallet: a non-extractable ECDSA P-256 key kept in this browser (IndexedDB), certified once
// against the My Number Card, then used to log in without the card. Pages work without this script.
(function () {
  const DB = "publicmesh-wallet", STORE = "wallet";
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  function db() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  async function load() {
    const d = await db();
    return new Promise((resolve) => {
      const req = d.transaction(STORE).objectStore(STORE).get("current");
      req.onsuccess = () => resolve(req.result || null);
      req.onerror = () => resolve(null);
    });
  }
  async function save(value) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const tx = d.transaction(STORE, "readwrite");
      tx.objectStore(STORE).put(value, "current");
      tx.oncomplete = resolve; tx.onerror = () => reject(tx.error);
    });
  }
  async function enrol(button) {
    const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
    const form = new FormData();
    form.set("csrf", button.dataset.csrf);
    form.set("device_name", navigator.userAgent.slice(0, 60));
    form.set("spki", b64(spki));
    const response = await fetch("/settings/wallet", { method: "POST", body: form, headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(await response.text());
    const issued = await response.json();
    await save({ privateKey: keys.privateKey, certificate: issued.certificate_pem, device_id: issued.device_id });
    location.reload();
  }
  async function login(state) {
    const wallet = await load();
    const challenge = await (await fetch("/login/challenge")).json();
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, wallet.privateKey, unb64(challenge.nonce));
    const response = await fetch("/login/wallet", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ challenge: challenge.challenge_id, csrf: challenge.csrf, certificate: wallet.certificate, signature: b64(signature) }),
    });
    if (response.ok) { location.href = "/"; } else { state.textContent = (await response.json()).detail; }
  }
  document.addEventListener("DOMContentLoaded", async () => {
    const enrolButton = document.getElementById("wallet-enrol");
    if (enrolButton && window.crypto && crypto.subtle) {
      enrolButton.hidden = false;
      enrolButton.addEventListener("click", () => enrol(enrolButton).catch((e) => alert(e.message)));
    }
    const loginButton = document.getElementById("wallet-button");
    if (loginButton && window.indexedDB && (await load())) {
      loginButton.hidden = false;
      const state = document.getElementById("wallet-state");
      loginButton.addEventListener("click", () => login(state).catch((e) => { state.textContent = e.message; }));
    }
  });
})();
