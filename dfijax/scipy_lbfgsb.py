"""scipy's L-BFGS-B on one problem, with a compiled objective: the official DFI code's solver itself.

The official code (deepmodels.py dfi_reconstruct) calls `scipy.optimize.minimize(method='L-BFGS-B')` on
its Caffe input, BGR 0-255 minus the mean, boxed in (−128, 162), with options `{'maxiter', 'iprint'}`
and scipy's other defaults (maxcor 10, factr 1e7, pgtol 1e-5). L-BFGS-B is not invariant to the
variables' scale: its first trial step, with every variable boxed, is the projected gradient step
x − ∇f (lbfgsb `lnsrlb`), so the same problem in [0, 1] pixels steps elsewhere. `minimize` therefore
solves on x·units (255 for the Caffe scale; the mean shift and channel order change nothing), one
problem at a time with one host round trip per evaluation, as the reference does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.optimize

# value_and_grad(x) -> (f, ∇f) for x [...] in the caller's units (float32 is enough: Caffe computes in it)
ValueAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


class Solution(NamedTuple):
    """x: the last iterate (the caller's units); history: [maxiter + 1] f at x0 and after each iteration
    (NaN after a stop); num_iters: iterations run; value: f(x); message: scipy's reason for stopping."""

    x: np.ndarray
    history: np.ndarray
    num_iters: int
    value: float
    message: str


def minimize(
    value_and_grad: ValueAndGrad,
    x0: np.ndarray,
    *,
    maxiter: int,
    history_size: int = 10,
    ftol: float = 1e7 * np.finfo(np.float64).eps,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    units: float = 1.0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
) -> Solution:
    """Minimise f from x0 with scipy's L-BFGS-B on the variable u = x·units.

    bounds: (low, high), each broadcastable to x0's shape, in x's units. ftol: scipy's `ftol` (factr·eps;
    its default is the official code's). callback(k, x, f) after iteration k with the iterate in x's units.
    """
    shape = np.shape(x0)
    u0 = np.asarray(x0, np.float64).ravel() * units
    history = np.full(maxiter + 1, np.nan)

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = value_and_grad((u / units).reshape(shape))
        f = float(f)
        if np.isnan(history[0]):
            history[0] = f  # the first evaluation is at u0
        return f, np.asarray(g, np.float64).ravel() / units

    box = None
    if bounds is not None:
        lo, hi = (np.broadcast_to(np.asarray(b, np.float64), shape).ravel() * units for b in bounds)
        box = scipy.optimize.Bounds(lo, hi)
        u0 = np.clip(u0, lo, hi)
    k = 0

    def step(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        nonlocal k
        k += 1
        if k <= maxiter:
            history[k] = intermediate_result.fun
        if callback is not None:
            callback(k, (intermediate_result.x / units).reshape(shape), float(intermediate_result.fun))

    r = scipy.optimize.minimize(
        fun,
        u0,
        jac=True,
        method="L-BFGS-B",
        bounds=box,
        callback=step,
        options={"maxiter": maxiter, "maxcor": history_size, "ftol": ftol},
    )
    return Solution((r.x / units).reshape(shape), history, int(r.nit), float(r.fun), str(r.message))
