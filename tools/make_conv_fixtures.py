#!/usr/bin/python3.11
"""Regenerate tests/fixtures/conv_ref.txt: PyTorch reference values for conv2d, conv-transpose2d
and dense (forward output and the gradients of sum(out * R) wrt input, weights, bias).

Run with Debian's interpreter, which has python3-torch:  /usr/bin/python3.11 tools/make_conv_fixtures.py
The tests only read the fixture; they never need PyTorch.

Format, one case after another:
  case NAME KIND B C H W Co k s p      (KIND conv|convt|dense; dense uses C as inputs, Co outputs)
  then lines "NAME n v1 v2 ... vn" for x, W, b, R, out, dx, dW, db (float32 values, %.9g)."""
import torch

torch.manual_seed(20261122)
CASES = [
    # name, kind, B, C, H, W, Co, k, s, p
    ("conv_k4s2p1", "conv", 2, 3, 8, 8, 5, 4, 2, 1),
    ("conv_k3s1p1_odd", "conv", 3, 2, 7, 5, 3, 3, 1, 1),
    ("conv_k5s3p2", "conv", 1, 1, 11, 9, 2, 5, 3, 2),
    ("conv_k1", "conv", 2, 4, 3, 3, 1, 1, 1, 0),
    ("convt_k4s2p1", "convt", 2, 5, 4, 4, 3, 4, 2, 1),
    ("convt_k3s1p0_odd", "convt", 3, 2, 3, 5, 2, 3, 1, 0),
    ("convt_k5s3p2", "convt", 1, 3, 4, 3, 2, 5, 3, 2),
    ("dense_odd", "dense", 3, 17, 1, 1, 7, 0, 0, 0),
]


def fmt(name, t):
    v = t.detach().double().flatten().tolist()
    return name + " " + str(len(v)) + " " + " ".join("%.9g" % x for x in v)


def main():
    lines = []
    for name, kind, B, C, H, W, Co, k, s, p in CASES:
        if kind == "conv":
            m = torch.nn.Conv2d(C, Co, k, stride=s, padding=p)
            x = torch.randn(B, C, H, W, requires_grad=True)
        elif kind == "convt":
            m = torch.nn.ConvTranspose2d(C, Co, k, stride=s, padding=p)
            x = torch.randn(B, C, H, W, requires_grad=True)
        else:
            m = torch.nn.Linear(C, Co)
            x = torch.randn(B, C, requires_grad=True)
        out = m(x)
        R = torch.randn_like(out)
        (out * R).sum().backward()
        lines.append("case %s %s %d %d %d %d %d %d %d %d" % (name, kind, B, C, H, W, Co, k, s, p))
        for nm, t in (("x", x), ("W", m.weight), ("b", m.bias), ("R", R), ("out", out),
                      ("dx", x.grad), ("dW", m.weight.grad), ("db", m.bias.grad)):
            lines.append(fmt(nm, t))
    with open("tests/fixtures/conv_ref.txt", "w") as f:
        f.write("# made by tools/make_conv_fixtures.py with torch %s\n" % torch.__version__)
        f.write("\n".join(lines) + "\n")
    print("wrote tests/fixtures/conv_ref.txt (%d cases)" % len(CASES))


if __name__ == "__main__":
    main()
