#!/usr/bin/python3
"""Reference values for heph_embed_forward / heph_embed_backward: PyTorch's nn.Embedding on a
table of K classes and E dimensions, a batch of labels with repeats and a class it lacks, and
the gradient of sum(out * R) for a random R (so dT[k] sums the rows of R whose label is k).
Writes tests/fixtures/embed_ref.txt. Run with Debian's /usr/bin/python3 (python3-torch)."""
import torch

torch.manual_seed(5)
K, E = 6, 4
labels = torch.tensor([3, 0, 3, 5, 1, 3, 0])  # class 2 and 4 absent, 3 three times
emb = torch.nn.Embedding(K, E).double()
R = torch.randn(len(labels), E, dtype=torch.float64)
out = emb(labels)
(out * R).sum().backward()
with open("tests/fixtures/embed_ref.txt", "w") as f:
    f.write("# nn.Embedding: K E B; table (K*E); labels (B); R = dout (B*E); out (B*E); dtable (K*E)\n")
    f.write(f"{K} {E} {len(labels)}\n")
    for t in (emb.weight.detach(), labels, R, out.detach(), emb.weight.grad):
        vals = t.flatten().tolist()
        f.write(" ".join(str(int(v)) if t.dtype == torch.int64 else f"{v:.9g}" for v in vals) + "\n")
