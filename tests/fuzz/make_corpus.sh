#!/bin/sh
# tests/fuzz/make_corpus.sh - (re)writes the seed corpus of every fuzz target into
# tests/fuzz/corpus/X/ (small files, a few per target): tests/fuzz/make_seeds.c writes the
# .hpd, .hpm, spec, .npy, picture and CLI seeds; gzip and zip pack the IDX and .npz variants;
# two small .npz fixtures of tests/fixtures/ are copied. Needs cc, libstb-dev, gzip, zip.
# Usage (from anywhere): sh tests/fuzz/make_corpus.sh      Environment: CC (default cc).
cd "$(dirname "$0")/../.." || exit 1
CC=${CC:-cc}
C=tests/fuzz/corpus
W=tests/build/fuzz/seedwork
set -e
rm -rf "$W" && mkdir -p "$W"
for t in hpd hpm spec idx npy npz image cli; do rm -rf "$C/$t"; mkdir -p "$C/$t"; done
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
echo "make_corpus: $(find "$C" -type f | wc -l) seeds, $(du -sk "$C" | cut -f1) KB in $C"
