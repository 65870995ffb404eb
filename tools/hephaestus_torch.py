"""hephaestus_torch.py - the PyTorch side of `hephaestus export --format safetensors` and
`hephaestus import` (issue #27). Needs torch; reads and writes safetensors itself (struct and
json: no safetensors package needed).

    import hephaestus_torch as ht
    model = ht.HephVAE.load("model.safetensors")    # the nn.Module, weights loaded, in eval mode
    mu, logvar = model.encode(x)                     # x (B, C, H, W) in [0, 1]
    pictures = model.decode(mu)                      # sigmoid of the decoder's logits
    model.save("back.safetensors")                   # then: hephaestus import back.safetensors m.hpm

The layout (also in tools/cli_export.h): encoder and decoder are nn.Sequential with one module
per token of the spec string, so the parameters of layer l are encoder.l.weight / .bias:
dense -> nn.Linear (an image input is flattened first, in (C, H, W) order), conv ->
nn.Conv2d, convt -> nn.ConvTranspose2d, flatten -> nn.Flatten, reshapeCxHxW ->
nn.Unflatten(1, (C, H, W)), maxpool2 -> nn.MaxPool2d(2), bn -> nn.BatchNorm2d(C) (nn.BatchNorm1d
after dense or flatten; weight, bias, running_mean, running_var; the step counter
num_batches_tracked is not stored), relu / lreluA / sigmoid / tanh -> nn.ReLU / nn.LeakyReLU(A) /
nn.Sigmoid / nn.Tanh. The encoder ends with the head nn.Linear(.., 2 z_dim): mu, then log
sigma^2. The decoder maps z (B, z_dim) to the logits (B, C*H*W) of the picture.
"""
import json
import os
import re
import struct
import tempfile

import torch
import torch.nn as nn

FORMAT = "hephaestus-vae/1"


def read_safetensors(path):
    """{name: float32 tensor}, {metadata} of a safetensors file (F32 tensors only)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise ValueError("%s: tensor %s is %s, only F32 is read" % (path, name, t["dtype"]))
        b, e = t["data_offsets"]
        v = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32) if e > b else torch.zeros(0)
        out[name] = v.reshape(t["shape"]).clone()  # little-endian hosts (x86, arm)
    return out, meta


def write_safetensors(path, tensors, metadata):
    """tensors {name: tensor} as F32 (in the given order), metadata {str: str}; atomic: a
    unique temporary file beside path, fsync, rename."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().cpu().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class Dense(nn.Linear):
    """nn.Linear that flattens an image input first ((C, H, W) order), as hephaestus' dense."""

    def forward(self, x):
        return super().forward(x.flatten(1))


def build(spec, shape, flat=False):
    """nn.Sequential of a spec string applied to shape (C, H, W); returns it and the output
    shape. One module per token, so module l holds layer l's parameters.
    flat: the input is (B, N) rather than (B, C, H, W) (BatchNorm1d rather than 2d)."""
    c, h, w = shape
    mods = []
    for tok in [t.strip() for t in spec.split(",")] if spec else []:
        n = c * h * w
        m = re.fullmatch(r"dense(\d+)", tok)
        if m:
            mods.append(Dense(n, int(m.group(1))))
            c, h, w, flat = int(m.group(1)), 1, 1, True
            continue
        m = re.fullmatch(r"conv(t?)(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?", tok)
        if m:
            co, k = int(m.group(2)), int(m.group(3))
            s, p = int(m.group(4) or 1), int(m.group(5) or 0)
            if m.group(1):
                mods.append(nn.ConvTranspose2d(c, co, k, s, p))
                h, w = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
            else:
                mods.append(nn.Conv2d(c, co, k, s, p))
                h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            c, flat = co, False
            continue
        m = re.fullmatch(r"reshape(\d+)x(\d+)x(\d+)", tok)
        if m:
            c, h, w = (int(g) for g in m.groups())
            mods.append(nn.Unflatten(1, (c, h, w)))
            flat = False
            continue
        m = re.fullmatch(r"lrelu([0-9.eE+-]*)", tok)
        if m:
            mods.append(nn.LeakyReLU(float(m.group(1)) if m.group(1) else 0.01))
            continue
        if tok == "flatten":
            mods.append(nn.Flatten())
            c, h, w, flat = n, 1, 1, True
        elif tok == "bn":
            mods.append(nn.BatchNorm1d(c) if flat else nn.BatchNorm2d(c))
        elif tok == "maxpool2":
            mods.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        elif tok in ("relu", "sigmoid", "tanh"):
            mods.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[tok]())
        else:
            raise ValueError("unknown spec token %r" % tok)
    return nn.Sequential(*mods), (c, h, w)


class HephVAE(nn.Module):
    """The nn.Module equivalent of a hephaestus VAE (see the module comment)."""

    def __init__(self, input_shape, z_dim, encoder_spec, decoder_spec, metadata=None):
        super().__init__()
        self.input_shape, self.z_dim = tuple(input_shape), int(z_dim)
        self.encoder_spec, self.decoder_spec = encoder_spec, decoder_spec
        head = (encoder_spec + "," if encoder_spec else "") + "dense%d" % (2 * self.z_dim)
        self.dec_image_input = bool(decoder_spec) and decoder_spec.split(",")[0].strip().startswith("conv")
        self.encoder, _ = build(head, self.input_shape)
        self.decoder, out = build(decoder_spec, (self.z_dim, 1, 1), flat=not self.dec_image_input)
        n_in = self.input_shape[0] * self.input_shape[1] * self.input_shape[2]
        if out[0] * out[1] * out[2] != n_in:
            raise ValueError("decoder outputs %s, the picture is %s" % (out, self.input_shape))
        self.dec_image_input = bool(decoder_spec) and decoder_spec.split(",")[0].strip().startswith("conv")
        self.extra = dict(metadata or {})

    def encode(self, x):
        """posterior mean and log-variance of pictures x (B, C, H, W)"""
        h = self.encoder(x)
        return h[:, :self.z_dim], h[:, self.z_dim:]

    def decode_logits(self, z):
        """the decoder's logits (B, C*H*W) of codes z (B, z_dim)"""
        if self.dec_image_input:
            z = z.reshape(z.shape[0], self.z_dim, 1, 1)
        return self.decoder(z).flatten(1)

    def decode(self, z):
        """pictures (B, C, H, W) in [0, 1] of codes z"""
        return torch.sigmoid(self.decode_logits(z)).reshape((z.shape[0],) + self.input_shape)

    def metadata(self):
        m = dict(self.extra)
        m.update({"format": FORMAT, "input_shape": "%d,%d,%d" % self.input_shape, "z_dim": str(self.z_dim),
                  "encoder_spec": self.encoder_spec, "decoder_spec": self.decoder_spec})
        return m

    @classmethod
    def load(cls, path):
        tensors, meta = read_safetensors(path)
        shape = tuple(int(v) for v in meta["input_shape"].split(","))
        model = cls(shape, int(meta["z_dim"]), meta["encoder_spec"], meta["decoder_spec"], meta)
        for k, v in model.state_dict().items():  # BatchNorm's step counter: not in the file
            if k.endswith("num_batches_tracked") and k not in tensors:
                tensors[k] = v
        model.load_state_dict(tensors, strict=True)
        return model.eval()  # BatchNorm's running statistics, as the C library outside training

    def save(self, path):
        write_safetensors(path, {k: v for k, v in self.state_dict().items() if not k.endswith("num_batches_tracked")},
                          self.metadata())
