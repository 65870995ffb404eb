#!/usr/bin/python3
"""Reference values for heph_softmax_xent: PyTorch's cross_entropy (reduction='sum') and its
gradient wrt the logits, on a few shapes (large and equal logits included). Writes
tests/fixtures/softmax_ref.txt. Run with Debian's /usr/bin/python3 (python3-torch)."""
import torch

torch.manual_seed(11)
cases = [("small", 3, 4, 1.0), ("wide", 5, 10, 3.0), ("large", 4, 6, 60.0), ("one", 1, 2, 1.0)]
with open("tests/fixtures/softmax_ref.txt", "w") as f:
    f.write("# softmax cross-entropy: case NAME B K; then logits, labels, loss (sum), dlogits\n")
    for name, B, K, scale in cases:
        a = (torch.randn(B, K, dtype=torch.float64) * scale)
        if name == "large":
            a[0, :] = 88.0  # equal logits at the float exp limit
        y = torch.randint(0, K, (B,))
        a.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(a, y, reduction="sum")
        loss.backward()
        f.write(f"case {name} {B} {K}\n")
        f.write(" ".join(f"{v:.9g}" for v in a.detach().flatten().tolist()) + "\n")
        f.write(" ".join(str(int(v)) for v in y.tolist()) + "\n")
        f.write(f"{loss.item():.12g}\n")
        f.write(" ".join(f"{v:.9g}" for v in a.grad.flatten().tolist()) + "\n")
