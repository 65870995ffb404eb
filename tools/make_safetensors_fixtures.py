#!/usr/bin/python3.11
"""Regenerate tests/fixtures/st_small.safetensors and tests/fixtures/st_small_ref.safetensors:
a small VAE built and initialised by PyTorch in the layout of tools/hephaestus_torch.py, and
its outputs for fixed inputs, so that tests/test_safetensors.sh checks `hephaestus import`
against PyTorch's numbers on machines without PyTorch.

Run with Debian's interpreter, which has python3-torch:
    /usr/bin/python3.11 tools/make_safetensors_fixtures.py [OUTDIR]   (default tests/fixtures)
The model covers every layer kind of the spec grammar on a 3-channel picture (so (C, H, W)
against (H, W, C) order matters): conv with stride and padding, leaky ReLU, tanh, a dense on
an image input (implicit flatten), ReLU; in the decoder sigmoid, reshape, transposed convs and
flatten. st_small_ref holds x (N, C, H, W), z (N, z_dim) and PyTorch's mu, logvar (encoder on
x) and dec (sigmoid of the decoder on z)."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import hephaestus_torch as ht  # noqa: E402

ENC = "conv4k3s2p1,lrelu0.2,conv6k3s1p1,tanh,dense16,relu"
DEC = "dense32,sigmoid,reshape2x4x4,convt5k4s2p1,relu,convt3k3s1p1,flatten"
SHAPE, Z, N = (3, 8, 8), 3, 5


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    torch.manual_seed(20261204)
    model = ht.HephVAE(SHAPE, Z, ENC, DEC)
    with torch.no_grad():  # biases larger than the default init, so that they matter
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    x = torch.rand((N,) + SHAPE)
    z = torch.randn(N, Z)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        dec = model.decode(z)
    model.save(os.path.join(out, "st_small.safetensors"))
    ht.write_safetensors(os.path.join(out, "st_small_ref.safetensors"),
                         {"x": x, "z": z, "mu": mu, "logvar": logvar, "dec": dec}, {"made_by": "tools/make_safetensors_fixtures.py"})
    print("wrote st_small.safetensors (%d parameters) and st_small_ref.safetensors in %s"
          % (sum(p.numel() for p in model.parameters()), out))


if __name__ == "__main__":
    main()
