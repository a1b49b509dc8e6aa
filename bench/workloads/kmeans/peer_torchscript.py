# The kmeans workload in TorchScript: the whole loop compiled with torch.jit.script.
import sys, time
from typing import Tuple
import torch
torch.set_num_threads(2)


def points(n):
    i = torch.arange(n, dtype=torch.int64)
    h1 = (i * i * 7919 + i * 104729 + 12345) % 1000003
    h2 = (i * i * 6151 + i * 15485863 + 777) % 1000033
    h3 = (i * 2654435761 % 4294967296) // 536870912
    cx = (h3 % 4).float() * 4.0
    cy = torch.div(h3, 4, rounding_mode="floor").float() * 4.0
    dx = h1.float() / 1000003.0 * 3.0 - 1.5
    dy = h2.float() / 1000033.0 * 3.0 - 1.5
    return torch.stack([cx + dx, cy + dy], dim=1)


@torch.jit.script
def kmeans(x, init, tol: float) -> Tuple[torch.Tensor, int]:
    c = init
    moved = tol + 1.0
    steps = 0
    while moved > tol and steps < 500:
        d = ((x.unsqueeze(1) - c.unsqueeze(0)) ** 2).sum(dim=2)
        assign = torch.nn.functional.one_hot(d.argmin(dim=1), c.shape[0]).float()
        counts = assign.sum(dim=0)
        nxt = (assign.t() @ x) / torch.clamp(counts, min=1.0).unsqueeze(1)
        moved = float((nxt - c).abs().max())
        c = nxt
        steps += 1
    return c, steps


x = points(100000)
kmeans(x, x[16:24], 1e-4)  # the profiling executor optimizes at the 2nd call
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    c, steps = kmeans(x, x[16:24], 1e-4)
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {steps} {c[:, 0].sum().item()} {c[:, 1].sum().item()}")
