#!/usr/bin/python3.11
"""Write the small dSprites-layout fixtures that tests/test_dsprites.sh reads.

Run with Debian's Python and numpy (python3-numpy), from the repository root:
    /usr/bin/python3.11 tools/make_dsprites_fixture.py [OUTDIR]      (default tests/fixtures)

Files (N = 40 pictures, in the layout of dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz:
members metadata, imgs uint8 (N,64,64), latents_classes int64 (N,6), latents_values
float64 (N,6)):
    dsprites_small.npz          numpy.savez_compressed (deflate, ZIP64 local headers)
    dsprites_small_stored.npz   numpy.savez (stored, no compression)
    dsprites_small_stream.npz   numpy.savez_compressed into a pipe-like file that cannot seek,
                                so every member is followed by a data descriptor
    classes_v2.npy              the classes as a version 2.0 .npy (u32 header length)
and, for the rejection tests: bad_magic.npy, classes_i4.npy (int32), classes_fortran.npy
(fortran_order True), classes_39.npy (39 rows), classes_range.npy (shape index 3),
imgs_u2.npy (uint16 pictures), imgs_absurd.npy and imgs_overflow.npy (headers only, with
10**12 pictures and with a first dimension beyond 64 bits).

The contents follow a formula that tests/dsprites_check.c recomputes (keep both in step):
  picture i is black with a white rectangle: columns x0 .. x0+w-1, rows y0 .. y0+h-1,
      x0 = (5 i) % 44 + 2,  y0 = (3 i + 1) % 44 + 2,  w = 6 + i % 11,  h = 4 + (7 i) % 13
  latents_classes[i] = (0, i % 3, 5 i % 6, 7 i % 40, 11 i % 32, 13 i % 32)
  latents_values: the dSprites values of those indices (shape 1..3, linspace otherwise).
"""
import os
import sys

import numpy as np

N = 40
SIZES = [1, 3, 6, 40, 32, 32]


def pictures():
    imgs = np.zeros((N, 64, 64), dtype=np.uint8)
    for i in range(N):
        x0, y0 = (5 * i) % 44 + 2, (3 * i + 1) % 44 + 2
        w, h = 6 + i % 11, 4 + (7 * i) % 13
        imgs[i, y0:y0 + h, x0:x0 + w] = 1
    return imgs


def classes():
    c = np.zeros((N, 6), dtype=np.int64)
    for i in range(N):
        c[i] = (0, i % 3, (5 * i) % 6, (7 * i) % 40, (11 * i) % 32, (13 * i) % 32)
    return c


def values(c):
    table = [np.array([1.0]), np.array([1.0, 2.0, 3.0]), np.linspace(0.5, 1, 6),
             np.linspace(0, 2 * np.pi, 40), np.linspace(0, 1, 32), np.linspace(0, 1, 32)]
    return np.stack([table[k][c[:, k]] for k in range(6)], axis=1).astype(np.float64)


class Unseekable:
    """A write-only file without tell/seek, as a pipe would be."""

    def __init__(self, f):
        self.f = f

    def write(self, b):
        return self.f.write(b)

    def read(self, n=-1):  # numpy only checks that it exists
        raise OSError("write-only")

    def flush(self):
        self.f.flush()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures")
    os.makedirs(out, exist_ok=True)
    imgs, cls = pictures(), classes()
    metadata = np.array({"latents_sizes": np.array(SIZES),
                         "latents_names": ("color", "shape", "scale", "orientation", "posX", "posY"),
                         "description": "Hephaestus test fixture in the dSprites layout"}, dtype=object)
    arrays = dict(metadata=metadata, imgs=imgs, latents_classes=cls, latents_values=values(cls))

    np.savez_compressed(os.path.join(out, "dsprites_small.npz"), **arrays)
    np.savez(os.path.join(out, "dsprites_small_stored.npz"), **arrays)
    with open(os.path.join(out, "dsprites_small_stream.npz"), "wb") as f:
        np.savez_compressed(Unseekable(f), **arrays)

    def npy(name, arr, version=None):
        with open(os.path.join(out, name), "wb") as f:
            np.lib.format.write_array(f, arr, version=version)

    npy("classes_v2.npy", cls, version=(2, 0))
    npy("classes_i4.npy", cls.astype(np.int32))
    npy("classes_fortran.npy", np.asfortranarray(cls))
    npy("classes_39.npy", cls[:39].copy())
    bad = cls.copy()
    bad[7, 1] = 3
    npy("classes_range.npy", bad)
    npy("imgs_u2.npy", imgs[:1].astype(np.uint16))
    with open(os.path.join(out, "bad_magic.npy"), "wb") as f:
        np.lib.format.write_array(f, cls)
    with open(os.path.join(out, "bad_magic.npy"), "r+b") as f:
        f.write(b"\x93NUMPX")
    for name, shape in (("imgs_absurd.npy", (10**12, 64, 64)), ("imgs_overflow.npy", (10**25, 64, 64))):
        with open(os.path.join(out, name), "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
    print("wrote the dSprites fixtures to", out)


if __name__ == "__main__":
    main()
