#!/usr/bin/env python3
"""PyTorch side of `make bench`: the same measurements as bench/bench.c, same models.

One measurement per process (so the peak memory belongs to one configuration), one JSON
object per run with the same field names as bench.c:

  torch_bench.py train  --model mlp-mnist --threads 2 --epochs 1 --json   (real MNIST epochs)
  torch_bench.py train  --model cnn-shapes3d --threads 1 --seconds 10
  torch_bench.py encode --model cnn-shapes3d --threads 2
  torch_bench.py maha   --dim 12 --threads 1
  torch_bench.py train  --model cvae-mnist --info "$(build/bench info --model cvae-mnist)"
                        (also classifier-mnist: the labelled models of issue #22)

Architectures are built from the same spec strings as hephaestus.h ("conv32k4s2p1,relu,...",
"dense400,relu,dense40"): bench/run.sh passes the C program's own `bench info` line with --info,
so both sides always run the same layers; the PRESETS below mirror hephaestus.h for use
without it. Conv2d / ConvTranspose2d / Linear + ReLU, Bernoulli BCE-with-logits summed over
pixels + analytic KL (per image, averaged over the batch), Adam lr 1e-3.

The fastest set-up here (bench/run.sh does it): Debian's python3-torch with
  LD_LIBRARY_PATH=<folder of libopenblas0-pthread>  OPENBLAS_NUM_THREADS=1
  OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, torch.set_num_threads(T),
  torch.set_flush_denormal(True).
Timing only; never an assertion.
"""

import argparse
import json
import os
import re
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# mirror of heph_vae_config_preset: (c, h, w, z_dim, encoder body, decoder); the VAE appends
# the encoder head dense(2*z_dim) itself
PRESETS = {
    "mlp-mnist": (1, 28, 28, 20, "dense400,relu", "dense400,relu,dense784"),
    "mlp-dsprites": (1, 64, 64, 10, "dense1024,relu,dense256,relu,dense64,relu",
                     "dense64,relu,dense256,relu,dense1024,relu,dense4096"),
    "cnn-dsprites": (1, 64, 64, 10,
                     "conv32k4s2p1,relu,conv32k4s2p1,relu,conv32k4s2p1,relu,conv32k4s2p1,relu,"
                     "flatten,dense256,relu,dense64,relu",
                     "dense64,relu,dense256,relu,dense512,relu,reshape32x4x4,convt32k4s2p1,relu,"
                     "convt32k4s2p1,relu,convt32k4s2p1,relu,convt1k4s2p1"),
    "cnn-shapes3d": (3, 64, 64, 12,
                     "conv32k4s2p1,relu,conv64k4s2p1,relu,conv128k4s2p1,relu,conv256k4s2p1,relu,"
                     "flatten,dense256,relu",
                     "dense256,relu,dense4096,relu,reshape256x4x4,convt128k4s2p1,relu,"
                     "convt64k4s2p1,relu,convt32k4s2p1,relu,convt3k4s2p1"),
}
DEFAULT_BATCH = {"cnn-dsprites": 64}

CONV_RE = re.compile(r"^(convt|conv)(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?$")


def build(spec, shape):
    """nn.Sequential for a spec string applied to shape (c, h, w) or (n,); returns
    (module, output shape, forward FLOPs per image counted like bench.c)."""
    layers, flops = [], 0.0
    for tok in [t.strip() for t in spec.split(",") if t.strip()]:
        m = CONV_RE.match(tok)
        if tok.startswith("dense"):
            n_in = int(np.prod(shape))
            if len(shape) != 1:
                layers.append(nn.Flatten())
            n_out = int(tok[5:])
            layers.append(nn.Linear(n_in, n_out))
            flops += 2.0 * n_in * n_out
            shape = (n_out,)
        elif m:
            kind, co, k = m.group(1), int(m.group(2)), int(m.group(3))
            s, p = int(m.group(4) or 1), int(m.group(5) or 0)
            c, h, w = shape
            if kind == "conv":
                layers.append(nn.Conv2d(c, co, k, s, p))
                ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                flops += 2.0 * co * ho * wo * c * k * k
            else:
                layers.append(nn.ConvTranspose2d(c, co, k, s, p))
                ho, wo = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
                flops += 2.0 * c * h * w * co * k * k
            shape = (co, ho, wo)
        elif tok == "bn":  # over channels, or over the features of a flat tensor
            layers.append(nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0]))
        elif tok == "maxpool2":
            layers.append(nn.MaxPool2d(2))
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        elif tok == "relu":
            layers.append(nn.ReLU())
        elif tok.startswith("lrelu"):
            layers.append(nn.LeakyReLU(float(tok[5:]) if len(tok) > 5 else 0.01))
        elif tok == "sigmoid":
            layers.append(nn.Sigmoid())
        elif tok == "tanh":
            layers.append(nn.Tanh())
        elif tok == "flatten":
            layers.append(nn.Flatten())
            shape = (int(np.prod(shape)),)
        elif tok.startswith("reshape"):
            c, h, w = (int(v) for v in tok[7:].split("x"))
            layers.append(nn.Unflatten(1, (c, h, w)))
            shape = (c, h, w)
        else:
            raise SystemExit(f"torch_bench: unknown spec token {tok!r}")
    return nn.Sequential(*layers), shape, flops


