#!/bin/sh
# Install the Debian packages the tools and demo need, when they are missing.
#   sh tools/deps.sh           stb headers/library (libstb-dev)
#   sh tools/deps.sh fashion   also the Fashion-MNIST dataset (dataset-fashion-mnist)
#   sh tools/deps.sh bench     also the peers of make bench: PyTorch, NumPy, SciPy, scikit-learn
#                              and OpenBLAS (without it they run on Debian's reference BLAS)
pkgs=""
[ -f /usr/include/stb/stb_image_write.h ] || pkgs="$pkgs libstb-dev"
if [ "$1" = fashion ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  pkgs="$pkgs dataset-fashion-mnist"
fi
if [ "$1" = bench ]; then
  /usr/bin/python3 -c 'import torch, numpy, scipy, sklearn' >/dev/null 2>&1 ||
    pkgs="$pkgs python3-torch python3-numpy python3-scipy python3-sklearn"
  dpkg -s libopenblas0-pthread >/dev/null 2>&1 || pkgs="$pkgs libopenblas0-pthread"
fi
[ -z "$pkgs" ] && exit 0
echo "deps: installing$pkgs"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "deps: need root to run: apt-get install -y$pkgs" >&2; exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: no apt-get here; install$pkgs (stb headers under /usr/include/stb) by hand" >&2; exit 1
fi
$SUDO apt-get install -y $pkgs >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y $pkgs; } || {
  echo "deps: apt-get install -y$pkgs failed; install them by hand and re-run" >&2; exit 1; }
