#!/bin/sh
# tests/test_cli.sh - end-to-end tests of the hephaestus command-line tool (POSIX sh).
# Run from the repository root: sh tests/test_cli.sh
# Builds tools/hephaestus.c and tools/gen_shapes3d.c into tests/build/, renders a few hundred
# Shapes3D-like pictures, trains a tiny MLP VAE on them, builds a context batch and runs every
# subcommand on it. Prints one "PASS name" or "FAIL name: why" line per check, a last line
# "N passed, N failed", and exits 1 if any check failed. About 20 s on 2 cores.
# Environment: CC (default cc); CLI_CFLAGS replaces the compiler flags below.

cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=tests/build
T=$B/cli_tmp
FLAGS=${CLI_CFLAGS:-"-std=c99 -O2 -Wall -Wextra -Wpedantic -Wdouble-promotion -Werror -D_POSIX_C_SOURCE=200809L -I."}
H=$B/hephaestus
GEN=$B/gen_shapes3d_cli
npass=0
nfail=0
mkdir -p "$B" || exit 1
rm -rf "$T"
mkdir -p "$T" || exit 1

pass() { npass=$((npass + 1)); echo "PASS $1"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $1: $2"; }
finish() {
    [ "$nfail" -eq 0 ] && rm -rf "$T" # kept for a look when something failed
    echo "cli: $npass passed, $nfail failed"
    [ "$nfail" -eq 0 ]
    exit $?
}
# check NAME CMD...: PASS when CMD exits 0, else FAIL with its last output line
check() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 1)"; fi
}
# check_err NAME CODE TEXT CMD...: CMD must exit with CODE and print one line containing TEXT
check_err() {
    name=$1; code=$2; text=$3; shift 3
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne "$code" ]; then fail "$name" "exit status $rc, expected $code ($(echo "$out" | tail -n 1))"
    elif [ "$(echo "$out" | wc -l)" -ne 1 ]; then fail "$name" "expected one line on stderr, got: $(echo "$out" | tr '\n' '|')"
    elif ! echo "$out" | grep -q -- "$text"; then fail "$name" "message lacks \"$text\": $out"
    else pass "$name"; fi
}
# png_size FILE: "WxH" from the PNG header (IHDR width and height, big-endian)
png_size() {
    [ -f "$1" ] || { echo "missing"; return; }
    set -- $(od -A n -t u1 -j 16 -N 8 "$1")
    echo "$(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 ))x$(( ($5 << 24) + ($6 << 16) + ($7 << 8) + $8 ))"
}
# check_png NAME FILE WxH
check_png() {
    got=$(png_size "$2")
    if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "$2 is $got, expected $3"; fi
}

# ---- build ----------------------------------------------------------------------------------
if ! out=$($CC $FLAGS tools/hephaestus.c -o $H -lstb -lm 2>&1); then
    fail cli_build "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish
fi
if ! out=$($CC $FLAGS tools/gen_shapes3d.c -o $GEN -lstb -lm 2>&1); then
    fail cli_build_gen_shapes3d "$(echo "$out" | head -n 3 | tr '\n' ' ')"; finish
fi
pass cli_build

# ---- help and usage errors ------------------------------------------------------------------
ok=1
for sub in "" train outliers explain counterfactual morph report traverse sample eval batch classifier relabel cycle-train transfer cycle-eval; do
    if ! $H $sub --help 2>&1 | grep -q '^usage: hephaestus'; then ok=0; fail cli_help "hephaestus $sub --help"; fi
    $H $sub --help >/dev/null 2>&1 || { ok=0; fail cli_help "hephaestus $sub --help exits $?"; }
done
[ $ok -eq 1 ] && pass cli_help_every_subcommand
$H >/dev/null 2>&1
rc=$?
if [ $rc -eq 2 ]; then pass cli_usage_no_args; else fail cli_usage_no_args "exit status $rc, expected 2"; fi
check_err cli_usage_unknown_subcommand 2 'unknown subcommand "frob"' $H frob
check_err cli_usage_unknown_option 2 "unknown option --bogus" $H outliers --bogus
check_err cli_usage_missing_model 2 "--model is required" $H outliers --batch x.hpd
check_err cli_usage_bad_cov 2 "--cov takes" $H outliers --model m --batch b --cov magic
check_err cli_usage_bad_auto 2 "--auto takes" $H outliers --model m --batch b --auto median

# ---- data and a tiny model ------------------------------------------------------------------
check cli_gen_data $GEN --quiet --random 300 --seed 3 $T/src.hpd
TRAIN="--data $T/src.hpd --enc dense32,relu --dec dense32,relu,dense12288 --z 4 --batch-size 32 --seed 7"
check cli_train $H train $TRAIN --steps 40 --out $T/m
if [ -s $T/m/model.hpm ] && [ "$(wc -l < $T/m/train_log.csv)" -ge 3 ]; then pass cli_train_outputs
else fail cli_train_outputs "model.hpm or train_log.csv missing"; fi
first=$(sed -n 2p $T/m/train_log.csv | cut -d, -f2)
last=$(tail -n 1 $T/m/train_log.csv | cut -d, -f2)
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'; then pass cli_train_loss_falls
else fail cli_train_loss_falls "loss $first -> $last"; fi
# a run stopped at a checkpoint and resumed gives the same bits as an uninterrupted one
$H train $TRAIN --steps 12 --objective tcvae --beta 4 --estimator mss --out $T/r1 >/dev/null 2>&1
$H train $TRAIN --steps 6 --objective tcvae --beta 4 --estimator mss --out $T/r2 >/dev/null 2>&1
$H train --data $T/src.hpd --resume $T/r2/model.hpm --steps 12 --batch-size 32 --out $T/r2 >/dev/null 2>&1
if [ -s $T/r1/model.hpm ] && cmp -s $T/r1/model.hpm $T/r2/model.hpm; then pass cli_train_resume_exact
else fail cli_train_resume_exact "12 steps differ from 6 + resumed 6 (beta-TCVAE, MSS)"; fi
check_err cli_train_preset_wrong_shape 1 "but the model takes 1x28x28" $H train --preset mlp-mnist --data $T/src.hpd --steps 1 --out $T/x

