#!/bin/sh
# tests/fuzz/make_corpus.sh - (re)writes the seed corpus of every fuzz target into
# tests/fuzz/corpus/X/ (small files, a few per target): tests/fuzz/make_seeds.c writes the
# .hpd, .hpm, .hpn, spec, .npy, picture and CLI seeds; gzip and zip pack the IDX and .npz variants;
# two small .npz fixtures of tests/fixtures/ are copied, and the safetensors fixtures. Needs cc, libstb-dev, gzip, zip.
# Usage (from anywhere): sh tests/fuzz/make_corpus.sh      Environment: CC (default cc).
cd "$(dirname "$0")/../.." || exit 1
CC=${CC:-cc}
C=tests/fuzz/corpus
W=tests/build/fuzz/seedwork
set -e
rm -rf "$W" && mkdir -p "$W"
for t in hpd hpm hpn spec idx npy npz image cli safetensors folder resume scorer cifar; do rm -rf "$C/$t"; mkdir -p "$C/$t"; done
$CC -std=c99 -O1 -I. tests/fuzz/make_seeds.c -o "$W/make_seeds" -lm
"$W/make_seeds" "$C" "$W"
# IDX: plain images and labels, gzip -9 -n, gzip with the file name stored (FNAME flag)
cp "$W/img.idx" "$C/idx/images.idx"
cp "$W/lab.idx" "$C/idx/labels.idx"
gzip -9 -n -c "$W/img.idx" >"$C/idx/images-9n.idx.gz"
gzip -1 -c "$W/lab.idx" >"$W/lab-name.gz" && cp "$W/lab-name.gz" "$C/idx/labels-fname.idx.gz"
# .npz: deflated, stored, ZIP64 (zip -fz), with a data descriptor (streamed: zip -fd from a pipe)
( cd "$W" && zip -q -X -9 deflate.npz imgs.npy latents_classes.npy && zip -q -X -0 stored.npz latents_classes.npy imgs.npy &&
  zip -q -X -fz -9 zip64.npz imgs.npy latents_classes.npy )
cp "$W/deflate.npz" "$W/stored.npz" "$W/zip64.npz" "$C/npz/"
cp tests/fixtures/dsprites_small.npz tests/fixtures/dsprites_small_stream.npz "$C/npz/"
# safetensors: the PyTorch-made fixture and its reference tensors, an empty file ({} padded to
# 8 bytes), one with metadata only, and one with a \u escape and a zero-size tensor
cp tests/fixtures/st_small.safetensors tests/fixtures/st_small_ref.safetensors "$C/safetensors/"
printf '\010\000\000\000\000\000\000\000{}      ' >"$C/safetensors/empty.safetensors"
printf '\042\000\000\000\000\000\000\000{"__metadata__":{"k":"v\\u00e9"}}  ' >"$C/safetensors/meta.safetensors"
printf '\070\000\000\000\000\000\000\000{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}' >"$C/safetensors/zero.safetensors"
# resume: the checkpoints of hpm; folder: pictures of image (without their mode byte) joined by
# |F| after a mode byte and a name byte each (fuzz_folder.c), one set with a FIFO and a folder
cp "$C"/hpm/*.hpm "$C/resume/"
I=$C/image
{ printf '\000\000'; tail -c +2 "$I/rgb3x2.png"; printf '|F|\002'; tail -c +2 "$I/gray8.jpg"; printf '|F|\005not a picture'; } >"$C/folder/png_jpg_txt"
{ printf '\203\001'; tail -c +2 "$I/gray4.png"; printf '|F|\011'; tail -c +2 "$I/rgb16.jpg"; printf '|F|\001'; tail -c +2 "$I/rgba.png"; } >"$C/folder/fifo_three"
{ printf '\004\000'; tail -c +2 "$I/graya.png"; } >"$C/folder/one_gray"
# scorer: two saved scorers of a tiny model (all six members; two members, ledoit-wolf)
$CC -std=c99 -O1 -D_POSIX_C_SOURCE=200809L -I. tools/hephaestus.c -o "$W/hephaestus" -lstb -lm
$CC -std=c99 -O1 -D_POSIX_C_SOURCE=200809L -I. tools/gen_shapes3d.c -o "$W/gen_shapes3d" -lstb -lm
"$W/gen_shapes3d" --quiet --random 60 --seed 3 "$W/s.hpd"
"$W/hephaestus" train --data "$W/s.hpd" --enc dense8,relu --dec dense12288 --z 2 --steps 2 --batch-size 20 --seed 1 --out "$W/m" >/dev/null
"$W/hephaestus" outliers --model "$W/m/model.hpm" --batch "$W/s.hpd" --reference "$W/s.hpd" --score combined:knn:3+recon \
    --cov ledoit-wolf --save-scorer "$C/scorer/two.hps" --out "$W/o" >/dev/null
"$W/hephaestus" outliers --model "$W/m/model.hpm" --batch "$W/s.hpd" --reference "$W/s.hpd" --score combined:mahalanobis+marginal+knn+gmm:2+recon+complexity:2 \
    --save-scorer "$C/scorer/six.hps" --out "$W/o" >/dev/null
# cifar: two CIFAR-10 records, one CIFAR-100 record (tests/cifar_files.c's files)
$CC -std=c99 -O1 -I. tests/cifar_files.c -o "$W/cifar_files" -lm
"$W/cifar_files" write "$W"
head -c 6146 "$W/c10_a.bin" >"$C/cifar/cifar10_two.bin"
head -c 3074 "$W/c100.bin" >"$C/cifar/cifar100_one.bin"
echo "make_corpus: $(find "$C" -type f | wc -l) seeds, $(du -sk "$C" | cut -f1) KB in $C"
