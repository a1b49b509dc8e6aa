# conv2d forward + backward, x [64, 28, 28, 32], w [3, 3, 32, 64] "same", PyTorch eager
# (its own NCHW layout, as a PyTorch user writes it: the NHWC data permuted once, untimed).
import sys, time
import torch
torch.set_num_threads(2)
x = ((torch.arange(64 * 28 * 28 * 32) % 7).float() * 0.25 - 0.75).reshape(64, 28, 28, 32).permute(0, 3, 1, 2).contiguous()
w = ((torch.arange(3 * 3 * 32 * 64) % 5).float() * 0.1 - 0.2).reshape(3, 3, 32, 64).permute(3, 2, 0, 1).contiguous()
g = ((torch.arange(64 * 28 * 28 * 64) % 3).float() - 1.0).reshape(64, 28, 28, 64).permute(0, 3, 1, 2).contiguous()
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    xr = x.detach().requires_grad_()
    wr = w.detach().requires_grad_()
    y = torch.nn.functional.conv2d(xr, wr, padding=1)
    (y * g).sum().backward()
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {y[1, 4, 2, 3].item()} {xr.grad[5, 8, 6, 7].item()} {wr.grad[10, 9, 1, 1].item()}")
