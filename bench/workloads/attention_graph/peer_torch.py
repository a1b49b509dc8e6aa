# Masked (causal) softmax attention, q, k, v of [8, 8, 256, 64] f32, PyTorch eager.
import sys, time
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
q, k, v = (torch.randn(8, 8, 256, 64) for _ in range(3))
mask = torch.arange(256)[:, None] >= torch.arange(256)[None, :]
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    s = q @ k.transpose(-1, -2) / 8.0
    o = torch.softmax(torch.where(mask, s, torch.tensor(-1e9)), dim=-1) @ v
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {(o * o).sum().item()}")
