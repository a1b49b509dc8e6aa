# One Adam step of the digits CNN, PyTorch eager (NCHW, its own layers).
import sys, time
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
x = ((torch.arange(64 * 64) % 17).float() / 16.0).reshape(64, 1, 8, 8)
y = torch.arange(64) % 10
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {loss.item()}")
