"""PyTorch peer of `cbrnn bench --items bptt`: warm-up training of the seed's
CBRNN (nn.RNN + fc1/fc2, Adam, MSE, batch_first). See seed_torch_cbrnn.py."""
from seed_torch_cbrnn import run_training


def run(args):
    return run_training(args, "bptt", freeze_cortex=False)
