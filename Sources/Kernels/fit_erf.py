"""Fits the rational erf of GELU.swift (`fastErf`) and measures its error in Float32.

erf(x) ~ x * P(x^2) / Q(x^2) on [0, 3.92], P and Q of degree 5 in x^2, Q(0) = 1: linearised least
squares x*P - erf*(Q - 1) = erf, reweighted by 1/Q of the previous iterate (Loeb's method). The fit is
then evaluated exactly as the Swift kernel does (Float32 Horner, clamp to +-3.92, result clamped to
+-1) against math.erf on [-6, 6]. Run once; its printed coefficients are pasted into GELU.swift.

    python3 Sources/Kernels/fit_erf.py     (numpy)
"""
from math import erf

import numpy as np

LIMIT, P_DEGREE, Q_DEGREE = 3.92, 5, 5


def fit(xs, f, iterations=30):
    t = xs ** 2
    q_previous = np.ones_like(xs)
    for _ in range(iterations):
        a = np.hstack([np.stack([xs * t ** k for k in range(P_DEGREE + 1)], 1),
                       -np.stack([f * t ** k for k in range(1, Q_DEGREE + 1)], 1)])
        solution, *_ = np.linalg.lstsq(a / q_previous[:, None], f / q_previous, rcond=None)
        p, q = solution[:P_DEGREE + 1], np.concatenate([[1.0], solution[P_DEGREE + 1:]])
        q_previous = np.polyval(q[::-1], t)
    return np.float32(p), np.float32(q)


def evaluate_float32(p, q, x):
    x = np.clip(x.astype(np.float32), -LIMIT, LIMIT)
    t = x * x
    num, den = p[-1], q[-1]
    for c in p[-2::-1]:
        num = num * t + c
    for c in q[-2::-1]:
        den = den * t + c
    return np.clip(x * num / den, -1, 1).astype(np.float32)


def main():
    xs = np.linspace(0, LIMIT, 20001)
    p, q = fit(xs, np.array([erf(v) for v in xs]))
    test = np.linspace(-6, 6, 400001).astype(np.float32)
    error = np.abs(evaluate_float32(p, q, test) - np.array([erf(float(v)) for v in test]))
    print("P (x^0 .. x^10):", [f"{c:.8e}" for c in p])
    print("Q (x^0 .. x^10):", [f"{c:.8e}" for c in q])
    print(f"max |error| {error.max():.2e} at x = {test[error.argmax()]:.5f}")


if __name__ == "__main__":
    main()
