"""tests/torch_check.py - the live PyTorch half of tests/test_safetensors.sh (issue #27); run
with Debian's /usr/bin/python3 (python3-torch).
    torch_check.py MODEL.safetensors REF.safetensors TOL
loads MODEL (written by `hephaestus export --format safetensors`) into the nn.Module of
tools/hephaestus_torch.py with load_state_dict(strict=True), runs REF's x through the encoder
and REF's z through the decoder, and prints the largest |difference| to the C model's mu,
logvar and decoder output stored in REF (tests/st_helper ref). Exit 1 above TOL."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import hephaestus_torch as ht  # noqa: E402


def main():
    model_path, ref_path, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
    torch.set_num_threads(1)
    model = ht.HephVAE.load(model_path)
    ref, _ = ht.read_safetensors(ref_path)
    with torch.no_grad():
        mu, logvar = model.encode(ref["x"])
        dec = model.decode(ref["z"])
    d = [(mu - ref["mu"]).abs().max().item(), (logvar - ref["logvar"]).abs().max().item(),
         (dec - ref["dec"].reshape(dec.shape)).abs().max().item()]
    print("torch %s: max |mu diff| %.3g, |logvar diff| %.3g, |decoder output diff| %.3g"
          % (torch.__version__, d[0], d[1], d[2]))
    sys.exit(0 if all(v <= tol for v in d) else 1)


if __name__ == "__main__":
    main()
