# nn.softmax + cross-entropy over a [4096, 1000] f32 batch, compiled with torch.jit.script.
import sys, time
from typing import Tuple
import torch
torch.set_num_threads(2)


@torch.jit.script
def loss(logits, labels) -> Tuple[torch.Tensor, torch.Tensor]:
    p = torch.softmax(logits, dim=-1)
    ce = -(labels * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
    return p, ce


torch.manual_seed(0)
logits = torch.randn(4096, 1000)
labels = torch.nn.functional.one_hot(torch.randint(0, 1000, (4096,)), 1000).float()
loss(logits, labels)  # the profiling executor optimizes at the 2nd call
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    p, ce = loss(logits, labels)
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {ce.item()}")
