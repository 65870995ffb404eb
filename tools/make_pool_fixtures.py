#!/usr/bin/python3
"""Reference values for heph_maxpool2_forward / _backward: PyTorch's max_pool2d(x, 2) with
return_indices, and the gradient for dout = R (out.backward(R)), on an odd-sized batch, a batch full of ties
(values 0..2) and one with NaNs (two in one window). Writes tests/fixtures/pool_ref.txt.
Run with Debian's /usr/bin/python3 (python3-torch)."""
import math
import torch
import torch.nn.functional as F

torch.manual_seed(3)
cases = [("odd", 2, 3, 5, 7), ("ties", 2, 2, 4, 6), ("nan", 1, 2, 4, 4)]
with open("tests/fixtures/pool_ref.txt", "w") as f:
    f.write("# max_pool2d(x, 2): case NAME B C H W; then x, out, indices, R = dout, dx\n")
    for name, B, C, H, W in cases:
        x = torch.randn(B, C, H, W, dtype=torch.float32)
        if name == "ties":
            x = torch.randint(0, 3, (B, C, H, W)).float()
        if name == "nan":
            x[0, 0, 0, 1] = math.nan
            x[0, 0, 1, 0] = math.nan
            x[0, 1, 3, 3] = math.nan
        x.requires_grad_(True)
        out, idx = F.max_pool2d(x, 2, return_indices=True)
        R = torch.randn(out.shape)
        out.backward(R)  # dx: R scattered to the indices (NaN outputs too)
        f.write(f"case {name} {B} {C} {H} {W}\n")
        for t in (x.detach(), out.detach(), idx, R, x.grad):
            vals = t.flatten().tolist()
            f.write(" ".join(str(int(v)) if t.dtype == torch.int64 else ("nan" if v != v else f"{v:.9g}") for v in vals) + "\n")
