#!/usr/bin/env python3
"""Calls an exported digits model from Python through the C API (ctypes, no TDL module):
    python3 examples/serving/predict.py build/libtdl_model.so digits.tdlm IMAGES.npy
prints {"classes": [...], "probs": [[...], ...]} as JSON (IMAGES: f32[N, 64])."""
import ctypes
import json
import sys

import numpy as np


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("shape", ctypes.POINTER(ctypes.c_int64))]


DTYPES = {0: np.bool_, 1: np.int32, 2: np.int64, 3: np.float32, 4: np.float64}


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.tdl_model_load.restype = ctypes.c_void_p
    lib.tdl_model_load.argtypes = [ctypes.c_char_p]
    lib.tdl_model_last_error.restype = ctypes.c_char_p
    lib.tdl_model_num_outputs.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.tdl_model_output_name.restype = ctypes.c_char_p
    lib.tdl_model_output_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32]
    lib.tdl_model_call.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(Tensor), ctypes.c_int32,
                                   ctypes.POINTER(Tensor), ctypes.c_int32]
    lib.tdl_model_free_tensor.argtypes = [ctypes.POINTER(Tensor)]
    lib.tdl_model_free.argtypes = [ctypes.c_void_p]

    model = lib.tdl_model_load(sys.argv[2].encode())
    if not model:
        sys.exit("error: " + lib.tdl_model_last_error().decode())
    x = np.ascontiguousarray(np.load(sys.argv[3]), dtype=np.float32)
    shape = (ctypes.c_int64 * 2)(*x.shape)
    arg = Tensor(x.ctypes.data, 3, 2, shape)
    n = lib.tdl_model_num_outputs(model, b"predict")
    outs = (Tensor * n)()
    if lib.tdl_model_call(model, b"predict", ctypes.byref(arg), 1, outs, n) != 0:
        sys.exit("error: " + lib.tdl_model_last_error().decode())
    result = {}
    for k in range(n):
        t = outs[k]
        dims = [t.shape[d] for d in range(t.rank)]
        dt = np.dtype(DTYPES[t.dtype])
        count = int(np.prod(dims)) if dims else 1
        buf = ctypes.string_at(t.data, count * dt.itemsize)
        result[lib.tdl_model_output_name(model, b"predict", k).decode()] = (
            np.frombuffer(buf, dtype=dt).reshape(dims).tolist())
        lib.tdl_model_free_tensor(ctypes.byref(t))
    lib.tdl_model_free(model)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
