"""PyTorch peer of `cbrnn bench --items infer`: the seed's CBRNN stepping
one frame at batch 1 under no_grad (cortex step carrying the hidden state,
cerebellum forward, the previous prediction scored), no learning. See
peer_online.py."""
from peer_online import run_stream


def run(args):
    return run_stream(args, "infer", False)
