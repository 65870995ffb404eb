#!/bin/sh
# tests/test_determinism.sh - the same build trains the same checkpoint, byte for byte, for any
# thread count, also when another process keeps a core busy (issue #17: a GEMM workspace race
# showed only when one thread fell behind the other, so an idle machine never saw it).
# A busy process (a shell loop) runs beside every training; OMP_WAIT_POLICY is unset (as a
# user has it) and then passive. Every run's model.hpm must equal the first one's.
#   DET=sample (default; run by make test): one build (the Makefile's native flags: -O3
#       -march=native -ffp-contract=fast -fopenmp), the CLI with presets mlp-mnist and
#       cnn-dsprites on generated data, 3 runs per thread count (1, 2, 3), both policies
#   DET=full (make check-determinism; too long for CI, see .ci/run): gcc and clang at -O1 and -O3; the CLI's
#       presets mlp-mnist, mlp-dsprites, cnn-dsprites, cnn-dsprites-tc, cnn-shapes3d and every
#       training example; with OMP_WAIT_POLICY unset RUNS (default 10) runs at 2 and at 3
#       threads against one at 1, with passive 3 at each (BUILDS, PROGS pick some)
# Data: 600 MNIST-shaped pictures (tests/idx_helper.c through tools/idx2hpd), dSprites- and
# Shapes3D-like pictures from tools/gen_*. Nothing is downloaded. One PASS/FAIL line per
# (build, program, wait policy); a FAIL names the runs whose checkpoints differed.
cd "$(dirname "$0")/.." || exit 1
DET=${DET:-sample}
B=tests/build/det
rm -rf "$B" && mkdir -p "$B" || exit 1
passed=0; failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
skip() { echo "SKIP $1: $2"; }
finish() {
    [ -n "$busy" ] && kill "$busy" 2>/dev/null
    echo "test_determinism.sh ($DET): $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}
busy=""
trap 'finish' INT TERM

case $DET in
sample) BUILDS=${BUILDS:-"gcc:-O3"}; RUNS=${RUNS:-3}; THREADS="1 2 3"
        PROGS=${PROGS:-"cli:mlp-mnist cli:cnn-dsprites"} ;;
full)   BUILDS=${BUILDS:-"gcc:-O1 gcc:-O3 clang:-O1 clang:-O3"}; RUNS=${RUNS:-10}; THREADS="1 2 3"
        PROGS=${PROGS:-"cli:mlp-mnist cli:mlp-dsprites cli:cnn-dsprites cli:cnn-dsprites-tc cli:cnn-shapes3d
               vae_mnist betavae_dsprites capacity_dsprites betatcvae_dsprites betatcvae_shapes3d"} ;;
*) echo "test_determinism.sh: DET is sample or full, not '$DET'" >&2; exit 2 ;;
esac
[ -f /usr/include/stb/stb_image_write.h ] || { skip determinism "no libstb-dev (make deps)"; exit 0; }
WARN="-Wall -Wextra -Wpedantic -Wdouble-promotion -Werror"
POSIX="-D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64"

# ---- data --------------------------------------------------------------------------------------
D=$B/data
mkdir -p "$D"
gcc -std=c99 -O2 $WARN -I. tests/idx_helper.c -o "$B/idx_helper" -lm &&
    gcc -std=c99 -O2 $WARN $POSIX -I. tools/idx2hpd.c -o "$B/idx2hpd" -lm &&
    gcc -std=c99 -O2 $WARN $POSIX -I. tools/gen_dsprites.c -o "$B/gen_dsprites" -lstb -lm &&
    gcc -std=c99 -O2 $WARN $POSIX -I. tools/gen_shapes3d.c -o "$B/gen_shapes3d" -lstb -lm ||
    { fail "determinism: data tools build"; finish; }
"$B/idx_helper" write "$D" >/dev/null &&
    "$B/idx2hpd" "$D/big-img.idx" "$D/big-lab.idx" "$D/mnist.hpd" >/dev/null &&
    "$B/gen_dsprites" --quiet --random 512 --seed 5 "$D/dsprites.hpd" >/dev/null &&
    "$B/gen_shapes3d" --quiet --random 256 --seed 5 "$D/shapes3d.hpd" >/dev/null ||
    { fail "determinism: data"; finish; }

