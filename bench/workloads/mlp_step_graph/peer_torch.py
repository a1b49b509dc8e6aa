# One SGD step of a 784-256-10 MLP (ReLU, softmax cross-entropy), batch 128, f32, PyTorch eager.
import sys, time
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
x = torch.randn(128, 784)
y = torch.nn.functional.one_hot(torch.randint(0, 10, (128,)), 10).float()
params = {"w1": (torch.randn(784, 256) * 0.05).requires_grad_(), "b1": torch.zeros(256, requires_grad=True),
          "w2": (torch.randn(256, 10) * 0.05).requires_grad_(), "b2": torch.zeros(10, requires_grad=True)}
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    h = torch.relu(x @ params["w1"] + params["b1"])
    loss = -(y * torch.log_softmax(h @ params["w2"] + params["b2"], dim=-1)).sum(-1).mean()
    grads = torch.autograd.grad(loss, list(params.values()))
    with torch.no_grad():
        params = {k: (p - 0.01 * g).requires_grad_() for (k, p), g in zip(params.items(), grads)}
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {loss.item()}")