class VAE(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.shape = (arch["c"], arch["h"], arch["w"])
        self.z_dim = arch["z_dim"]
        self.enc, _, self.enc_flops = build(arch["enc_spec"], self.shape)
        self.dec, out, self.dec_flops = build(arch["dec_spec"], (self.z_dim,))
        if int(np.prod(out)) != int(np.prod(self.shape)):
            raise SystemExit("torch_bench: the decoder does not output a picture")

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = h[:, :self.z_dim], h[:, self.z_dim:]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


class CVAE(nn.Module):
    """the conditional VAE of hephaestus.h (heph_cvae_*): K label rows added to the encoder's
    [mu | logvar] (zero at first), K label rows of width E joining z at the decoder, logvar
    clamped to [-30, 20] as the C code does"""

    def __init__(self, a):
        super().__init__()
        self.shape = (a["c"], a["h"], a["w"])
        self.z_dim, K, E = a["z_dim"], a["n_classes"], a["label_dim"]
        self.enc, _, self.enc_flops = build(a["enc_spec"], self.shape)
        self.dec, _, self.dec_flops = build(a["dec_spec"], (self.z_dim + E,))
        self.emb_enc = nn.Embedding(K, 2 * self.z_dim)
        nn.init.zeros_(self.emb_enc.weight)
        self.emb_dec = nn.Embedding(K, E)

    def forward(self, x, y):
        h = self.enc(x) + self.emb_enc(y)
        mu, logvar = h[:, :self.z_dim], torch.clamp(h[:, self.z_dim:], -30.0, 20.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(torch.cat([z, self.emb_dec(y)], 1)), mu, logvar


def run_train_labelled(args):
    """steady-state steps of cvae-mnist (frozen classifier, lambda NLL of the given label, 10 %
    wrong labels) or classifier-mnist (cross-entropy, Adam), as bench.c's run_train_labelled"""
    a = json.loads(args.info) if args.info else None
    if a is None:
        raise SystemExit("torch_bench: cvae-mnist and classifier-mnist need --info (bench/run.sh passes it)")
    B = args.batch or 64
    cvae = args.model == "cvae-mnist"
    torch.manual_seed(args.seed)
    data, src = fill_pool(args.pool * B, (1, 28, 28), args.data, args.seed)
    labels = torch.arange(data.shape[0]) % 10
    base = proc_status_kb("VmRSS:") / 1024.0
    ok = hwm_reset()
    if cvae:
        model = CVAE(a)
        cls, _, cls_flops = build(a["classifier_spec"], (1, 28, 28))
        cls.eval()
        for p in cls.parameters():
            p.requires_grad_(False)
        lam, wrong, K = float(a["label_weight"]), float(a["wrong_labels"]), int(a["n_classes"])
        fwd = model.enc_flops + model.dec_flops + cls_flops
    else:
        model, _, fwd = build(a["enc_spec"], (1, 28, 28))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        if cvae:
            flip = torch.rand(y.shape[0]) < wrong
            given = torch.where(flip, (y + 1 + torch.randint(0, K - 1, y.shape)) % K, y)
            logits, mu, logvar = model(x, given)
            loss = loss_fn(logits, x, mu, logvar) + lam * F.cross_entropy(cls(torch.sigmoid(logits).reshape(x.shape)), given)
        else:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    nb = data.shape[0] // B
    t0, s = time.perf_counter(), 0
    while s < 2 or time.perf_counter() - t0 < args.warmup:
        step(data[(s % nb) * B:(s % nb + 1) * B], labels[(s % nb) * B:(s % nb + 1) * B])
        s += 1
    steps = 0
    t0 = time.perf_counter()
    while True:
        i = steps % nb
        loss = step(data[i * B:(i + 1) * B], labels[i * B:(i + 1) * B])
        steps += 1
        t = time.perf_counter()
        if t - t0 >= args.seconds:
            break
    secs, images = t - t0, steps * B
    peak = hwm_mib()
    # hephaestus.h keeps BatchNorm's running statistics in the parameter block: count them too
    params = sum(p.numel() for p in model.parameters()) + \
        sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    if params != a.get("params"):
        print(f"torch_bench: warning: {params} parameters, the C model has {a.get('params')}", file=sys.stderr)
    out = common(args)
    out.update({"model": args.model, "data": src, "batch": B, "params": params,
                "fwd_gflop_per_image": fwd * 1e-9, "train_gflop_per_image": 3 * fwd * 1e-9,
                "model_mib": a.get("model_mib"), "epochs": 0, "steps": steps, "images": images,
                "seconds": secs, "images_per_s": images / secs, "ms_per_step": 1e3 * secs / steps,
                "gflops": 3 * fwd * images / secs * 1e-9, "base_rss_mib": base,
                "peak_rss_mib": maxrss_mib(), "train_mib": peak - base, "hwm_reset": ok,
                "last_loss": float(loss)})
    emit(args, out, f"{args.model} train (torch), {out['threads']} threads, batch {B}: "
         f"{out['images_per_s']:.1f} images/s, {out['ms_per_step']:.2f} ms/step, "
         f"{out['gflops']:.1f} GFLOP/s, peak RSS {out['peak_rss_mib']:.1f} MiB [{src}]")


def loss_fn(logits, x, mu, logvar):
    """negative ELBO per image: Bernoulli BCE-with-logits summed over pixels + analytic KL"""
    recon = F.binary_cross_entropy_with_logits(logits.reshape(x.shape), x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (recon + kl) / x.shape[0]


# ---- memory: the same method as bench.c (/proc/self/status, VmHWM reset through clear_refs)

def proc_status_kb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return float(line.split()[1])
    except OSError:
        pass
    return -1.0


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def hwm_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return 1
    except OSError:
        return 0


def hwm_mib():
    v = proc_status_kb("VmHWM:")
    return maxrss_mib() if v < 0 else v / 1024.0


# ---- data: .hpd reader (header fields as in hephaestus.h) and the same pool as bench.c

def hpd_open(path):
    with open(path, "rb") as f:
        hdr = f.read(128)
    if hdr[:7] != b"HEPHHPD":
        raise SystemExit(f"{path}: not a .hpd dataset")
    u32 = lambda o: int.from_bytes(hdr[o:o + 4], "little")
    hb, count = u32(12), int.from_bytes(hdr[16:24], "little")
    c, h, w, dtype = u32(24), u32(28), u32(32), u32(36)
    vmax = float(np.frombuffer(hdr[44:48], "<f4")[0])
    n = c * h * w
    nbytes = {1: n, 2: 4 * n, 3: (n + 7) // 8}[dtype]
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=hb, shape=(count, nbytes))
    return raw, (c, h, w), dtype, vmax


def hpd_decode(raw, shape, dtype, vmax):
    n = int(np.prod(shape))
    if dtype == 1:
        x = raw.astype(np.float32)
    elif dtype == 2:
        x = raw.view("<f4").astype(np.float32)
    else:  # 1-bit, MSB first
        x = np.unpackbits(raw, axis=1)[:, :n].astype(np.float32)
    x /= np.float32(vmax)
    return torch.from_numpy(x.reshape((raw.shape[0],) + tuple(shape)))


def pool_index(i, count):
    return (i * 2654435761 + 12345) % count


def fill_pool(n, shape, path, seed):
    if path:
        raw, s, dtype, vmax = hpd_open(path)
        if tuple(s) != tuple(shape):
            raise SystemExit(f"{path} holds {s} pictures, the model wants {shape}")
        idx = np.array([pool_index(i, raw.shape[0]) for i in range(n)])
        return hpd_decode(np.asarray(raw[idx]), shape, dtype, vmax), path
    g = torch.Generator().manual_seed(seed + 1000)
    if shape[0] == 1:
        return (torch.rand((n,) + tuple(shape), generator=g) < 0.5).float(), \
            "generated: random binary pictures"
    return torch.rand((n,) + tuple(shape), generator=g), "generated: uniform random pictures"


# ---- runs

def common(args):
    return {"impl": "torch", "mode": args.mode, "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", "")}


def arch_of(args):
    if args.info:
        a = json.loads(args.info)
        return {k: a[k] for k in ("c", "h", "w", "z_dim", "enc_spec", "dec_spec")}, a
    c, h, w, z, enc, dec = PRESETS[args.model]
    return {"c": c, "h": h, "w": w, "z_dim": z,
            "enc_spec": (enc + "," if enc else "") + f"dense{2 * z}", "dec_spec": dec}, None


def model_fields(model, arch, info, batch):
    params = sum(p.numel() for p in model.parameters())
    if info and info.get("params") != params:
        print(f"torch_bench: warning: {params} parameters, the C model has {info.get('params')}",
              file=sys.stderr)
    acts = float(np.prod(model.shape)) + model.z_dim
    for net, shape in ((model.enc, model.shape), (model.dec, (model.z_dim,))):
        x = torch.zeros((1,) + tuple(shape))
        with torch.no_grad():
            for layer in net:
                x = layer(x)
                if not isinstance(layer, (nn.Flatten, nn.Unflatten)):
                    acts += x.numel()
    fwd = model.enc_flops + model.dec_flops
    model_mib = (4.0 * params + batch * acts) * 4.0 / 1048576.0
    return fwd, model_mib, {
        "enc_spec": arch["enc_spec"], "dec_spec": arch["dec_spec"], "c": arch["c"],
        "h": arch["h"], "w": arch["w"], "z_dim": arch["z_dim"], "batch": batch, "params": params,
        "act_floats_per_image": acts, "fwd_gflop_per_image": fwd * 1e-9,
        "enc_fwd_gflop_per_image": model.enc_flops * 1e-9,
        "train_gflop_per_image": 3 * fwd * 1e-9, "model_mib": model_mib}


def run_train(args):
    if args.model in ("cvae-mnist", "classifier-mnist"):
        return run_train_labelled(args)
    arch, info = arch_of(args)
    shape = (arch["c"], arch["h"], arch["w"])
    B = args.batch or DEFAULT_BATCH.get(args.model, 128)
    mnist = args.model == "mlp-mnist"
    torch.manual_seed(args.seed)
    if mnist:  # the whole training set, like a real run
        path = args.data or "data/mnist/train.hpd"
        raw, s, dtype, vmax = hpd_open(path)
        data = hpd_decode(np.asarray(raw), s, dtype, vmax)
        src = path
    else:
        data, src = fill_pool(args.pool * B, shape, args.data, args.seed)
    n = data.shape[0]
    gen = torch.Generator().manual_seed(args.seed + 7)

    base = proc_status_kb("VmRSS:") / 1024.0
    ok = hwm_reset()
    model = VAE(arch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x):
        opt.zero_grad(set_to_none=True)
        logits, mu, logvar = model(x)
        loss = loss_fn(logits, x, mu, logvar)
        loss.backward()
        opt.step()
        return loss

    nb = n // B
    t0, s = time.perf_counter(), 0
    while s < 2 or time.perf_counter() - t0 < args.warmup:
        step(data[(s % nb) * B:(s % nb + 1) * B])
        s += 1
    steps = images = 0
    if mnist:  # whole epochs: shuffle, gather, step (the last batch is short)
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, B):
                x = data[perm[i:i + B]]
                loss = step(x)
                steps += 1
                images += x.shape[0]
        t = time.perf_counter()
    else:
        t0 = time.perf_counter()
        while True:
            loss = step(data[(steps % nb) * B:(steps % nb + 1) * B])
            steps += 1
            images += B
            t = time.perf_counter()
            if t - t0 >= args.seconds:
                break
    secs = t - t0
    peak = hwm_mib()
    fwd, model_mib, fields = model_fields(model, arch, info, B)
    out = common(args)
    out.update({"model": args.model, "data": src})
    out.update(fields)
    out.update({"epochs": args.epochs if mnist else 0, "steps": steps, "images": images,
                "seconds": secs, "images_per_s": images / secs, "ms_per_step": 1e3 * secs / steps,
                "gflops": 3 * fwd * images / secs * 1e-9, "base_rss_mib": base,
                "peak_rss_mib": maxrss_mib(), "train_mib": peak - base, "hwm_reset": ok,
                "train_over_model": (peak - base) / model_mib, "last_loss": float(loss)})
    emit(args, out, f"{args.model} train (torch), {out['threads']} threads, batch {B}: "
         f"{out['images_per_s']:.1f} images/s, {out['ms_per_step']:.2f} ms/step, "
         f"{out['gflops']:.1f} GFLOP/s, training memory {out['train_mib']:.1f} MiB "
         f"(model {model_mib:.1f} MiB), peak RSS {out['peak_rss_mib']:.1f} MiB [{src}]")


def run_encode(args):
    arch, info = arch_of(args)
    shape = (arch["c"], arch["h"], arch["w"])
    B = args.batch or DEFAULT_BATCH.get(args.model, 128)
    data, src = fill_pool(args.pool * B, shape, args.data, args.seed)
    n, D = data.shape[0], arch["z_dim"]
    model = VAE(arch).eval()
    mu = torch.empty(n, D)

    def encode(count):
        with torch.inference_mode():
            for i in range(0, count, B):
                mu[i:i + B] = model.enc(data[i:i + B])[:, :D]

    t0 = time.perf_counter()
    while True:
        encode(B)
        if time.perf_counter() - t0 >= args.warmup:
            break
    images, t0 = 0, time.perf_counter()
    while True:
        encode(n)
        images += n
        t = time.perf_counter()
        if t - t0 >= args.seconds:
            break
    _, _, fields = model_fields(model, arch, info, B)
    out = common(args)
    out.update({"model": args.model, "data": src})
    out.update(fields)
    out.update({"images": images, "seconds": t - t0, "images_per_s": images / (t - t0),
                "gflops": model.enc_flops * images / (t - t0) * 1e-9,
                "peak_rss_mib": maxrss_mib()})
    emit(args, out, f"{args.model} encode (torch), {out['threads']} threads, batch {B}: "
         f"{out['images_per_s']:.1f} images/s, {out['gflops']:.1f} GFLOP/s")


def run_maha(args):
    """fit mean/covariance/Cholesky in float64 on n_fit latents, then score chunks of
    100,000: d2 = |L^-1 (z - m)|^2 with a batched triangular solve"""
    D = args.dim
    g = torch.Generator().manual_seed(args.seed)
    A = torch.tril(0.3 * torch.randn(D, D, generator=g), -1) + torch.eye(D)
    chunk = min(args.score, 100000)
    zf = 0.5 + torch.randn(args.fit, D, generator=g) @ A.T
    zs = 0.5 + torch.randn(chunk, D, generator=g) @ A.T
    t0 = time.perf_counter()
    zd = zf.double()
    m = zd.mean(0)
    d = zd - m
    cov = d.T @ d / (zd.shape[0] - 1)
    L = torch.linalg.cholesky(cov)
    tfit = time.perf_counter() - t0

    def score(z):
        y = torch.linalg.solve_triangular(L, (z.double() - m).T, upper=False)
        return y.square().sum(0)

    score(zs)
    scored, s, t0 = 0, 0.0, time.perf_counter()
    while True:
        d2 = score(zs)
        scored += chunk
        s += float(d2[scored % chunk])
        t = time.perf_counter()
        if scored >= args.score and t - t0 >= args.seconds:
            break
    out = common(args)
    out.update({"dim": D, "method": "empirical", "n_fit": args.fit, "scored": scored,
                "fit_ms": 1e3 * tfit, "seconds": t - t0, "latents_per_s": scored / (t - t0),
                "checksum": s, "peak_rss_mib": maxrss_mib()})
    emit(args, out, f"Mahalanobis D={D} (torch), {out['threads']} threads: fit on {args.fit} "
         f"points {1e3 * tfit:.2f} ms, scoring {out['latents_per_s']:.3g} latents/s")


def emit(args, out, sentence):
    print(json.dumps(out) if args.json else sentence, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", nargs="?", default="train", choices=["train", "encode", "maha"])
    p.add_argument("--model", default="mlp-mnist", choices=sorted(PRESETS) + ["classifier-mnist", "cvae-mnist"])
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's choice)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--epochs", type=int, default=1, help="mlp-mnist: timed epochs")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--data", help=".hpd file (see bench.c --help)")
    p.add_argument("--pool", type=int, default=8)
    p.add_argument("--dim", type=int, default=12)
    p.add_argument("--fit", type=int, default=10000)
    p.add_argument("--score", type=lambda v: int(float(v)), default=1000000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--info", help="the JSON line of `bench info --model M` (same layers as C)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_flush_denormal(True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    {"train": run_train, "encode": run_encode, "maha": run_maha}[args.mode](args)


if __name__ == "__main__":
    main()
