"""PyTorch's whole-image generator pass on a W x H photo (the 4K row of
`compare_pytorch`): the peer script's own Generator, timing and JSON, for a
non-square size its `g-fwd` command does not take.

    python peer_photo.py PEER_SCRIPT --width 3840 --height 2160 --threads 2 --runs 1
"""
import argparse
import importlib.util
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("peer_script")
    p.add_argument("--width", type=int, default=3840)
    p.add_argument("--height", type=int, default=2160)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    a = p.parse_args()
    spec = importlib.util.spec_from_file_location("animegan_torch", a.peer_script)
    peer = importlib.util.module_from_spec(spec)
    sys.modules["animegan_torch"] = peer
    spec.loader.exec_module(peer)
    torch = peer.torch
    peer.setup_threads(a.threads)
    torch.manual_seed(0)
    G = peer.Generator().eval()
    x = torch.rand(1, 3, a.height, a.width) * 2 - 1

    def run():
        with torch.inference_mode():
            G(x)

    r = peer.time_fn(run, a.warmup, a.runs)
    r.update(block=f"g_photo_{a.width}x{a.height}", width=a.width, height=a.height)
    peer.emit(r, None)


if __name__ == "__main__":
    main()
