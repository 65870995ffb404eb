#!/bin/sh
# tests/test_install.sh - make install / make uninstall (issue #27), POSIX sh, from the
# repository root: sh tests/test_install.sh
#   - make install DESTDIR=tests/build/install_tmp/stage PREFIX=/opt/hephaestus-test (the tools
#     built portable into tests/build/install_build, so the user's build/ is not touched)
#   - the README's program (the "install-test" snippets of README.md, taken verbatim) built
#     against the staged install with its pkg-config command line and with its CMake project
#     (find_package(hephaestus) -> hephaestus::hephaestus), and run
#   - pkg-config --modversion, every installed program's --version: the header's version
#   - every option of every --help appears in its man page; man renders each page without
#     warnings (when man is installed)
#   - make uninstall leaves no file behind
# Needs make, pkg-config and cmake (.ci/run installs them); without pkg-config or cmake that
# check is a SKIP line. About 30 s when the tools are built (make -j2), 2-3 min from a clean tree. Environment: CC (default cc).
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$(pwd)/$B/install_tmp
STAGE=$T/stage
PFX=/opt/hephaestus-test
IB=$B/install_build
npass=0
nfail=0
rm -rf "$T" && mkdir -p "$T" || exit 1
VERSION=$(sed -n 's/^#define HEPH_VERSION_STRING "\(.*\)"/\1/p' hephaestus.h)

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() {
    [ "$nfail" -eq 0 ] && rm -rf "$T"
    echo "install: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}
last() { tail -n "${1:-1}" | tr '\n' ' ' | cut -c1-300; }
# snippet NAME: the fenced block after "<!-- install-test: NAME -->" in README.md
snippet() {
    awk -v m="<!-- install-test: $1 -->" '
        $0 == m { found = 1; next }
        found == 1 && /^```/ { found = 2; next }
        found == 2 && /^```/ { exit }
        found == 2 { print }' README.md
}

# ---- install ------------------------------------------------------------------------------------
if ! out=$(nice make -j2 --no-print-directory install BUILD="$IB" PORTABLE=1 DESTDIR="$STAGE" PREFIX="$PFX" CC="$CC" 2>&1); then
    fail install "make install failed: $(echo "$out" | last 3)"; finish
fi
R=$STAGE$PFX
missing=""
for f in include/hephaestus.h bin/hephaestus bin/idx2hpd bin/cifar2hpd bin/gen_dsprites bin/dsprites2hpd bin/gen_shapes3d bin/gen_sprites \
         share/pkgconfig/hephaestus.pc share/cmake/hephaestus/hephaestus-config.cmake \
         share/cmake/hephaestus/hephaestus-config-version.cmake share/man/man1/hephaestus.1 \
         share/man/man1/hephaestus-train.1 share/man/man1/hephaestus-import.1 share/man/man1/gen_shapes3d.1 share/man/man1/gen_sprites.1 \
         share/doc/hephaestus/README.md share/doc/hephaestus/LICENSE share/hephaestus/hephaestus_torch.py; do
    [ -f "$R/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then pass "install: every file under DESTDIR$PFX ($(find "$STAGE" -type f | wc -l) files)"
else fail install_files "missing:$missing"; fi
if [ -e "$PFX" ]; then fail install_destdir "$PFX exists outside DESTDIR"; else pass "install: nothing written to $PFX itself (DESTDIR honoured)"; fi
if cmp -s hephaestus.h "$R/include/hephaestus.h"; then pass "install: the header is the source's"; else fail install_header "differs"; fi

# ---- the README's program --------------------------------------------------------------------------
P=$T/proj
mkdir -p "$P"
snippet hello.c >"$P/hello.c"
snippet pkg-config >"$P/build.sh"
snippet CMakeLists.txt >"$P/CMakeLists.txt"
if [ ! -s "$P/hello.c" ] || [ ! -s "$P/build.sh" ] || [ ! -s "$P/CMakeLists.txt" ]; then
    fail readme_snippets "README.md lacks an install-test snippet (hello.c, pkg-config or CMakeLists.txt)"; finish
fi
want="hephaestus $VERSION: 20 latent dimensions"
if command -v pkg-config >/dev/null 2>&1; then
    export PKG_CONFIG_PATH="$R/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$STAGE"
    v=$(pkg-config --modversion hephaestus 2>&1)
    if [ "$v" = "$VERSION" ]; then pass "pkg-config --modversion hephaestus: $v"; else fail pkg_config_version "got \"$v\", header says $VERSION"; fi
    if out=$(cd "$P" && CC=$CC sh ./build.sh 2>&1) && out=$("$P/hello" 2>&1) && echo "$out" | grep -q -F "$want"; then
        pass "README program built with pkg-config ($(cat "$P/build.sh")) and run: $out"
    else fail readme_pkg_config "$(echo "$out" | last 3)"; fi
    unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
    rm -f "$P/hello"
else
    echo "SKIP readme_pkg_config: pkg-config is not installed (apt-get install pkg-config)"
fi
if command -v cmake >/dev/null 2>&1; then
    if out=$(cmake -S "$P" -B "$P/build" -DCMAKE_PREFIX_PATH="$R" -DCMAKE_C_COMPILER="$CC" 2>&1) &&
       out=$(cmake --build "$P/build" 2>&1) && out=$("$P/build/hello" 2>&1) && echo "$out" | grep -q -F "$want"; then
        pass "README program built with CMake find_package(hephaestus) and run: $out"
    else fail readme_cmake "$(echo "$out" | last 3)"; fi
    # a newer version than installed is refused
    mkdir -p "$T/proj2"
    sed 's/find_package(hephaestus [0-9.]*/find_package(hephaestus 9.0/' "$P/CMakeLists.txt" >"$T/proj2/CMakeLists.txt"
    cp "$P/hello.c" "$T/proj2/"
    if cmake -S "$T/proj2" -B "$T/proj2/build" -DCMAKE_PREFIX_PATH="$R" >"$T/proj2.log" 2>&1; then
        fail cmake_version_check "find_package(hephaestus 9.0) was accepted by version $VERSION"
    elif grep -q "$VERSION" "$T/proj2.log"; then pass "CMake: find_package(hephaestus 9.0) refused (installed: $VERSION)"
    else fail cmake_version_check "$(last 3 <"$T/proj2.log")"; fi
else
    echo "SKIP readme_cmake: cmake is not installed (apt-get install cmake)"
fi

# ---- versions ------------------------------------------------------------------------------------------
for t in hephaestus idx2hpd cifar2hpd gen_dsprites dsprites2hpd gen_shapes3d gen_sprites shapes3d2hpd; do
    [ -x "$R/bin/$t" ] || { [ "$t" = shapes3d2hpd ] && continue; fail "version_$t" "not installed"; continue; }
    out=$("$R/bin/$t" --version 2>&1)
    if [ $? -eq 0 ] && [ "$out" = "$t $VERSION" ] || [ "$out" = "$t $VERSION (hephaestus.h)" ]; then pass "$t --version: $out"
    else fail "version_$t" "got \"$out\""; fi
done

# ---- man pages: every option of --help documented, pages render cleanly ---------------------------------
M=$R/share/man/man1
# opts: the long options of a help text
opts() { grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }
check_man() { # NAME PAGE HELP-COMMAND...
    name=$1; page=$2; shift 2
    if [ ! -f "$page" ]; then fail "man_$name" "no $page"; return; fi
    text=$(sed 's/\\-/-/g; s/\\f[BIR]//g' "$page")
    miss=""
    for o in $("$@" --help 2>/dev/null | opts); do
        echo "$text" | grep -q -F -- "$o" || miss="$miss $o"
    done
    if [ -n "$miss" ]; then fail "man_$name" "$page lacks$miss"; else pass "man page $name: every option of --help"; fi
}
for s in train outliers explain counterfactual morph report traverse sample eval encode batch export import classifier relabel cycle-train transfer cycle-eval; do
    check_man "hephaestus-$s" "$M/hephaestus-$s.1" "$R/bin/hephaestus" "$s"
done
check_man hephaestus "$M/hephaestus.1" "$R/bin/hephaestus"
for t in idx2hpd cifar2hpd gen_dsprites dsprites2hpd gen_shapes3d gen_sprites shapes3d2hpd; do
    [ -x "$R/bin/$t" ] && check_man "$t" "$M/$t.1" "$R/bin/$t"
done
if command -v man >/dev/null 2>&1; then
    bad=""
    for f in "$M"/*.1; do
        w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
        [ -n "$w" ] && bad="$bad $(basename "$f"): $(echo "$w" | head -n 1)"
    done
    if [ -z "$bad" ]; then pass "man renders all $(ls "$M"/*.1 | wc -l) pages without warnings"; else fail man_render "$bad"; fi
else
    echo "SKIP man_render: man is not installed"
fi

# ---- uninstall ------------------------------------------------------------------------------------------
if ! out=$(make --no-print-directory uninstall BUILD="$IB" PORTABLE=1 DESTDIR="$STAGE" PREFIX="$PFX" 2>&1); then
    fail uninstall "make uninstall failed: $(echo "$out" | last 3)"
else
    left=$(find "$STAGE" ! -type d)
    if [ -z "$left" ]; then pass "uninstall: no file left under DESTDIR ($(find "$STAGE" -type d | wc -l) empty standard folders remain)"
    else fail uninstall_clean "left behind: $(echo "$left" | last 5)"; fi
    for d in share/doc/hephaestus share/cmake/hephaestus share/hephaestus; do
        [ -d "$R/$d" ] && fail uninstall_dirs "$R/$d remains"
    done
fi
finish
