#!/bin/sh
# tests/test_cifar.sh - tests of tools/cifar2hpd.c, the CIFAR-10/100 binary converter (POSIX sh).
# Run from the repository root: sh tests/test_cifar.sh
# CIFAR itself is not reachable from our machines: tests/cifar_files.c writes small files in
# its two layouts (records of 1 or 2 label bytes and 3072 CHW pixel bytes, no header) and
# checks the converted .hpd picture by picture. The conversions run twice, the second time
# built with AddressSanitizer and UBSan. Errors: a cut file, an empty one, a label out of
# range (CIFAR-10, CIFAR-100 fine), a CIFAR-100 file without --cifar100 (and the reverse),
# a folder, a missing file, usage errors; a failed conversion leaves no output and no
# temporary, and an old output in its place stays as it was. Prints PASS/FAIL lines and
# "cifar: N passed, N failed". A few seconds. Environment: CC (default cc).
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$B/cifar_tmp
FLAGS="-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."
ASAN="-std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Wpedantic -Werror -D_POSIX_C_SOURCE=200809L -I."
export ASAN_OPTIONS="detect_leaks=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
npass=0; nfail=0
pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() { [ "$nfail" -eq 0 ] && rm -rf "$T"; echo "cifar: $npass passed, $nfail failed"; [ "$nfail" -eq 0 ]; exit $?; }
rm -rf "$T" && mkdir -p "$T" || exit 1
for b in "cifar2hpd:$FLAGS:tools/cifar2hpd.c" "cifar2hpd-asan:$ASAN:tools/cifar2hpd.c" "cifar_files:$FLAGS:tests/cifar_files.c"; do
    name=${b%%:*}; rest=${b#*:}; fl=${rest%:*}; src=${rest##*:}
    if ! out=$($CC $fl "$src" -o "$B/$name" -lm 2>&1); then fail "cifar: build $name" "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish; fi
done
pass "cifar: build"
"$B/cifar_files" write "$T" || { fail "cifar: writing the test files" "cifar_files write"; finish; }

for X in cifar2hpd cifar2hpd-asan; do
    C=$B/$X
    if "$C" "$T/c10_a.bin" "$T/c10_b.bin" "$T/o10.hpd" >"$T/out.txt" 2>&1 && "$B/cifar_files" check10 "$T/o10.hpd" >"$T/chk.txt" &&
       grep -q "5 pictures 3x32x32 from 2 files" "$T/out.txt"; then pass "$X: CIFAR-10, two files joined, every byte and class"
    else fail "$X: CIFAR-10" "$(cat "$T/out.txt" "$T/chk.txt" | tr '\n' ' ')"; fi
    if "$C" --cifar100 --source c100/test "$T/c100.bin" "$T/o100.hpd" >"$T/out.txt" 2>&1 && "$B/cifar_files" check100 "$T/o100.hpd" >"$T/chk.txt"
    then pass "$X: CIFAR-100, coarse and fine labels"
    else fail "$X: CIFAR-100" "$(cat "$T/out.txt" "$T/chk.txt" | tr '\n' ' ')"; fi
done

# err NAME CODE TEXT ARGS...: exit status CODE, one line naming TEXT, no output, no temporary
err() {
    name=$1; code=$2; text=$3; shift 3
    rm -f "$T/x.hpd"
    msg=$("$B/cifar2hpd-asan" "$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -ne "$code" ]; then fail "cifar: $name" "exit $rc, expected $code: $msg"
    elif ! printf '%s\n' "$msg" | grep -q -- "$text"; then fail "cifar: $name" "message lacks \"$text\": $msg"
    elif [ -e "$T/x.hpd" ] || ls "$T"/*.tmp >/dev/null 2>&1; then fail "cifar: $name" "output or temporary left behind"
    else pass "cifar: $name (exit $rc)"; fi
}
err "a cut file" 1 "c10_cut.bin: 9214 bytes is not a whole number of 3073-byte CIFAR-10 records" "$T/c10_cut.bin" "$T/x.hpd"
err "an empty file" 1 "empty.bin: empty" "$T/empty.bin" "$T/x.hpd"
err "CIFAR-10 label 10" 1 "c10_label10.bin: record 1 has label 10" "$T/c10_a.bin" "$T/c10_label10.bin" "$T/x.hpd"
err "CIFAR-100 fine label 100" 1 "c100_fine100.bin: record 1 has coarse label 0 and fine label 100" --cifar100 "$T/c100_fine100.bin" "$T/x.hpd"
err "CIFAR-100 file without --cifar100" 1 "add --cifar100" "$T/c100.bin" "$T/x.hpd"
err "CIFAR-10 file with --cifar100" 1 "drop --cifar100" --cifar100 "$T/c10_a.bin" "$T/x.hpd"
err "a folder" 1 "cifar_tmp: not a regular file" "$T" "$T/x.hpd"
err "a missing file" 1 "nope.bin: cannot open" "$T/nope.bin" "$T/x.hpd"
err "no input" 2 "usage: cifar2hpd" "$T/x.hpd"
err "an unknown option" 2 "unknown option --frob" --frob "$T/c10_a.bin" "$T/x.hpd"
cp "$T/o10.hpd" "$T/keep.hpd"
if ! "$B/cifar2hpd" "$T/c10_a.bin" "$T/c10_label10.bin" "$T/o10.hpd" >/dev/null 2>&1 && cmp -s "$T/o10.hpd" "$T/keep.hpd"
then pass "cifar: a failed conversion keeps the old output"
else fail "cifar: a failed conversion" "the old output changed"; fi
if "$B/cifar2hpd" --help | grep -q "^usage: cifar2hpd" && "$B/cifar2hpd" --version | grep -q "^cifar2hpd "; then pass "cifar: --help, --version"
else fail "cifar: --help, --version" "no usage or version line"; fi
finish