# ---- batch ----------------------------------------------------------------------------------
check cli_batch $H batch --data $T/src.hpd --normal shape=2,wall_hue=0-7 --n-normal 40 --outlier violate --n-outlier 8 --seed 2 --out $T/b.hpd
check_err cli_batch_too_many 1 "only" $H batch --data $T/src.hpd --normal shape=2,wall_hue=0 --n-normal 400 --out $T/x.hpd
check_err cli_batch_unknown_factor 1 'no factor "colour"' $H batch --data $T/src.hpd --normal colour=1 --out $T/x.hpd
check_err cli_batch_bad_rule 2 "is not factor=values" $H batch --data $T/src.hpd --normal shape --out $T/x.hpd

# ---- outliers -------------------------------------------------------------------------------
M="--model $T/m/model.hpm"
if $H outliers $M --batch $T/b.hpd --out $T/o >$T/o.txt 2>&1; then pass cli_outliers; else fail cli_outliers "$(tail -n 1 $T/o.txt)"; fi
rows=$(($(wc -l < $T/o/outliers.csv) - 1))
if [ "$rows" -eq 48 ]; then pass cli_outliers_one_row_per_picture; else fail cli_outliers_one_row_per_picture "$rows rows for 48 pictures"; fi
ranks=$(tail -n +2 $T/o/outliers.csv | cut -d, -f5 | sort -n | tr '\n' ' ')
idx=$(tail -n +2 $T/o/outliers.csv | cut -d, -f1 | sort -n | awk '{ printf "%d ", $1 + 1 }')
want=$(seq 1 48 | tr '\n' ' ')
if [ "$ranks" = "$want" ] && [ "$idx" = "$want" ]; then pass cli_outliers_ranks_permutation
else fail cli_outliers_ranks_permutation "ranks: $ranks"; fi
if tail -n +2 $T/o/outliers.csv | awk -F, 'NR > 1 && $3 > prev { bad = 1 } { prev = $3 } END { exit bad }'; then pass cli_outliers_sorted
else fail cli_outliers_sorted "rows are not by decreasing D^2"; fi
if [ "$(tail -n +2 $T/o/outliers.csv | cut -d, -f7 | grep -c 1)" -eq 8 ] && grep -q '^AUROC [0-9]' $T/o.txt && [ -s $T/o/auroc.txt ]; then
    pass cli_outliers_auroc_with_truth
else fail cli_outliers_auroc_with_truth "no AUROC line or wrong truth column"; fi
check_png cli_outliers_score_plot $T/o/md_scores.png 800x360
check_png cli_outliers_histogram $T/o/md_histogram.png 800x360
if grep -q '"auroc": [0-9]' $T/o/outliers.json && grep -q '"ranked": \[' $T/o/outliers.json; then pass cli_outliers_json
else fail cli_outliers_json "outliers.json lacks auroc or ranked"; fi
check_err cli_outliers_auroc_without_truth 1 "no AUROC" $H outliers $M --batch $T/src.hpd --auroc --out $T/o2
for mode in "--threshold 50" "--auto chi2:0.99" "--auto mad:2" "--cov empirical" "--cov ledoit-wolf" "--cov ridge:0.01" "--cov mcd:0.75"; do
    $H outliers $M --batch $T/b.hpd $mode --out $T/o3 >/dev/null 2>&1 || { fail cli_outliers_modes "$mode"; mode=bad; break; }
done
[ "$mode" != bad ] && pass cli_outliers_threshold_and_cov_modes
$H outliers $M --batch $T/b.hpd --out $T/o4 >/dev/null 2>&1
if cmp -s $T/o/outliers.csv $T/o4/outliers.csv; then pass cli_outliers_deterministic; else fail cli_outliers_deterministic "two runs differ"; fi

# --score (issue #21): every score ranks the batch, the CSV's last column is it, sorted
for sc in marginal knn knn:3 gmm gmm:2 recon elbo iwae:4 complexity:2; do
    if ! $H outliers $M --batch $T/b.hpd --reference $T/src.hpd --score $sc --out $T/os >$T/os.txt 2>&1; then
        fail "cli_outliers_score_$sc" "$(tail -n 1 $T/os.txt)"; continue
    fi
    if tail -n +2 $T/os/outliers.csv | awk -F, 'NR > 1 && $NF > prev { bad = 1 } { prev = $NF } END { exit bad }' &&
       grep -q "\"score\": \"${sc%%:*}\"" $T/os/outliers.json && grep -q '^AUROC [0-9]' $T/os.txt &&
       grep -q 'quantile of the context' $T/os.txt; then pass "cli_outliers_score_$sc"
    else fail "cli_outliers_score_$sc" "not sorted by the score, or outliers.json/AUROC/threshold missing"; fi
done
if $H outliers $M --batch $T/b.hpd --score marginal --out $T/om >/dev/null 2>&1 &&
   grep -q '"marginal_dim": [0-9]' $T/om/outliers.json; then pass cli_outliers_marginal_names_a_dimension
else fail cli_outliers_marginal_names_a_dimension "no marginal_dim in outliers.json"; fi
check_err cli_outliers_score_unknown 2 "--score takes" $H outliers $M --batch $T/b.hpd --score lof --out $T/x
check_err cli_outliers_score_chi2 2 "--auto chi2 is a threshold on D^2" $H outliers $M --batch $T/b.hpd --score knn --auto chi2 --out $T/x
check_err cli_outliers_knn_too_large 1 "k = 500" $H outliers $M --batch $T/b.hpd --score knn:500 --out $T/x
check_err cli_outliers_iwae_k0 2 "--score iwae:K" $H outliers $M --batch $T/b.hpd --score iwae:0 --out $T/x
# iwae with one sample is the one-sample negative ELBO, picture by picture (the same noise)
if $H outliers $M --batch $T/b.hpd --score iwae:1 --out $T/oi1 >/dev/null 2>&1 &&
   $H outliers $M --batch $T/b.hpd --score elbo:1 --out $T/oe1 >/dev/null 2>&1 &&
   [ "$(cut -d, -f1,2 $T/oi1/outliers.csv | md5sum)" = "$(cut -d, -f1,2 $T/oe1/outliers.csv | md5sum)" ] &&
   [ "$(awk -F, 'NR > 1 { print $NF }' $T/oi1/outliers.csv)" = "$(awk -F, 'NR > 1 { print $NF }' $T/oe1/outliers.csv)" ] &&
   grep -q '"score_parameter": 1' $T/oi1/outliers.json; then pass cli_outliers_iwae1_is_elbo1
