#!/usr/bin/env python3
"""PyTorch reference for the Hephaestus MLP VAE on MNIST-style IDX data.

The model, loss and optimiser follow pytorch/examples (vae/main.py):

  encoder  Linear(784,400) + ReLU, then Linear(400,20) -> mu
                                   and  Linear(400,20) -> logvar
  decoder  Linear(20,400) + ReLU, Linear(400,784) -> logits
  loss     BCE-with-logits(logits, x, sum) + KL,
           KL = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))
  Adam lr 1e-3 (default betas), batch 128, reshuffled every epoch,
  default PyTorch initialisation.

Pixels are bytes / 255 as float32 in [0, 1] (not binarised).  IDX files can be
plain or gzip-compressed (".gz"); they are parsed with numpy, no torchvision.

Per epoch it prints: train neg-ELBO (summed loss over the epoch / number of
train images, in nats/image), test neg-ELBO in nats/image (one reparameterised
z sample per test image, under torch.no_grad, batches of 1000), the recon and
KL parts of the test loss, training throughput (images/s, wall clock of the
training loop only) and the process's peak RSS.

Example (fast set-up used for the reference numbers, 2-core machine):

  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread \\
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3.11 bench/torch_vae_mnist.py \\
      --threads 2 --seed 1 --epochs 10 \\
      --train-images /tmp/mnist/package/data/train-images-idx3-ubyte \\
      --test-images  /tmp/mnist/package/data/t10k-images-idx3-ubyte \\
      --json bench/results/torch_vae_mnist.json

Run with --help for all options.
"""

import argparse
import gzip
import json
import platform
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------
# IDX loading
# --------------------------------------------------------------------------

# IDX type codes (third byte of the magic number) -> numpy big-endian dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path):
    """Read an IDX file (plain or .gz) into a numpy array of its shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    dtype = IDX_DTYPES.get(data[2])
    if dtype is None:
        raise ValueError(f"{path}: unknown IDX type code 0x{data[2]:02x}")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4)
    shape = tuple(int(d) for d in dims)
    offset = 4 + 4 * ndim
    count = int(np.prod(shape)) if shape else 1
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: size does not match header {shape}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)


def load_images(path):
    """Images as a float32 tensor (N, 784) with values in [0, 1]."""
    raw = read_idx(path)
    if raw.ndim != 3:
        raise ValueError(f"{path}: expected a 3-d image array, got {raw.shape}")
    x = raw.reshape(raw.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(x)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class VAE(nn.Module):
    def __init__(self, d_in=784, d_hidden=400, d_latent=20):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc21 = nn.Linear(d_hidden, d_latent)  # mu
        self.fc22 = nn.Linear(d_hidden, d_latent)  # logvar
        self.fc3 = nn.Linear(d_latent, d_hidden)
        self.fc4 = nn.Linear(d_hidden, d_in)       # logits

    def encode(self, x):
        h = F.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_parts(logits, x, mu, logvar):
    """Summed (over batch) reconstruction and KL terms of the neg-ELBO."""
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return recon, kl


# --------------------------------------------------------------------------
# Train / evaluate
# --------------------------------------------------------------------------

def train_epoch(model, opt, x_train, batch, gen):
    """One epoch over a fresh permutation; returns (sum loss, seconds)."""
    model.train()
    n = x_train.shape[0]
    total = 0.0
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch):
        x = x_train[perm[i:i + batch]]
        opt.zero_grad()
        logits, mu, logvar = model(x)
        recon, kl = loss_parts(logits, x, mu, logvar)
        loss = recon + kl
        loss.backward()
        opt.step()
        total += loss.item()
    return total, time.perf_counter() - t0


@torch.no_grad()
def evaluate(model, x_test, batch=1000):
    """Mean (recon, kl) per image, one reparameterised z sample per image."""
    model.eval()
    recon_sum = 0.0
    kl_sum = 0.0
    for i in range(0, x_test.shape[0], batch):
        x = x_test[i:i + batch]
        logits, mu, logvar = model(x)
        recon, kl = loss_parts(logits, x, mu, logvar)
        recon_sum += recon.item()
        kl_sum += kl.item()
    n = x_test.shape[0]
    return recon_sum / n, kl_sum / n


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024.0 * 1024.0) if sys.platform == "darwin" else r / 1024.0


def main():
    p = argparse.ArgumentParser(
        description="PyTorch reference MLP VAE (784-400-20) on MNIST-style IDX files.")
    p.add_argument("--train-images", required=True, help="train images IDX (plain or .gz)")
    p.add_argument("--train-labels", help="train labels IDX (optional, only checked for size)")
    p.add_argument("--test-images", required=True, help="test images IDX (plain or .gz)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="OUT", help="write per-epoch results as JSON")
    args = p.parse_args()

    torch.set_flush_denormal(True)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    x_train = load_images(args.train_images)
    x_test = load_images(args.test_images)
    if args.train_labels:
        labels = read_idx(args.train_labels)
        if labels.shape[0] != x_train.shape[0]:
            raise SystemExit("train labels and images differ in count")

    model = VAE(d_in=x_train.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"train {tuple(x_train.shape)}, test {tuple(x_test.shape)}, "
          f"batch {args.batch}, seed {args.seed}", flush=True)
    print(f"{'epoch':>5} {'train':>9} {'test':>9} {'recon':>9} {'kl':>7} "
          f"{'img/s':>8} {'rss MiB':>8}", flush=True)

    epochs = []
    for epoch in range(1, args.epochs + 1):
        train_sum, secs = train_epoch(model, opt, x_train, args.batch, gen)
        recon, kl = evaluate(model, x_test)
        row = {
            "epoch": epoch,
            "train_neg_elbo": train_sum / x_train.shape[0],
            "test_neg_elbo": recon + kl,
            "test_recon": recon,
            "test_kl": kl,
            "train_seconds": secs,
            "train_images_per_s": x_train.shape[0] / secs,
            "peak_rss_mib": peak_rss_mib(),
        }
        epochs.append(row)
        print(f"{epoch:5d} {row['train_neg_elbo']:9.3f} {row['test_neg_elbo']:9.3f} "
              f"{recon:9.3f} {kl:7.3f} {row['train_images_per_s']:8.0f} "
              f"{row['peak_rss_mib']:8.1f}", flush=True)

    if args.json:
        out = {
            "config": {
                "train_images": args.train_images,
                "test_images": args.test_images,
                "epochs": args.epochs,
                "batch": args.batch,
                "threads": torch.get_num_threads(),
                "seed": args.seed,
                "lr": 1e-3,
                "model": "784-400-20 MLP VAE, BCE-with-logits + KL, Adam",
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            "epochs": epochs,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
