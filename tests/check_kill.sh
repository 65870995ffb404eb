#!/bin/sh
# tests/check_kill.sh - `make check-kill`: checkpoints survive SIGKILL, and a resumed run is the
# uninterrupted one, bit for bit (issue #7).
#  1. a tiny dataset (gen_shapes3d --random) and a reference run: hephaestus train, one
#     thread, STEPS steps, a checkpoint every EVERY steps, uninterrupted;
#  2. the same run started, killed with SIGKILL at a random moment, resumed from its
#     checkpoint (started afresh while there is none yet), KILLS times; after every kill the
#     checkpoint must load (hephaestus export) and must not be older than before the kill;
#  3. the last run goes to the end; its checkpoint must equal the reference's byte for byte
#     (parameters, Adam state, step, generator: the same batches and noise after each resume).
# Prints PASS/FAIL lines, then "kills N, during a checkpoint write M, checkpoints lost L" and
# the time taken. Everything runs under nice -n 19.
# Environment: KILLS (30), STEPS (600), EVERY (3), SEED (1, the kill moments), H (the CLI,
# default build/hephaestus), GEN (default build/gen_shapes3d).
cd "$(dirname "$0")/.." || exit 1
KILLS=${KILLS:-30}
STEPS=${STEPS:-600}
EVERY=${EVERY:-3}
SEED=${SEED:-1}
H=${H:-build/hephaestus}
GEN=${GEN:-build/gen_shapes3d}
T=tests/build/kill
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
npass=0; nfail=0
pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() { echo "check-kill: $npass passed, $nfail failed ($(($(date +%s) - t0)) s)"; [ "$nfail" -eq 0 ]; exit $?; }
t0=$(date +%s)
for f in "$H" "$GEN"; do [ -x "$f" ] || { fail setup "$f is missing (make tools)"; finish; }; done
rm -rf "$T" && mkdir -p "$T" || exit 1
nice -n 19 "$GEN" --quiet --random 64 --seed 3 "$T/data.hpd" >/dev/null 2>&1 || { fail setup "gen_shapes3d"; finish; }
ARGS="--data $T/data.hpd --enc dense32,relu --dec dense12288 --z 4 --batch-size 8 --seed 7 --threads 1 --steps $STEPS --checkpoint-every $EVERY --log-every 50"
r0=$(date +%s.%N)
if nice -n 19 $H train $ARGS --out "$T/ref" >"$T/ref.log" 2>&1; then pass "reference run ($STEPS steps)"; else fail "reference run" "$(tail -n 1 "$T/ref.log")"; finish; fi
tref=$(echo "$r0 $(date +%s.%N)" | awk '{ printf "%.2f", $2 - $1 }')
# step of a checkpoint that loads, or "bad"
ckpt_step() {
    out=$(nice -n 19 $H export --model "$1" --out "$T/verify.hpm" --keep-optimiser 2>&1) || { echo bad; return; }
    echo "$out" | sed -n 's/.*step \([0-9]*\).*/\1/p'
}
# kill moments: uniform in [0.05, 0.05 + tref / KILLS] s after each start
rand_delays=$(awk -v n="$KILLS" -v s="$SEED" -v t="$tref" 'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%.3f\n", 0.05 + rand() * t / n }')
kills=0; in_write=0; lost=0; finished_early=0; last=0
for d in $rand_delays; do
    if [ -f "$T/run/model.hpm" ]; then
        nice -n 19 $H train --data "$T/data.hpd" --resume "$T/run/model.hpm" --threads 1 --steps "$STEPS" --checkpoint-every "$EVERY" --log-every 50 --batch-size 8 --out "$T/run" >>"$T/run.log" 2>&1 &
    else
        nice -n 19 $H train $ARGS --out "$T/run" >>"$T/run.log" 2>&1 &
    fi
    pid=$!
    sleep "$d"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); else finished_early=1; fi
    wait "$pid" 2>/dev/null
    # a kill during a checkpoint write leaves its temporary (model.hpm.PID.N.tmp since issue #20)
    tmps=$(ls "$T/run/" | grep '^model\.hpm\..*tmp$')
    [ -n "$tmps" ] && in_write=$((in_write + 1)) && (cd "$T/run" && rm -f $tmps)
    if [ -f "$T/run/model.hpm" ]; then
        s=$(ckpt_step "$T/run/model.hpm")
        if [ "$s" = bad ] || [ -z "$s" ] || [ "$s" -lt "$last" ]; then
            lost=$((lost + 1)); echo "kill $kills: checkpoint lost or older (step '$s', was $last)"
        else last=$s; fi
    elif [ "$last" -gt 0 ]; then
        lost=$((lost + 1)); echo "kill $kills: the checkpoint disappeared"
    fi
    [ "$finished_early" -eq 1 ] && break
done
# the last run, to the end
if [ -f "$T/run/model.hpm" ]; then
    nice -n 19 $H train --data "$T/data.hpd" --resume "$T/run/model.hpm" --threads 1 --steps "$STEPS" --checkpoint-every "$EVERY" --log-every 50 --batch-size 8 --out "$T/run" >>"$T/run.log" 2>&1
else
    nice -n 19 $H train $ARGS --out "$T/run" >>"$T/run.log" 2>&1
fi
rc=$?
echo "kills $kills (reference run ${tref} s, kill moments 0.05..$(awk -v t="$tref" -v n="$KILLS" 'BEGIN { printf "%.2f", 0.05 + t / n }') s after each start), during a checkpoint write $in_write, checkpoints lost $lost, last checkpoint before the final run at step $last"
if [ "$kills" -ge "$KILLS" ]; then pass "$kills kills delivered"; else fail "kills" "only $kills of $KILLS (the run finished first)"; fi
if [ "$lost" -eq 0 ]; then pass "no checkpoint lost: each loaded after its kill, none older than before"; else fail "checkpoints" "$lost lost"; fi
if [ "$rc" -eq 0 ] && cmp -s "$T/ref/model.hpm" "$T/run/model.hpm"; then
    pass "resumed $kills times = uninterrupted: final checkpoints identical ($(wc -c <"$T/ref/model.hpm") bytes: parameters, Adam state, step, generator)"
else
    fail "bit-identical resume" "final run exit $rc; $(cmp "$T/ref/model.hpm" "$T/run/model.hpm" 2>&1 | head -n 1)"
fi
finish