else fail cli_outliers_iwae1_is_elbo1 "iwae:1 and elbo:1 rank or score differently"; fi

# combined (issue #21): the default with --reference; members and the deciding one in
# outliers.json, every row's score is the Sidak combination of its members' tail -ln p
if $H outliers $M --batch $T/b.hpd --reference $T/src.hpd --out $T/oc >$T/oc.txt 2>&1 &&
   grep -q '"score": "combined"' $T/oc/outliers.json &&
   grep -q '"members": \["mahalanobis", "marginal", "knn:5", "gmm:5", "recon", "complexity:16"\]' $T/oc/outliers.json &&
   grep -q '"fit_pictures": 210,' $T/oc/outliers.json && grep -q '"calibration_pictures": 90,' $T/oc/outliers.json &&
   [ "$(grep -c '"decided_by": "' $T/oc/outliers.json)" -eq 48 ] && grep -q 'calibrated on the other 90' $T/oc.txt &&
   [ "$(grep -c '"marginal_dim": [0-3], ' $T/oc/outliers.json)" -eq 48 ] &&
   grep -q '0.99 quantile of the calibration' $T/oc.txt; then pass cli_outliers_combined_is_reference_default
else fail cli_outliers_combined_is_reference_default "$(tail -n 3 $T/oc.txt | tr '\n' ' ')"; fi
# explanations: every flagged picture gets its top dimensions, its 3 nearest normal pictures
# (indices into the reference file, 300 pictures) and its reconstruction residual
if awk '/"flagged": true/ { f++ } /"why": / { w++ }
        /"nearest_from": "reference", "nearest": \[\{"index": [0-9]+, "distance": [0-9.e+-]+\}, \{"index": [0-9]+, [^]]*\}, \{"index": / {
            s = $0; sub(/.*"nearest": \[/, "", s); n = split(s, a, "\"index\": ")
            for (i = 2; i <= n; i++) if (a[i] + 0 >= 300) bad = 1; ok++ }
        /"residual": \{"mean_abs": 0\.[0-9]/ { r++ }
        END { exit !(f > 0 && w == f && ok == f && r == f && !bad) }' $T/oc/outliers.json; then pass cli_outliers_explains_every_flagged
else fail cli_outliers_explains_every_flagged "a flagged picture lacks why (top_dims, 3 nearest reference pictures, residual)"; fi
# score = -ln(1 - (1 - p_min)^K) from the members' -ln p in the same row (K = 6)
if awk '/"members_neg_log_p"/ { s = $0; sub(/.*"score": /, "", s); sub(/,.*/, "", s)
        m = $0; sub(/.*"members_neg_log_p": \{/, "", m); sub(/\}.*/, "", m); n = split(m, kv, ", "); best = 0
        for (i = 1; i <= n; i++) { split(kv[i], a, ": "); if (a[2] + 0 > best) best = a[2] + 0 }
        p = exp(-best); P = 1 - (1 - p) ^ n; want = best > 30 ? best - log(n) : -log(P); d = want - s; if (d < 0) d = -d
        if (d > 1e-6 * (1 + want)) bad = 1; rows++ }
     END { exit bad || rows != 48 }' $T/oc/outliers.json; then pass cli_outliers_combined_is_sidak_of_members
else fail cli_outliers_combined_is_sidak_of_members "a row's score is not the Sidak combination of its members"; fi
if $H outliers $M --batch $T/b.hpd --reference $T/src.hpd --score combined:marginal+knn:3+recon --fpr 0.05 --out $T/oc2 >$T/oc2.txt 2>&1 &&
   grep -q '"members": \["marginal", "knn:3", "recon"\]' $T/oc2/outliers.json &&
   grep -q 'false-positive rate 0.05 requested: the 0.95 quantile' $T/oc2.txt &&
   grep -q '"false_positive_rate_requested": 0.05' $T/oc2/outliers.json; then pass cli_outliers_combined_members_and_fpr
else fail cli_outliers_combined_members_and_fpr "$(tail -n 3 $T/oc2.txt | tr '\n' ' ')"; fi
check cli_outliers_combined_context_mode $H outliers $M --batch $T/b.hpd --score combined:mahalanobis+marginal --out $T/oc3
check_err cli_outliers_combined_of_itself 2 "cannot be one of its own members" $H outliers $M --batch $T/b.hpd --score combined:knn+combined --out $T/x
check_err cli_outliers_combined_twice 2 "knn is named twice" $H outliers $M --batch $T/b.hpd --score combined:knn+knn:3 --out $T/x
check_err cli_outliers_combined_no_member 2 "name at least one member" $H outliers $M --batch $T/b.hpd --score combined: --out $T/x
$H batch --data $T/src.hpd --normal shape=0-3 --n-normal 25 --n-outlier 0 --seed 9 --out $T/small.hpd >/dev/null 2>&1
check_err cli_outliers_combined_small_reference 1 "too few for --score combined" $H outliers $M --batch $T/b.hpd --reference $T/small.hpd --out $T/x
check_err cli_outliers_fpr_range 2 "--fpr" $H outliers $M --batch $T/b.hpd --fpr 0.7 --out $T/x
# a saved scorer scores the batch as the reference run did, without the reference pictures
if $H outliers $M --batch $T/b.hpd --reference $T/src.hpd --save-scorer $T/sc.hps --out $T/osa >$T/osa.txt 2>&1 &&
   $H outliers $M --batch $T/b.hpd --scorer $T/sc.hps --out $T/osb >$T/osb.txt 2>&1 &&
   cmp -s $T/osa/outliers.csv $T/osb/outliers.csv && grep -q "from $T/sc.hps: fitted on 210 codes, calibrated on 90" $T/osb.txt &&
   grep -q "\"scorer\": \"$T/sc.hps\"" $T/osb/outliers.json; then pass cli_outliers_scorer_same_scores
else fail cli_outliers_scorer_same_scores "$(tail -n 2 $T/osb.txt | tr '\n' ' ')"; fi
# --stream: the in-memory run's scores and order, bit for bit, across a chunk boundary
# (--chunk 7 rounds up to the model's batch of 32: 48 pictures in chunks of 32 and 16); the
# flagged count; the top N kept in order
if $H outliers $M --batch $T/b.hpd --scorer $T/sc.hps --stream --chunk 7 --top 48 --out $T/ost >$T/ost.txt 2>&1 &&
   [ "$(awk -F, 'NR > 1 { print $1, $NF }' $T/osb/outliers.csv)" = "$(awk -F, 'NR > 1 { print $2, $4 }' $T/ost/outliers.csv)" ] &&
   grep -q "^48 pictures streamed from $T/b.hpd" $T/ost.txt && grep -q '"mode": "stream"' $T/ost/outliers.json &&
   [ "$(grep -o '[0-9][0-9]* flagged' $T/osb.txt | head -n 1)" = "$(grep -o '[0-9][0-9]* flagged' $T/ost.txt | head -n 1)" ] &&
   grep -q 'truth is_outlier=1: 8 outliers; at the threshold: recall' $T/ost.txt; then pass cli_outliers_stream_same_scores
else fail cli_outliers_stream_same_scores "$(tail -n 2 $T/ost.txt | tr '\n' ' ')"; fi
if $H outliers $M --batch $T/b.hpd --scorer $T/sc.hps --stream --top 5 --out $T/ost5 >/dev/null 2>&1 &&
   [ "$(head -n 6 $T/ost/outliers.csv)" = "$(cat $T/ost5/outliers.csv)" ]; then pass cli_outliers_stream_keeps_top_n
else fail cli_outliers_stream_keeps_top_n "--top 5 did not keep the first 5 of the whole ranking"; fi
head -c 200000 $T/b.hpd >$T/cut.hpd
check_err cli_outliers_stream_cut_batch 1 "cut.hpd" $H outliers $M --batch $T/cut.hpd --scorer $T/sc.hps --stream --out $T/x
check_err cli_outliers_stream_no_chi2 2 "--auto chi2 is a threshold on D^2" $H outliers $M --batch $T/b.hpd --scorer $T/sc.hps --stream --auto chi2 --out $T/x
check_err cli_outliers_stream_needs_scorer 2 "--stream scores with a saved scorer" $H outliers $M --batch $T/b.hpd --stream --out $T/x
check_err cli_outliers_stream_not_explain 2 "--stream is an option of outliers" $H explain $M --batch $T/b.hpd --scorer $T/sc.hps --stream --out $T/x
$H train $TRAIN --steps 2 --out $T/m2 >/dev/null 2>&1
check_err cli_outliers_scorer_other_model 1 "fitted with another model" $H outliers --model $T/m2/model.hpm --batch $T/b.hpd --scorer $T/sc.hps --out $T/x
head -c 500 $T/sc.hps >$T/cut.hps
check_err cli_outliers_scorer_cut 1 "cut.hps: the checksum does not match" $H outliers $M --batch $T/b.hpd --scorer $T/cut.hps --out $T/x
cp $T/sc.hps $T/bad.hps && printf 'X' | dd of=$T/bad.hps bs=1 seek=300 conv=notrunc 2>/dev/null
check_err cli_outliers_scorer_damaged 1 "bad.hps: the checksum does not match" $H outliers $M --batch $T/b.hpd --scorer $T/bad.hps --out $T/x
check_err cli_outliers_scorer_not_one 1 "b.hpd: not a scorer file" $H outliers $M --batch $T/b.hpd --scorer $T/b.hpd --out $T/x
check_err cli_outliers_scorer_and_reference 2 "--scorer replaces --reference" $H outliers $M --batch $T/b.hpd --scorer $T/sc.hps --reference $T/src.hpd --out $T/x
check_err cli_outliers_save_scorer_needs_reference 2 "--save-scorer saves a combined score" $H outliers $M --batch $T/b.hpd --save-scorer $T/x.hps --out $T/x

# ---- explain --------------------------------------------------------------------------------
check cli_explain $H explain $M --batch $T/b.hpd --threshold 0 --out $T/e
# columns: index,name,rank,score_d2,sum_contrib,top_dims,z0..z3,c0..c3
if [ -s $T/e/explain.csv ] && tail -n +2 $T/e/explain.csv | awk -F, '{ s = $11 + $12 + $13 + $14; d = s - $4; if (d < 0) d = -d; if (d > 1e-6) bad = 1; n++ }
       END { exit bad || n != 48 }'; then pass cli_explain_contributions_sum_to_d2
else fail cli_explain_contributions_sum_to_d2 "sum of c_d differs from D^2 by more than 1e-6 (or rows missing)"; fi
if [ "$(wc -l < $T/e/dim_counts.csv)" -eq 5 ] && grep -q '"counts": \[' $T/e/dim_counts.json; then pass cli_explain_dim_counts
else fail cli_explain_dim_counts "dim_counts.csv/json"; fi
check_png cli_explain_bar_chart $T/e/dim_counts.png 800x360
check_png cli_explain_why_png $T/e/why.png 398x1058

# ---- counterfactual, morph, traverse, sample: PNG sizes (64x64 pictures, 2 px gaps) ---------
check cli_counterfactual $H counterfactual $M --batch $T/b.hpd --threshold 0 --max 4 --out $T/c
check_png cli_counterfactual_png $T/c/counterfactuals.png 200x266
check cli_morph $H morph $M --batch $T/b.hpd --top 3 --steps 5 --out $T/c
check_png cli_morph_png $T/c/morph.png 332x200
check cli_traverse $H traverse $M --batch $T/b.hpd --steps 6 --out $T/c
check_png cli_traverse_png $T/c/traverse.png 398x266
check cli_sample $H sample $M --n 6 --cols 3 --out $T/c
check_png cli_sample_png $T/c/samples.png 200x134
check cli_sample_walk $H sample $M --walk --batch $T/b.hpd --n 2 --steps 4 --out $T/c
check_png cli_sample_walk_png $T/c/walk.png 266x134

# ---- report ---------------------------------------------------------------------------------
check cli_report $H report $M --batch $T/b.hpd --max 4 --out $T/rep
R=$T/rep/report.html
if [ -s $R ] && grep -q '<svg' $R && grep -q 'data:image/png;base64,' $R && grep -q 'AUROC' $R; then pass cli_report_content
else fail cli_report_content "report.html lacks <svg, data:image/png;base64, or AUROC"; fi
# context mode: the nearest normal pictures are other pictures of the batch, never the picture itself
if grep -q 'Why: pixels and the nearest normal pictures' $R && grep -q 'among the other pictures of the batch' $R &&
   $H outliers $M --batch $T/b.hpd --out $T/ow >/dev/null 2>&1 &&
   awk '/^    \{"index": / { s = $0; sub(/^    \{"index": /, "", s); p = s + 0 }
        /"nearest_from": "batch"/ { s = $0; sub(/.*"nearest": \[\{"index": /, "", s); if (s + 0 == p) bad = 1; n++ }
        END { exit bad || n == 0 }' $T/ow/outliers.json; then pass cli_report_why_nearest_not_itself
else fail cli_report_why_nearest_not_itself "no why section, or a picture is its own nearest normal one"; fi
if grep -q -e '<script' -e 'src="http' -e "href=\"http" $R; then fail cli_report_offline "report.html refers to the network or has scripts"
else pass cli_report_offline; fi

# ---- eval -----------------------------------------------------------------------------------
check cli_eval $H eval $M --data $T/b.hpd --mig-samples 200 --out $T/ev
if grep -q '"mig_discrete": [0-9]' $T/ev/eval.json && grep -q '"ssim": [0-9]' $T/ev/eval.json && [ -s $T/ev/correlation.png ]; then
    pass cli_eval_outputs
else fail cli_eval_outputs "eval.json lacks mig_discrete/ssim or correlation.png is missing"; fi
# the two named continuous MIGs: ordinal = the mean gap of the factors marked ordinal (shape is
# not: the default --categorical), and with --categorical "" the two are the same number
ord_ok() { # eval.json: mig_continuous_ordinal equals the mean of the ordinal factors' gaps
    awk '/"mig_continuous_ordinal": [0-9]/ && !/name/ { gsub(/[^0-9.e-]/, "", $2); want = $2 }
         /"ordinal": true/ { for (i = 1; i <= NF; i++) if ($i == "\"mig_continuous\":") { v = $(i + 1); gsub(/,/, "", v); s += v; n++ } }
         END { d = s / n - want; if (d < 0) d = -d; exit !(n > 0 && d < 1e-9) }' "$1"
}
if grep -q '"name": "shape", "ordinal": false' $T/ev/eval.json && ord_ok $T/ev/eval.json; then pass cli_eval_mig_ordinal
else fail cli_eval_mig_ordinal "eval.json: shape not marked categorical, or mig_continuous_ordinal is not the mean of the ordinal gaps"; fi
check cli_eval_no_categorical $H eval $M --data $T/b.hpd --mig-samples 200 --categorical "" --out $T/ev0
a=$(sed -n 's/^  "mig_continuous": \([^,]*\),/\1/p' $T/ev0/eval.json); b=$(sed -n 's/^  "mig_continuous_ordinal": \([^,]*\),/\1/p' $T/ev0/eval.json)
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$(sed -n 's/^  "mig_continuous": \([^,]*\),/\1/p' $T/ev/eval.json)" = "$a" ]; then pass cli_eval_mig_all_factors
else fail cli_eval_mig_all_factors "with --categorical \"\" mig_continuous ($a) and mig_continuous_ordinal ($b) differ, or mig_continuous moved"; fi

# ---- pictures from a folder ---------------------------------------------------------------
$H sample $M --n 3 --each --seed 5 --out $T/f3 >/dev/null 2>&1
if [ "$(ls $T/f3 | wc -l)" -eq 3 ] && $H outliers $M --batch $T/f3 --cov ledoit-wolf --out $T/of >/dev/null 2>&1 &&
   [ "$(tail -n +2 $T/of/outliers.csv | grep -c 'sample_00[0-2].png')" -eq 3 ]; then pass cli_folder_of_3_pngs
else fail cli_folder_of_3_pngs "a folder of 3 PNGs did not give 3 ranked rows"; fi
check cli_folder_with_reference $H outliers $M --batch $T/f3 --reference $T/b.hpd --out $T/of
mkdir -p $T/empty
check_err cli_folder_empty 1 "no PNG or JPEG" $H outliers $M --batch $T/empty --out $T/x
check_err cli_small_batch_empirical 1 "use --cov ledoit-wolf" $H outliers $M --batch $T/f3 --cov empirical --out $T/x
check_err cli_folder_no_truth 1 "no labels" $H outliers $M --batch $T/f3 --cov ledoit-wolf --auroc --out $T/x
# a gray 16x16 model trained from the folder (pictures resized) rejects the 3x64x64 batch
check cli_train_from_folder $H train --data $T/f3 --shape 1x16x16 --enc dense16,relu --dec dense256 --z 2 --steps 3 --batch-size 3 --out $T/g
check_err cli_wrong_size_checkpoint 1 "holds 3x64x64 pictures (CxHxW) but the model takes 1x16x16" $H outliers --model $T/g/model.hpm --batch $T/b.hpd --out $T/x
check_err cli_not_a_checkpoint 1 "not a .hpm checkpoint" $H outliers --model $T/b.hpd --batch $T/b.hpd --out $T/x

# ---- export: weights only, a third of the size, decodes the same samples -------------------
check cli_export $H export --model $T/m/model.hpm --out $T/w.hpm
check cli_sample_full $H sample $M --n 4 --cols 2 --out $T/sf
check cli_sample_weights $H sample --model $T/w.hpm --n 4 --cols 2 --out $T/sw
full=$(wc -c < $T/m/model.hpm); small=$(wc -c < $T/w.hpm)
if [ "$small" -lt "$full" ] && [ $((small * 2)) -lt "$full" ] && cmp -s $T/sf/samples.png $T/sw/samples.png; then pass cli_export_same_model
else fail cli_export_same_model "weights-only file $small bytes (full $full) or different samples"; fi

# ---- encode: posterior means and log-variances to .npy and CSV, streamed in chunks of 1024 ---
# npy_floats FILE: every float32 of a NumPy file, one per line (the header length is at byte 8)
npy_floats() {
    set -- "$1" $(od -A n -t u1 -j 8 -N 2 "$1")
    od -A n -v -t f4 -j $((10 + $2 + 256 * $3)) "$1" | tr -s ' ' '\n' | sed '/^$/d'
}
# csv_cols FILE FIRST LAST: the values of columns FIRST..LAST of every data row, one per line
csv_cols() { awk -F, -v a="$2" -v b="$3" 'NR > 1 { for (i = a; i <= b; i++) print $i }' "$1"; }
# same_floats A B: two lists of numbers agree within 1e-6 relative (od prints 7-9 digits)
same_floats() {
    paste -d ' ' "$1" "$2" | awk '{ d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (m < 1) m = 1; if (d > 1e-6 * m) bad++ }
        END { exit bad > 0 || NR == 0 }'
}
check cli_encode $H encode $M --data $T/b.hpd --out $T/enc
hdr=$(head -c 128 $T/enc/mu.npy | tr -d '\0\223' | tr '\n' ' ')
nb=$(grep -c '' < $T/enc/codes.csv)
if echo "$hdr" | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (48, 4)" &&
    [ "$(wc -c < $T/enc/mu.npy)" -eq $((128 + 48 * 4 * 4)) ] && [ "$(wc -c < $T/enc/logvar.npy)" -eq $((128 + 48 * 4 * 4)) ] &&
    [ "$nb" -eq 49 ] && head -n 1 $T/enc/codes.csv | grep -q '^index,name,floor_hue,wall_hue,object_hue,scale,shape,orientation,is_outlier,mu_0,mu_1,mu_2,mu_3,logvar_0,' &&
    sed -n 2p $T/enc/codes.csv | grep -q '^0,#0,'; then pass cli_encode_layout
else fail cli_encode_layout "header \"$hdr\", $(wc -c < $T/enc/mu.npy) bytes, $nb CSV lines"; fi
npy_floats $T/enc/mu.npy > $T/enc/a; csv_cols $T/enc/codes.csv 10 13 > $T/enc/b
npy_floats $T/enc/logvar.npy > $T/enc/c; csv_cols $T/enc/codes.csv 14 17 > $T/enc/d
if [ "$(wc -l < $T/enc/a)" -eq 192 ] && same_floats $T/enc/a $T/enc/b && same_floats $T/enc/c $T/enc/d; then pass cli_encode_npy_equals_csv
else fail cli_encode_npy_equals_csv "mu.npy/logvar.npy and codes.csv disagree ($(wc -l < $T/enc/a) floats)"; fi
# the batch's factor indices are its labels: batch wrote the truth as a factor of its own
if [ "$(awk -F, 'NR > 1 && $9 == 1 { n++ } END { print n + 0 }' $T/enc/codes.csv)" -eq 8 ] &&
    [ "$(awk -F, 'NR > 1 && $9 == 0 { n++ } END { print n + 0 }' $T/enc/codes.csv)" -eq 40 ]; then pass cli_encode_labels
else fail cli_encode_labels "codes.csv rows without factor indices"; fi
check cli_encode_limit $H encode $M --data $T/b.hpd --limit 5 --out $T/enc5
if [ "$(grep -c '' < $T/enc5/codes.csv)" -eq 6 ] && head -c 128 $T/enc5/mu.npy | tr -d '\0\223' | grep -q "'shape': (5, 4)"; then pass cli_encode_limit_rows
else fail cli_encode_limit_rows "--limit 5 did not give 5 rows"; fi
check cli_encode_folder $H encode $M --data $T/f3 --out $T/encf
if [ "$(grep -c '' < $T/encf/codes.csv)" -eq 4 ] && sed -n 2p $T/encf/codes.csv | grep -q '^0,[^#,]*\.png,'; then pass cli_encode_folder_names
else fail cli_encode_folder_names "the folder's codes.csv lacks 3 named rows"; fi
# more pictures than one chunk (1024): every row written, in order
$GEN --quiet --random 1100 --seed 4 $T/big.hpd >/dev/null 2>&1
check cli_encode_chunks $H encode $M --data $T/big.hpd --out $T/encb
if [ "$(grep -c '' < $T/encb/codes.csv)" -eq 1101 ] && [ "$(wc -c < $T/encb/mu.npy)" -eq $((128 + 1100 * 16)) ] &&
    [ "$(awk -F, 'NR > 1 && $1 != NR - 2 { bad++ } END { print bad + 0 }' $T/encb/codes.csv)" -eq 0 ]; then pass cli_encode_chunk_rows
else fail cli_encode_chunk_rows "1100 pictures did not give 1100 rows in order"; fi
check_err cli_encode_no_data 2 "--data is required" $H encode $M --out $T/x
check_err cli_encode_wrong_shape 1 "but the model takes 1x16x16" $H encode --model $T/g/model.hpm --data $T/b.hpd --out $T/x
check_err cli_encode_not_hpd 1 "$T/m/model.hpm" $H encode $M --data $T/m/model.hpm --out $T/x
# with NumPy (Debian python3-numpy; the test needs nothing when it is missing): numpy.load reads
# the files, and every float equals the CSV's 9-digit text exactly
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    if out=$(/usr/bin/python3 - "$T/encb" <<'PY' 2>&1
import sys, numpy as np
d = sys.argv[1]
mu, lv = np.load(d + "/mu.npy"), np.load(d + "/logvar.npy")
csv = np.loadtxt(d + "/codes.csv", delimiter=",", skiprows=1, usecols=range(8, 16), dtype=np.float64, comments=None)
assert mu.dtype == np.float32 and mu.shape == (1100, 4) and lv.shape == (1100, 4), (mu.dtype, mu.shape)
assert np.array_equal(mu, csv[:, :4].astype(np.float32)) and np.array_equal(lv, csv[:, 4:].astype(np.float32))
print("ok")
PY
    ); then pass cli_encode_numpy_roundtrip; else fail cli_encode_numpy_roundtrip "$(echo "$out" | tail -n 1)"; fi
else echo "SKIP cli_encode_numpy_roundtrip: no python3-numpy (the od-based check above still ran)"; fi

# ---- the conditional VAE: a classifier, conditional training, relabelling ---------------------
# the loss's classifier and a judge (another seed) of the shape factor (4 values)
check cli_classifier_train $H classifier --data $T/src.hpd --labels shape --test $T/b.hpd --spec flatten,dense4 --epochs 2 --seed 2 --out $T/cls
check cli_classifier_judge $H classifier --data $T/src.hpd --labels shape --spec flatten,dense16,relu,dense4 --epochs 2 --seed 3 --out $T/judge
acc=$(sed -n 's/.*"test_accuracy": \([0-9.e-]*\).*/\1/p' $T/cls/classifier.json)
# scoring the saved network on the same test file gives the accuracy training reported
sc=$($H classifier --net $T/cls/classifier.hpn --data $T/b.hpd --labels shape --out $T/clsscore 2>&1 | sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' | head -n 1)
if [ -n "$acc" ] && awk -v a="$acc" -v b="$sc" 'BEGIN { d = a * 100 - b; exit !(d < 0.006 && d > -0.006) }' &&
    [ "$(grep -c '' < $T/clsscore/predictions.csv)" -eq 49 ] && [ "$(grep -c '' < $T/clsscore/confusion.csv)" -eq 5 ]; then pass cli_classifier_score_matches
else fail cli_classifier_score_matches "trained test accuracy $acc, scored ${sc}%, or the CSV files are short"; fi
check_err cli_classifier_wrong_k 1 "gives 4 logits" $H classifier --net $T/cls/classifier.hpn --data $T/b.hpd --labels floor_hue --out $T/x
check_err cli_classifier_no_factor 2 "has the factors" $H classifier --data $T/src.hpd --labels colour --out $T/x
CT="--data $T/src.hpd --enc dense32,relu --dec dense32,relu,dense12288 --z 4 --batch-size 32 --seed 7 --labels shape"
check cli_train_conditional $H train $CT --classifier $T/cls/classifier.hpn --label-weight 5 --steps 20 --out $T/cv
if [ "$(od -A n -t u4 -j 8 -N 4 $T/cv/model.hpm | tr -d ' ')" = 2 ] && head -n 1 $T/cv/train_log.csv | grep -q ',label,label_acc$'; then pass cli_train_conditional_outputs
else fail cli_train_conditional_outputs "model.hpm is not version 2, or the log has no label columns"; fi
# stopped and resumed (on 1 thread instead of 2): the same bits as one run
$H train $CT --classifier $T/cls/classifier.hpn --label-weight 5 --steps 10 --out $T/cv2 >/dev/null 2>&1
$H train --data $T/src.hpd --resume $T/cv2/model.hpm --classifier $T/cls/classifier.hpn --steps 20 --batch-size 32 --threads 1 --out $T/cv2 >/dev/null 2>&1
if cmp -s $T/cv/model.hpm $T/cv2/model.hpm; then pass cli_train_conditional_resume_exact
else fail cli_train_conditional_resume_exact "20 steps differ from 10 + resumed 10"; fi
check_err cli_train_conditional_needs_classifier 2 "needs its classifier" $H train $CT --label-weight 5 --steps 1 --out $T/x
check_err cli_train_conditional_resume_needs_classifier 2 "needs its classifier" $H train --data $T/src.hpd --resume $T/cv/model.hpm --steps 30 --out $T/x
check_err cli_train_conditional_unknown_factor 2 "no such factor" $H train $CT --labels colour --steps 1 --out $T/x
check_err cli_train_conditional_folder 1 "has no labels" $H train --data $T/f3 --enc dense8,relu --dec dense12288 --z 2 --labels 0 --steps 1 --out $T/x
check_err cli_train_conditional_wrong_classifier 1 "the classifier takes" $H train $CT --labels floor_hue --classifier $T/cls/classifier.hpn --label-weight 1 --steps 1 --out $T/x
check_err cli_train_label_options_plain 2 "add --labels F" $H train $TRAIN --label-weight 3 --steps 1 --out $T/x
# a label file that lies: picture 0's first factor index set to 99 (labels_offset: u64 at byte 64)
cp $T/src.hpd $T/badlab.hpd
printf '\143\000\000\000' | dd of=$T/badlab.hpd bs=1 seek="$(od -A n -t u8 -j 64 -N 8 $T/src.hpd | tr -d ' ')" conv=notrunc 2>/dev/null
check_err cli_train_conditional_bad_label 1 "badlab.hpd: picture 0 factor 0 (floor_hue) index 99 is outside 0..9" $H train $CT --data $T/badlab.hpd --steps 1 --out $T/x
check_err cli_outliers_conditional_model 1 "is a conditional VAE" $H outliers --model $T/cv/model.hpm --batch $T/b.hpd --out $T/x
check_err cli_export_conditional_safetensors 1 "conditional VAE" $H export --format safetensors $T/cv/model.hpm $T/x.safetensors
check_err cli_relabel_plain_model 1 "is a plain VAE" $H relabel $M --data $T/b.hpd --out $T/x
check_err cli_relabel_label_range 2 "has labels 0..3" $H relabel --model $T/cv/model.hpm --data $T/b.hpd --label 4 --out $T/x
check cli_relabel $H relabel --model $T/cv/model.hpm --data $T/b.hpd --judge $T/judge/classifier.hpn --classifier $T/cls/classifier.hpn --rows 3 --out $T/rl
check_png cli_relabel_grid $T/rl/relabel.png 332x200
if grep -q '"swap_accuracy": [0-9]' $T/rl/relabel.json && grep -q '"label_loss_x_lambda": [0-9]' $T/rl/relabel.json &&
    grep -q '"ssim_true_label": ' $T/rl/relabel.json; then pass cli_relabel_json
else fail cli_relabel_json "relabel.json lacks the swap accuracy, the label loss or SSIM"; fi
check cli_relabel_one_label $H relabel --model $T/cv/model.hpm --data $T/f3 --label 2 --out $T/rl2
check_png cli_relabel_one_label_grid $T/rl2/relabel_2.png 134x200
check cli_relabel_sweep $H relabel --model $T/cv/model.hpm --model $T/cv2/model.hpm --data $T/b.hpd --judge $T/judge/classifier.hpn --rows 2 --out $T/rls
if [ -s $T/rls/sweep.png ] && [ -s $T/rls/sweep.svg ] && [ -s $T/rls/relabel_2.png ]; then pass cli_relabel_sweep_outputs
else fail cli_relabel_sweep_outputs "sweep.png, sweep.svg or relabel_2.png missing"; fi

# ---- the cycle-consistent VAE: pairs that share the shape, transfer grids ------------------------
CY="--data $T/src.hpd --pairs shape --enc dense32,relu --dec dense32,relu,dense12288 --s-dim 3 --z-dim 2 --batch-size 16 --seed 5"
check cli_cycle_train $H cycle-train $CY --steps 20 --log-every 5 --out $T/cy
if [ -s $T/cy/model.hpc ] && [ "$(grep -c '' < $T/cy/cycle_log.csv)" -eq 5 ] && [ -s $T/cy/loss.png ]; then pass cli_cycle_train_outputs
else fail cli_cycle_train_outputs "model.hpc, 4 log rows or loss.png missing"; fi
$H cycle-train $CY --steps 12 --out $T/cy1 >/dev/null 2>&1
$H cycle-train $CY --steps 6 --out $T/cy2 >/dev/null 2>&1
$H cycle-train --data $T/src.hpd --pairs shape --resume $T/cy2/model.hpc --steps 12 --batch-size 16 --threads 1 --out $T/cy2 >/dev/null 2>&1
if [ -s $T/cy1/model.hpc ] && cmp -s $T/cy1/model.hpc $T/cy2/model.hpc; then pass cli_cycle_resume_exact
else fail cli_cycle_resume_exact "12 steps differ from 6 + resumed 6"; fi
check_err cli_cycle_bad_reverse_grad 2 "--reverse-grad takes encoder or all" $H cycle-train $CY --reverse-grad decoder --steps 1 --out $T/x
check_err cli_cycle_bad_pairs 2 "has the factors" $H cycle-train $CY --pairs colour --steps 1 --out $T/x
check_err cli_cycle_resume_with_model 2 "takes the model" $H cycle-train --data $T/src.hpd --resume $T/cy/model.hpc --s-dim 4 --out $T/x
check_err cli_cycle_preset_wrong_shape 1 "preset cyc-mnist takes 1x28x28" $H cycle-train --data $T/src.hpd --preset cyc-mnist --steps 1 --out $T/x
check cli_transfer $H transfer --model $T/cy/model.hpc --data $T/b.hpd --n 3 --steps 4 --out $T/tr
check_png cli_transfer_grid $T/tr/transfer.png 266x266
check_png cli_transfer_interpolate $T/tr/interpolate.png 266x266
check cli_cycle_eval $H cycle-eval --model $T/cy/model.hpc --data $T/src.hpd --factors shape,wall_hue --epochs 2 --out $T/ce
if [ "$(grep -c '"s_val": [0-9]' $T/ce/cycle_eval.json)" -eq 2 ] && grep -q '"factor": "wall_hue"' $T/ce/cycle_eval.json; then pass cli_cycle_eval_json
else fail cli_cycle_eval_json "cycle_eval.json lacks the two factors' accuracies"; fi
check_err cli_cycle_eval_bad_factor 2 'no factor "colour"' $H cycle-eval --model $T/cy/model.hpc --data $T/src.hpd --factors shape,colour --out $T/x
check cli_transfer_judge $H transfer --model $T/cy/model.hpc --data $T/src.hpd --n 2 --judge shape=$T/cls/classifier.hpn --s-factor shape --judge-n 5 --out $T/trj
if grep -q '"from": "row", "accuracy": [0-9]' $T/trj/transfer.json && grep -q '"transfers": 25' $T/trj/transfer.json; then pass cli_transfer_judge_json
else fail cli_transfer_judge_json "transfer.json lacks the judge's share of 25 transfers"; fi
check_err cli_transfer_judge_syntax 2 "FACTOR=FILE.hpn" $H transfer --model $T/cy/model.hpc --data $T/src.hpd --judge $T/cls/classifier.hpn --out $T/x
check_err cli_transfer_judge_wrong_factor 1 "factor \"wall_hue\" 10" $H transfer --model $T/cy/model.hpc --data $T/src.hpd --n 2 --judge wall_hue=$T/cls/classifier.hpn --judge-n 3 --out $T/x
check_err cli_transfer_plain_model 1 "not a .hpc" $H transfer --model $T/m/model.hpm --data $T/b.hpd --out $T/x

finish
