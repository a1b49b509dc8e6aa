# One SGD step of a 784-256-10 MLP (ReLU, softmax cross-entropy), batch 128, f32: the whole
# step (forward, torch.autograd.grad, update) compiled with torch.jit.script.
import sys, time
from typing import List, Tuple
import torch
torch.set_num_threads(2)


@torch.jit.script
def step(params: List[torch.Tensor], x, y) -> Tuple[List[torch.Tensor], torch.Tensor]:
    ps = [p.detach().requires_grad_() for p in params]
    h = torch.relu(x @ ps[0] + ps[1])
    loss = -(y * torch.log_softmax(h @ ps[2] + ps[3], dim=-1)).sum(-1).mean()
    grads = torch.autograd.grad([loss], ps)
    out: List[torch.Tensor] = []
    for p, g in zip(ps, grads):
        assert g is not None
        out.append(p.detach() - 0.01 * g)
    return out, loss.detach()


torch.manual_seed(0)
x = torch.randn(128, 784)
y = torch.nn.functional.one_hot(torch.randint(0, 10, (128,)), 10).float()
params = [torch.randn(784, 256) * 0.05, torch.zeros(256), torch.randn(256, 10) * 0.05, torch.zeros(10)]
step(params, x, y)  # the profiling executor optimizes at the 2nd call
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    params, loss = step(params, x, y)
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {loss.item()}")