# train BIN PROG T OUT: one short training of PROG at T threads into OUT/
train() {
    bin=$1; prog=$2; t=$3; out=$4
    case $prog in
    cli:mlp-mnist)    "$bin/hephaestus" train --data "$D/mnist.hpd" --preset mlp-mnist --steps 20 --batch-size 128 --threads "$t" --out "$out" ;;
    cli:mlp-dsprites) "$bin/hephaestus" train --data "$D/dsprites.hpd" --preset mlp-dsprites --steps 4 --batch-size 64 --threads "$t" --out "$out" ;;
    cli:cnn-dsprites) "$bin/hephaestus" train --data "$D/dsprites.hpd" --preset cnn-dsprites --steps 6 --batch-size 64 --threads "$t" --out "$out" ;;
    cli:cnn-dsprites-tc) "$bin/hephaestus" train --data "$D/dsprites.hpd" --preset cnn-dsprites-tc --objective tcvae --steps 6 --batch-size 64 --threads "$t" --out "$out" ;;
    cli:cnn-shapes3d) "$bin/hephaestus" train --data "$D/shapes3d.hpd" --preset cnn-shapes3d --steps 3 --batch-size 32 --threads "$t" --out "$out" ;;
    vae_mnist)        "$bin/vae_mnist" --train "$D/mnist.hpd" --test "$D/mnist.hpd" --epochs 2 --batch 128 --threads "$t" --out "$out" ;;
    betavae_dsprites|capacity_dsprites|betatcvae_dsprites)
                      "$bin/$prog" --data "$D/dsprites.hpd" --epochs 1 --batches 4 --batch 64 --eval-n 256 --mig-cont-n 0 --threads "$t" --out "$out" ;;
    betatcvae_shapes3d) "$bin/$prog" --data "$D/shapes3d.hpd" --epochs 1 --batches 3 --batch 32 --eval-n 128 --mig-cont-n 0 --ssim-n 0 --threads "$t" --out "$out" ;;
    esac
}

# build CC LEVEL DIR: the CLI and the examples as the Makefile builds them, at LEVEL
build() {
    cc=$1; lvl=$2; dir=$3
    mkdir -p "$dir"
    f="-std=c99 $lvl -march=native -ffp-contract=fast -fno-math-errno -fopenmp $WARN $POSIX -I."
    ok=0
    $cc $f tools/hephaestus.c -o "$dir/hephaestus" -lstb -lm >"$dir/build.log" 2>&1 || ok=1
    if [ "$DET" = full ]; then
        for e in vae_mnist betavae_dsprites capacity_dsprites betatcvae_dsprites betatcvae_shapes3d; do
            $cc $f "examples/$e.c" -o "$dir/$e" -lstb -lm >>"$dir/build.log" 2>&1 || ok=1
        done
    fi
    return $ok
}

# a busy process beside the trainings: one core is taken while they run
( while :; do :; done ) &
busy=$!

for b in $BUILDS; do
    cc=${b%%:*}; lvl=${b#*:}
    dir=$B/$cc$lvl
    if ! command -v "$cc" >/dev/null 2>&1; then skip "determinism: $cc" "not installed"; continue; fi
    printf '#include <omp.h>\nint main(void){return omp_get_max_threads()>0?0:1;}\n' >"$B/omp.c"
    if ! $cc -fopenmp "$B/omp.c" -o "$B/omp" >/dev/null 2>&1; then
        skip "determinism: $cc $lvl" "$cc -fopenmp does not link (clang needs libomp-dev)"; continue
    fi
    if ! build "$cc" "$lvl" "$dir"; then fail "determinism: build $cc $lvl" "$(head -n 3 "$dir/build.log" | tr '\n' ' ')"; continue; fi
    for p in $PROGS; do
        for pol in unset passive; do
            name="determinism: $cc $lvl $p, busy core, OMP_WAIT_POLICY $pol"
            ref=""; bad=""; n=0; err=""
            ck=model.hpm; [ "$p" = vae_mnist ] && ck=vae_mnist.hpm # the example's own name
            for t in $THREADS; do
                k=1
                runs=$RUNS
                [ "$DET" = full ] && [ "$t" = 1 ] && runs=1 # one thread has nothing to race
                [ "$DET" = full ] && [ "$pol" = passive ] && [ "$runs" -gt 3 ] && runs=3
                while [ "$k" -le "$runs" ]; do
                    out=$dir/run-$(echo "$p" | tr ':' '-')-$pol-$t-$k
                    rm -rf "$out"
                    if [ "$pol" = unset ]; then
                        (unset OMP_WAIT_POLICY; train "$dir" "$p" "$t" "$out") >"$out.log" 2>&1
                    else
                        (OMP_WAIT_POLICY=passive; export OMP_WAIT_POLICY; train "$dir" "$p" "$t" "$out") >"$out.log" 2>&1
                    fi
                    rc=$?
                    n=$((n + 1))
                    if [ "$rc" -ne 0 ] || [ ! -f "$out/$ck" ]; then
                        err="$t threads run $k: exit $rc: $(tail -n 1 "$out.log")"; break 2
                    fi
                    h=$(cksum <"$out/$ck")
                    if [ -z "$ref" ]; then ref=$h; elif [ "$h" != "$ref" ]; then bad="$bad $t:$k"; fi
                    rm -rf "$out" "$out.log"
                    k=$((k + 1))
                done
            done
            if [ -n "$err" ]; then fail "$name" "$err"
            elif [ -n "$bad" ]; then fail "$name" "checkpoints differ from the first run's (threads:run)$bad"
            else pass "$name: $n runs at $(echo $THREADS | tr ' ' ',') threads, one checkpoint"; fi
        done
    done
done
finish
