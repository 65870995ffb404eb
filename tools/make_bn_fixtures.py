#!/usr/bin/python3
"""Reference values for heph_batchnorm_forward / _backward: PyTorch's BatchNorm1d and
BatchNorm2d (eps 1e-5, momentum 0.1, affine) in training mode (batch statistics, running ones
updated) and in evaluation mode (running statistics), with gamma and beta other than 1 and 0,
and the gradients for dout = R. Writes tests/fixtures/bn_ref.txt.
Run with Debian's /usr/bin/python3 (python3-torch)."""
import torch

torch.manual_seed(9)
cases = [("bn1d_train", 5, 4, 1, 1, True), ("bn2d_train", 3, 2, 3, 4, True), ("bn2d_eval", 2, 3, 2, 2, False),
         ("bn1d_two", 2, 3, 1, 1, True)]
with open("tests/fixtures/bn_ref.txt", "w") as f:
    f.write("# BatchNorm: case NAME B C HW TRAIN; gamma, beta, running mean and var before, x, R = dout, "
            "y, running mean and var after, dx, dgamma, dbeta\n")
    for name, B, C, H, W, train in cases:
        bn = torch.nn.BatchNorm1d(C) if H * W == 1 else torch.nn.BatchNorm2d(C)
        with torch.no_grad():
            bn.weight.copy_(torch.randn(C) * 0.5 + 1.0)
            bn.bias.copy_(torch.randn(C) * 0.3)
            bn.running_mean.copy_(torch.randn(C) * 0.2)
            bn.running_var.copy_(torch.rand(C) + 0.5)
        before = (bn.running_mean.clone(), bn.running_var.clone())
        bn.train(train)
        x = (torch.randn(B, C) if H * W == 1 else torch.randn(B, C, H, W)) * 2.0 + 0.7
        x.requires_grad_(True)
        y = bn(x)
        R = torch.randn(y.shape)
        y.backward(R)
        f.write(f"case {name} {B} {C} {H * W} {int(train)}\n")
        for t in (bn.weight.detach(), bn.bias.detach(), before[0], before[1], x.detach(), R, y.detach(),
                  bn.running_mean, bn.running_var, x.grad, bn.weight.grad, bn.bias.grad):
            f.write(" ".join(f"{v:.9g}" for v in t.flatten().tolist()) + "\n")
