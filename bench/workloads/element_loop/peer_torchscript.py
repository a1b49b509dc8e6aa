# The element loop (if x[i] > 0.5 { x[i] *= 2 } else { x[i] += 1 }) compiled with torch.jit.script;
# the size is 100 000, or the second argument (bench/run's `size` file).
import sys, time
import torch
torch.set_num_threads(2)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000


@torch.jit.script
def step(x):
    for i in range(x.shape[0]):
        if bool(x[i] > 0.5):
            x[i] *= 2.0
        else:
            x[i] += 1.0
    return x


step(torch.rand(16))  # the profiling executor optimizes at the 2nd call
for _ in range(int(sys.argv[1])):
    torch.manual_seed(0)
    x = torch.rand(n)
    t0 = time.perf_counter()
    x = step(x)
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {x.sum().item()}")
