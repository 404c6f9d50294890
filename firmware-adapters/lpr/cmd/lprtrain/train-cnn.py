#!/usr/bin/python3
"""Trains the plate reader's convolutional glyph classifier (lpr.convNet).

    lprtrain -samples DIR/samples ...     # also writes DIR/samples.1, DIR/samples.2
    train-cnn.py -out checker.bin DIR/samples.1 DIR/samples.2

make lpr-model runs both as the committed model and checker were made. The
checker is the recognizer's second opinion on each character it read
(Recognizer.agreement); it is not the reader.

The samples are lprtrain's: per glyph its class (one byte: the index in
lpr.Classes, 36 for "not a character") and lpr.GlyphFeatures float32 features
(the 24x16 pixels, the aspect ratio, the relative width, the edge directions).
The network sees the pixels through three 3x3 convolutions (ReLU, 2x2 max
pooling after the first two); its hidden layer sees their output and the
first -extra features after the pixels. It is written in the form lpr.decodeConvNet reads
("LPRC1", six little-endian uint32 shapes, float32 weights with the
convolutions as [ky][kx][in][out] and the hidden layer's inputs in the order
forward keeps them: pixel by pixel, channels together).

It needs PyTorch: Debian's python3-torch, run with Debian's /usr/bin/python3.
Everything random is drawn from -seed; on one machine with the same PyTorch
the same samples give the same model.
"""
import argparse
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

GLYPH_W, GLYPH_H = 16, 24
PIXELS = GLYPH_W * GLYPH_H
FEATURES = 626  # lpr.GlyphFeatures
CLASSES = 37  # lpr.Classes and Reject


class Net(nn.Module):
    def __init__(self, c1, c2, c3, hidden, extra):
        super().__init__()
        self.extra = extra
        self.c1 = nn.Conv2d(1, c1, 3, padding=1)
        self.c2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.c3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.f1 = nn.Linear(c3 * (GLYPH_H // 4) * (GLYPH_W // 4) + extra, hidden)
        self.f2 = nn.Linear(hidden, CLASSES)

    def forward(self, x):
        h = x[:, :PIXELS].view(-1, 1, GLYPH_H, GLYPH_W)
        h = F.max_pool2d(F.relu(self.c1(h)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        h = F.relu(self.c3(h))
        h = torch.cat([h.flatten(1), x[:, PIXELS:PIXELS + self.extra]], 1)
        return self.f2(F.relu(self.f1(h)))


def load(paths):
    # About three times the files' size in memory at the peak (7 GB for
    # make lpr-model's 2.4 GB).
    rec = np.dtype([("c", "u1"), ("x", "<f4", FEATURES)])
    xs, cs = [], []
    for p in paths:
        a = np.fromfile(p, dtype=rec)
        xs.append(torch.from_numpy(a["x"].copy()))
        cs.append(torch.from_numpy(a["c"].astype(np.int64)))
    return torch.cat(xs), torch.cat(cs)


def train(x, c, args):
    torch.manual_seed(args.seed)
    net = Net(args.c1, args.c2, args.c3, args.hidden, args.extra)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-5)
    batch = 256
    steps = args.epochs * ((len(c) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for ep in range(args.epochs):
        t0, correct = time.time(), 0
        order = torch.randperm(len(c))
        for i in range(0, len(c), batch):
            idx = order[i:i + batch]
            out = net(x[idx])
            loss = F.cross_entropy(out, c[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            correct += (out.argmax(1) == c[idx]).sum().item()
        print(f"epoch {ep + 1}: training accuracy {correct / len(c):.4f} ({time.time() - t0:.0f} s)", flush=True)
    return net


def encode(net):
    sd = {k: v.detach() for k, v in net.state_dict().items()}
    c1, c2, c3 = (sd[k + ".weight"].shape[0] for k in ("c1", "c2", "c3"))
    hidden = sd["f1.weight"].shape[0]
    flat = c3 * (GLYPH_H // 4) * (GLYPH_W // 4)
    out = b"LPRC1" + struct.pack("<6I", c1, c2, c3, hidden, CLASSES, net.extra)

    def put(t):
        return np.ascontiguousarray(t.numpy().astype("<f4")).tobytes()

    for k in ("c1", "c2", "c3"):
        # [out][in][ky][kx] -> [ky][kx][in][out]
        out += put(sd[k + ".weight"].permute(2, 3, 1, 0)) + put(sd[k + ".bias"])
    w1 = sd["f1.weight"]
    # PyTorch flattens channel by channel; forward keeps the channels of a
    # pixel together.
    conv = w1[:, :flat].reshape(hidden, c3, GLYPH_H // 4, GLYPH_W // 4).permute(0, 2, 3, 1).reshape(hidden, flat)
    out += put(torch.cat([conv, w1[:, flat:]], 1)) + put(sd["f1.bias"])
    out += put(sd["f2.weight"]) + put(sd["f2.bias"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", nargs="+", help="files lprtrain -samples wrote")
    ap.add_argument("-out", required=True, help="where to write the network")
    ap.add_argument("-seed", type=int, default=1)
    ap.add_argument("-epochs", type=int, default=8)
    ap.add_argument("-c1", type=int, default=8)
    ap.add_argument("-c2", type=int, default=16)
    ap.add_argument("-c3", type=int, default=32)
    ap.add_argument("-hidden", type=int, default=96)
    ap.add_argument("-extra", type=int, default=2,
                    help="features after the pixels the hidden layer sees: 2, the aspect ratio and the relative "
                         "width (the committed checker); up to 242, with the edge directions")
    ap.add_argument("-threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, c = load(args.samples)
    print(f"{len(c)} samples", flush=True)
    net = train(x, c, args)
    with open(args.out, "wb") as f:
        f.write(encode(net))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
