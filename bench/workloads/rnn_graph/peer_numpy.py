# The rnn_graph workload in NumPy, with the backward pass written by hand (BPTT).
import sys, time
import numpy as np
T, B, D, H = 100, 32, 32, 128


def det(shape, a, b):
    n = int(np.prod(shape))
    return np.sin(np.arange(n, dtype=np.float32) * np.float32(a) + np.float32(b)).reshape(shape)


xs = det((T, B, D), 0.01, 0.3)
w = det((D, H), 0.37, 1.0) * np.float32(0.2)
u = det((H, H), 0.113, 2.0) * np.float32(0.1)


def step(w, u, xs, length):
    hs = [np.zeros((xs.shape[1], u.shape[0]), np.float32)]
    i = 0
    while i < length:  # forward, keeping every state
        hs.append(np.tanh(xs[i] @ w + hs[-1] @ u))
        i += 1
    h = hs[-1]
    loss = (h * h).mean()
    dh = h * np.float32(2.0 / h.size)
    gw, gu = np.zeros_like(w), np.zeros_like(u)
    for i in range(length - 1, -1, -1):  # backward through time
        da = dh * (np.float32(1) - hs[i + 1] * hs[i + 1])
        gw += xs[i].T @ da
        gu += hs[i].T @ da
        dh = da @ u.T
    return loss, gw, gu


for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    loss, gw, gu = step(w, u, xs, T)
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {loss} {np.abs(gw).sum()} {np.abs(gu).sum()}")
