#!/bin/sh
# tools/dsprites_preview.sh - render data/dsprites_preview.png: 64 generated dSprites pictures,
# one factor swept per row (8 x 8). POSIX sh; run from the repository root:
#   sh tools/dsprites_preview.sh [GEN_DSPRITES] [OUT.png]
# (defaults: build/gen_dsprites, data/dsprites_preview.png)
GEN=${1:-build/gen_dsprites}
OUT=${2:-data/dsprites_preview.png}

# grid index of (shape, scale, orientation, posX, posY): mixed radix 1, 3, 6, 40, 32, 32
gi() { echo $(( ((($1 * 6 + $2) * 40 + $3) * 32 + $4) * 32 + $5 )); }
L=""
add() { L="$L${L:+,}$(gi "$@")"; }
for s in 0 1 2; do  # rows 1-3: square, ellipse, heart at scale 0.5 .. 1, then two orientations
    for k in 0 1 2 3 4 5; do add $s $k 0 16 16; done
    add $s 5 3 16 16; add $s 5 5 16 16
done
for o in 0 5 10 15 20 25 30 35; do add 2 5 $o 16 16; done  # row 4: heart, orientation
for o in 0 5 10 15 20 25 30 35; do add 1 5 $o 16 16; done  # row 5: ellipse, orientation
for x in 0 4 9 13 18 22 27 31; do add 2 3 0 $x 16; done    # row 6: posX (left to right)
for y in 0 4 9 13 18 22 27 31; do add 0 3 0 16 $y; done    # row 7: posY (top to bottom)
for p in 0 4 9 13 18 22 27 31; do add 1 2 8 $p $p; done    # row 8: posX = posY
exec "$GEN" --pick "$L" --png-cols 8 --png "$OUT"
