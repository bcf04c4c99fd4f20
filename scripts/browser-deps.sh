#!/usr/bin/env bash
# What the browser tests (tests/browser) need from Debian: chromium, driven by Python playwright through
# executable_path=/usr/bin/chromium (never `playwright install`), and a CJK font, without which Japanese
# renders as empty boxes in screenshots. Idempotent: installs only what is missing, quietly.
# Usage: bash scripts/browser-deps.sh   (as root, or with sudo available)
set -euo pipefail

have_chromium() { [ -x /usr/bin/chromium ]; }
have_cjk_font() {
  if command -v fc-list >/dev/null 2>&1; then
    fc-list :lang=ja family 2>/dev/null | grep -qi "Noto Sans CJK" && return 0
  fi
  compgen -G "/usr/share/fonts/opentype/noto/NotoSansCJK*" >/dev/null
}

missing=()
have_chromium || missing+=(chromium)
have_cjk_font || missing+=(fonts-noto-cjk)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" != "0" ]; then
  command -v sudo >/dev/null 2>&1 || { echo "browser-deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi
echo "browser-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2; exit 1
fi
command -v fc-cache >/dev/null 2>&1 && fc-cache -f >/dev/null 2>&1 || true

have_chromium || { echo "browser-deps: /usr/bin/chromium is still missing" >&2; exit 1; }
have_cjk_font || { echo "browser-deps: the Noto CJK font is still missing" >&2; exit 1; }
exit 0
