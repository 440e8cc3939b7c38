"""Gauss-Newton / conjugate-gradient solver for DROL's L2 objective (spec §6.9.1).

The objective is ``‖r(w)‖²`` with residuals ``r = [sqrt(γ_j)(f(x_j; w) − y_j), sqrt(λ_k) w_k]``.
Each Gauss-Newton step linearises ``r`` and solves ``JᵀJ Δ = −Jᵀr`` with a few CG iterations;
``JᵀJ p`` is formed by double back-propagation (differentiate ``Jᵀg`` with respect to ``g`` to
get ``J p``, then back-propagate it), so no Jacobian is ever stored.

Facts from DROL's ``pysot/tracker/classifier/libs/optimization.py`` (ATOM's optimiser), which
the parity reference depends on: the joint (projection + filter) solve uses Fletcher-Reeves and
the filter-only updates Polak-Ribière; with no forgetting rate the CG state is reset at every
call; β is clamped at 0; α = ρ / pᵀq; the residual is not updated after the last iteration.
Inner products of the parameter blocks are computed as a ``conv2d`` of the two blocks (a single
sum over all their elements), every block of a variable sharing one scalar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Tensors = list[torch.Tensor]


class Cancelled(Exception):
    """Raised inside a solve whose ``L2Problem.stop`` turned true (the owner is shutting down
    or re-initialising): the variables keep the last completed Gauss-Newton step's values."""


def block_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ a·b over all elements, as DROL computes it (``conv2d`` of the two 4-d blocks)."""
    if a.dim() == 4 and a.shape[0] == 1:
        return F.conv2d(a, b).view(-1)
    return F.conv2d(a.reshape(1, -1, 1, 1), b.reshape(1, -1, 1, 1)).view(-1)


def joint_dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Inner product of two variables: the filter's term first, then each further block."""
    out = block_dot(a[0], b[0])
    for x, y in zip(a[1:], b[1:], strict=True):
        out = out + block_dot(x, y)
    return out


class L2Problem:
    """A residual function plus its CG preconditioner (``precondition`` divides each block
    by its regulariser for the joint problem, DROL ``FactorizedConvProblem.M1``). ``stop``,
    asked before every CG iteration, ends a long solve early with :class:`Cancelled`, so a
    worker thread never holds up shutdown or a new target for a whole first-frame training."""

    def __init__(
        self,
        residuals: Callable[[Tensors], Tensors],
        precondition: Sequence[float] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.residuals = residuals
        self.diag = None if precondition is None else list(precondition)
        self.stop = stop

    def apply_preconditioner(self, x: Tensors) -> Tensors:
        if self.diag is None:
            return x
        return [t / d for t, d in zip(x, self.diag, strict=True)]


def _cg(
    apply_a: Callable[[Tensors], Tensors],
    b: Tensors,
    problem: L2Problem,
    num_iter: int,
    fletcher_reeves: bool,
) -> Tensors | None:
    """Preconditioned CG from x = 0 (DROL ``ConjugateGradientBase.run_CG``)."""
    x: Tensors | None = None
    p: Tensors | None = None
    rho = torch.ones(1)
    r_prev: Tensors | None = None
    r = [t.clone() for t in b]
    for ii in range(num_iter):
        if problem.stop is not None and problem.stop():
            raise Cancelled
        z = problem.apply_preconditioner(r)
        rho1 = rho
        rho = joint_dot(r, z)
        if bool((rho.abs() <= 0.0).any()):
            return x
        if p is None:
            p = [t.clone() for t in z]
        else:
            if fletcher_reeves:
                beta = rho / rho1
            else:
                assert r_prev is not None
                beta = (rho - joint_dot(r_prev, z)) / rho1
            beta = beta.clamp(0)
            p = [zi + pi * beta for zi, pi in zip(z, p, strict=True)]
        q = apply_a(p)
        alpha = rho / joint_dot(p, q)
        if not fletcher_reeves:
            r_prev = [t.clone() for t in r]
        if x is None:
            x = [pi * alpha for pi in p]
        else:
            for xi, pi in zip(x, p, strict=True):
                xi += pi * alpha
        if ii < num_iter - 1:
            for ri, qi in zip(r, q, strict=True):
                ri -= qi * alpha
    return x


def gauss_newton_step(
    problem: L2Problem, variable: Tensors, num_cg_iter: int, fletcher_reeves: bool
) -> None:
    """One linearisation of the residuals and ``num_cg_iter`` CG steps; ``variable``'s tensors
    are updated in place (DROL ``GaussNewtonCG.run_GN_iter`` / ``ConjugateGradient.run``)."""
    if num_cg_iter <= 0:
        return
    try:
        with torch.enable_grad():
            for v in variable:
                v.requires_grad_(True)
            f0 = problem.residuals(variable)
            g = [t.detach().requires_grad_(True) for t in f0]
            dfdxt_g = torch.autograd.grad(f0, variable, g, create_graph=True)
            b = [-t.detach() for t in dfdxt_g]

            def apply_a(p: Tensors) -> Tensors:
                jp = torch.autograd.grad(dfdxt_g, g, grad_outputs=p, retain_graph=True)
                return list(torch.autograd.grad(f0, variable, jp, retain_graph=True))

            delta = _cg(apply_a, b, problem, num_cg_iter, fletcher_reeves)
    finally:
        for v in variable:
            v.detach_()
            v.requires_grad_(False)
    with torch.no_grad():
        if delta is not None:
            for v, d in zip(variable, delta, strict=True):
                v += d


def gauss_newton(
    problem: L2Problem,
    variable: Tensors,
    num_cg_iter: int,
    num_gn_iter: int,
    fletcher_reeves: bool = True,
) -> None:
    """``num_gn_iter`` Gauss-Newton steps of ``num_cg_iter`` CG iterations each."""
    for _ in range(num_gn_iter):
        gauss_newton_step(problem, variable, num_cg_iter, fletcher_reeves)
