"""PyTorch peer of `cbrnn bench --items cbonly`: the seed's CBRNN with the
cortex frozen (requires_grad False, run under no_grad), training fc1/fc2
with Adam on MSE. See seed_torch_cbrnn.py."""
from seed_torch_cbrnn import run_training


def run(args):
    return run_training(args, "cbonly", freeze_cortex=True)
