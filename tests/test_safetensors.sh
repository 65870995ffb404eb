#!/bin/sh
# tests/test_safetensors.sh - hephaestus export --format safetensors / hephaestus import
# (issue #27), POSIX sh, from the repository root: sh tests/test_safetensors.sh
#   1. the committed fixture (a small VAE that PyTorch built, with PyTorch's outputs for fixed
#      inputs, tools/make_safetensors_fixtures.py) imported: the C model's encoder means,
#      log-variances and decoder outputs agree with PyTorch's within 1e-5; exported again it
#      gives the same tensors byte for byte
#   2. each preset (mlp-mnist, mlp-dsprites, cnn-dsprites, cnn-dsprites-tc, cnn-shapes3d), a
#      small conv model with maxpool2 in its encoder (st_helper's "pool") and one with BatchNorm
#      in both networks ("bn", trained 3 steps so that its running statistics moved), freshly initialised: .hpm -> safetensors -> .hpm gives the same parameters bit for bit
#   3. malformed files: each is refused (exit 1) with one line naming the file and the problem,
#      and leaves no output or temporary file behind
#   4. live PyTorch (Debian's /usr/bin/python3 with python3-torch): each preset exported and
#      loaded into the nn.Module of tools/hephaestus_torch.py (load_state_dict strict);
#      encoder means, log-variances and decoder outputs within 1e-5 of the C model's for the
#      same inputs; and the fixture made afresh by PyTorch imports and agrees within 1e-5.
#      Without torch: a SKIP line saying so (parts 1-3 still run).
# Prints PASS/FAIL lines and "safetensors: N passed, N failed". About 15 s (30 s with torch).
# Environment: CC (default cc), PYTHON_TORCH (default /usr/bin/python3).
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
PY=${PYTHON_TORCH:-/usr/bin/python3}
B=tests/build
T=$B/st_tmp
FLAGS="-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 -I."
H=$B/hephaestus_st
S=$B/st_helper
TOL=1e-5
PRESETS="mlp-mnist mlp-dsprites cnn-dsprites cnn-dsprites-tc cnn-shapes3d pool bn" # pool, bn: st_helper's maxpool2 and BatchNorm models
npass=0
nfail=0
mkdir -p "$B" || exit 1
rm -rf "$T" && mkdir -p "$T" || exit 1
export OMP_WAIT_POLICY=passive

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() {
    [ "$nfail" -eq 0 ] && rm -rf "$T"
    echo "safetensors: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}
last() { tail -n 1 | cut -c1-300; }

# ---- build ------------------------------------------------------------------------------------
if ! out=$($CC $FLAGS tools/hephaestus.c -o $H -lstb -lm 2>&1); then fail st_build_cli "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish; fi
if ! out=$($CC $FLAGS tests/st_helper.c -o $S -lm 2>&1); then fail st_build_helper "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish; fi

# ---- 1. the PyTorch-made fixture --------------------------------------------------------------
F=tests/fixtures/st_small.safetensors
R=tests/fixtures/st_small_ref.safetensors
if out=$($H import "$F" "$T/small.hpm" 2>&1) && out=$($S compare "$T/small.hpm" "$R" $TOL 2>&1); then
    pass "st_fixture_matches_pytorch (import of a PyTorch-made model; $out, tolerance $TOL)"
else fail st_fixture_matches_pytorch "$(echo "$out" | last)"; fi
if out=$($H export --format safetensors "$T/small.hpm" "$T/small2.safetensors" 2>&1) &&
   out=$($S same-tensors "$F" "$T/small2.safetensors" 2>&1); then pass "st_fixture_export_same_bytes ($out)"
else fail st_fixture_export_same_bytes "$(echo "$out" | last)"; fi
if out=$($H import --model "$T/small2.safetensors" --out "$T/small3.hpm" 2>&1) && cmp -s "$T/small.hpm" "$T/small3.hpm"; then
    pass st_fixture_reimport_same_checkpoint
else fail st_fixture_reimport_same_checkpoint "the two imports differ: $(echo "$out" | last)"; fi

# ---- 2. every preset, .hpm -> safetensors -> .hpm -----------------------------------------------
for p in $PRESETS; do
    if out=$($S init $p 7 "$T/$p.hpm" 2>&1) && out=$($H export --format safetensors --model "$T/$p.hpm" --out "$T/$p.safetensors" 2>&1) &&
       out=$($H import "$T/$p.safetensors" "$T/$p-back.hpm" 2>&1) && out=$($S same "$T/$p.hpm" "$T/$p-back.hpm" 2>&1); then
        pass "st_round_trip_$p ($out)"
    else fail "st_round_trip_$p" "$(echo "$out" | last)"; fi
done

# ---- 3. malformed files ---------------------------------------------------------------------------
G=$T/mlp-mnist.safetensors
# bad NAME CASE TEXT: the variant CASE of G must be refused naming its file, with TEXT
bad() {
    name=$1; case_=$2; text=$3
    f=$T/bad-$case_.safetensors
    if ! out=$($S bad "$G" "$case_" "$f" 2>&1); then fail "st_bad_$name" "cannot make the file: $out"; return; fi
    out=$($H import "$f" "$T/bad-out.hpm" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne 1 ]; then fail "st_bad_$name" "exit status $rc, expected 1 ($(echo "$out" | last))"
    elif [ "$(echo "$out" | wc -l)" -ne 1 ]; then fail "st_bad_$name" "expected one line on stderr: $(echo "$out" | tr '\n' '|')"
    elif ! echo "$out" | grep -q -F "$f"; then fail "st_bad_$name" "the message does not name the file: $out"
    elif ! echo "$out" | grep -q -F -- "$text"; then fail "st_bad_$name" "the message lacks \"$text\": $out"
    elif ls "$T"/bad-out.hpm* >/dev/null 2>&1; then fail "st_bad_$name" "left $(ls "$T"/bad-out.hpm* | tr '\n' ' ') behind"
    else pass "st_bad_$name"; fi
}
if [ -f "$G" ]; then
    bad truncated truncated "outside the"
    bad short_file short "truncated: 5 bytes"
    bad header_length header-length "exceeds"
    bad not_an_object not-object "not a JSON object"
    bad json_trailing json-trailing "bytes after the JSON object"
    bad unterminated unterminated "header byte"
    bad bad_escape bad-escape "unknown escape"
    bad dtype_unknown dtype-unknown "unknown dtype"
    bad dtype_f16 dtype-f16 "is F16; import reads F32"
    bad shape_swapped shape-swapped "has shape [784,400], the model needs [400,784]"
    bad shape_negative shape-negative "non-negative integer"
    bad size_mismatch size-mismatch "data_offsets give"
    bad overlap overlap "overlapping tensors"
    bad hole hole "a hole between tensors"
    bad trailing_data trailing "trailing bytes"
    bad duplicate_name duplicate "given twice"
    bad missing_tensor missing "no tensor \"decoder.2.bias\""
    bad extra_tensor extra "\"encoder.99.weight\" is not part of the model"
    bad no_metadata no-meta "give --preset NAME"
    bad metadata_number meta-number "metadata values must be strings"
    bad metadata_bad_spec bad-spec "cannot be built"
    bad metadata_bad_shape bad-shape-meta "input_shape \"1,28\" is not C,H,W"
    # a NaN weight (found by tests/hostile/run.sh): refused, not written into a checkpoint that the
    # loader then refuses (issue #20 class 2)
    hl=$(od -An -t u8 -N 8 "$G" | tr -d ' ')
    cp "$G" "$T/bad-nan.safetensors" && printf '\000\000\300\177' | dd of="$T/bad-nan.safetensors" bs=1 seek=$((8 + hl)) conv=notrunc 2>/dev/null
    out=$($H import "$T/bad-nan.safetensors" "$T/bad-out.hpm" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -eq 1 ] && echo "$out" | grep -q -F "bad-nan.safetensors: tensor \"encoder.0.weight\": element 0 is nan" && [ ! -e "$T/bad-out.hpm" ]; then
        pass st_bad_nan_weight
    else fail st_bad_nan_weight "exit $rc: $out"; fi
    out=$($H import --preset mlp-mnist "$T/bad-no-meta.safetensors" "$T/nometa.hpm" 2>&1) && out=$($S same "$T/mlp-mnist.hpm" "$T/nometa.hpm" 2>&1) &&
        pass "st_no_metadata_with_preset ($out)" || fail st_no_metadata_with_preset "$(echo "$out" | last)"
    out=$($H import "$T/no-such.safetensors" "$T/x.hpm" 2>&1)
    [ $? -eq 1 ] && echo "$out" | grep -q "no-such.safetensors: cannot open" && pass st_missing_file || fail st_missing_file "$out"
    out=$($H export --format onnx "$T/mlp-mnist.hpm" "$T/x.onnx" 2>&1)
    [ $? -eq 2 ] && echo "$out" | grep -q "hpm or safetensors" && pass st_export_unknown_format || fail st_export_unknown_format "$out"
    if ls "$T"/*.XXXXXX* "$T"/*.tmp "$T"/*.hpm.?????? "$T"/*.safetensors.?????? >/dev/null 2>&1; then
        fail st_no_temporary_files "$(ls "$T"/*.hpm.?????? "$T"/*.safetensors.?????? "$T"/*.tmp 2>/dev/null | tr '\n' ' ')"
    else pass st_no_temporary_files; fi
else fail st_bad_files "no $G to start from"; fi

# ---- 4. live PyTorch --------------------------------------------------------------------------------
if "$PY" -c "import torch" >/dev/null 2>&1; then
    for p in $PRESETS; do
        if out=$($S ref "$T/$p.hpm" 8 11 "$T/$p-ref.safetensors" 2>&1) &&
           out=$(OMP_NUM_THREADS=1 "$PY" tests/torch_check.py "$T/$p.safetensors" "$T/$p-ref.safetensors" $TOL 2>&1); then
            pass "st_torch_$p ($out, tolerance $TOL)"
        else fail "st_torch_$p" "$(echo "$out" | last)"; fi
    done
    if out=$(OMP_NUM_THREADS=1 "$PY" tools/make_safetensors_fixtures.py "$T" 2>&1) &&
       out=$($H import "$T/st_small.safetensors" "$T/fresh.hpm" 2>&1) &&
       out=$($S compare "$T/fresh.hpm" "$T/st_small_ref.safetensors" $TOL 2>&1); then
        pass "st_torch_made_now_imports ($out)"
    else fail st_torch_made_now_imports "$(echo "$out" | last)"; fi
else
    echo "SKIP st_torch: $PY cannot import torch (apt-get install python3-torch): the live PyTorch comparison did not run; the committed PyTorch fixture was checked instead"
fi
finish
