# The rnn_graph workload in PyTorch eager: forward through a data-dependent while, autograd backward.
import sys, time
import torch
torch.set_num_threads(2)
T, B, D, H = 100, 32, 32, 128


def det(shape, a, b):
    n = 1
    for s in shape:
        n *= s
    return torch.sin(torch.arange(n, dtype=torch.float32) * a + b).reshape(shape)


xs = det((T, B, D), 0.01, 0.3)
w = det((D, H), 0.37, 1.0) * 0.2
u = det((H, H), 0.113, 2.0) * 0.1


def step(w, u, xs, length):
    w = w.detach().requires_grad_()
    u = u.detach().requires_grad_()
    h = torch.zeros(xs.shape[1], u.shape[0])
    i = 0
    while i < length:
        h = torch.tanh(xs[i] @ w + h @ u)
        i += 1
    loss = (h * h).mean()
    gw, gu = torch.autograd.grad(loss, [w, u])
    return loss.detach(), gw, gu


for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    loss, gw, gu = step(w, u, xs, torch.tensor(T))
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {loss.item()} {gw.abs().sum().item()} {gu.abs().sum().item()}")
