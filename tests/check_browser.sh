#!/bin/sh
# make check-browser: open the HTML report of `make demo` (or the file given) in headless
# Chromium (Debian `chromium`, installed when missing), take a full-page screenshot, and check
# that every SVG plot and PNG grid of the page was rendered (the page has no scripts and needs
# no network). Prints PASS/FAIL lines and "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
page=${1:-out/demo/report/report.html}
shot=${2:-out/demo/report/screenshot.png}
passed=0; failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
if [ ! -f "$page" ]; then echo "check-browser: $page is missing; run make demo first" >&2; exit 1; fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "check-browser: installing chromium"
  apt-get install -y chromium >/dev/null 2>&1 || { echo "check-browser: apt-get install -y chromium failed" >&2; exit 1; }
fi
tmp=$(mktemp -d)
abs=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$tmp" \
  --hide-scrollbars --window-size=1200,6000 --screenshot="$shot" "file://$abs" >/dev/null 2>&1
[ -s "$shot" ] && pass browser_screenshot || fail browser_screenshot "no screenshot written"
# the DOM as the browser built it: count the rendered plots and pictures
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$tmp" \
  --dump-dom "file://$abs" > "$tmp/dom.html" 2>/dev/null
nsvg=$(grep -o '<svg' "$tmp/dom.html" | wc -l)
nimg=$(grep -o '<img[^>]*src="data:image/png;base64,' "$tmp/dom.html" | wc -l)
want_svg=$(grep -o '<svg' "$page" | wc -l)
want_img=$(grep -o '<img[^>]*src="data:image/png;base64,' "$page" | wc -l)
[ "$nsvg" -ge 3 ] && [ "$nsvg" -eq "$want_svg" ] && pass browser_svg_plots || fail browser_svg_plots "$nsvg of $want_svg SVG plots in the DOM"
[ "$nimg" -ge 1 ] && [ "$nimg" -eq "$want_img" ] && pass browser_png_grids || fail browser_png_grids "$nimg of $want_img pictures in the DOM"
# the screenshot is not blank: more than a few distinct colours
if [ -s "$shot" ] && command -v python3 >/dev/null 2>&1; then
  if python3 - "$shot" <<'PY'
import sys, zlib, struct
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w = 8, b'', 0
while pos < len(d):
    n, t = struct.unpack('>I4s', d[pos:pos + 8])
    if t == b'IHDR': w, h = struct.unpack('>II', d[pos + 8:pos + 16])
    if t == b'IDAT': idat += d[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(idat)
sys.exit(0 if len(set(raw[:min(len(raw), 4000000)])) > 40 else 1)
PY
  then pass browser_page_not_blank; else fail browser_page_not_blank "the screenshot has almost no colours"; fi
fi
rm -rf "$tmp"
echo "screenshot: $shot"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
