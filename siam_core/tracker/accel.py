"""The GPU path's network options: reduced-precision autocast, CUDA graphs, ``torch.compile``.

``AcceleratedNet`` answers the three calls a ``SiamRPNTracker`` makes on its network
(``template``, ``features``, ``rpn_head.track``), as ``siam_core.deploy.runtime.OnnxNet`` does,
so the tracker logic stays one piece of code whatever runs the network:

* ``precision`` ``fp16``/``bf16`` runs the calls under ``torch.autocast`` (convolutions in
  that type, reductions in float32); outputs come back as float32, so decoding, penalty and
  window are the float32 code. On a CPU with bf16 units (AVX512-BF16, AMX) oneDNN runs the
  bf16 convolutions of the channels-last network on them: 2-3x float32's speed there (README
  "Reduced precision on the CPU"); on CPUs without them it is slower than float32.
* ``graph_mode`` ``cuda_graph`` captures the per-frame step (backbone/neck, then head) as CUDA
  graphs, one per input shape (batch, search size), on the first call with that shape, after
  ``init`` has made the kernels: a replay is one launch instead of one per layer. Inputs are
  copied into the graph's static buffers and outputs copied out, so a later replay never
  changes a tensor handed out before. CUDA only.
* ``graph_mode`` ``compile`` runs the same two calls through ``torch.compile`` (static shapes,
  one compilation per shape; any device with a working compiler).

A capture or compilation that fails warns once and leaves that call eager (``fallbacks`` says
why), so a tracker never stops over an optimisation. Attributes the tracker's variants reach
for beyond the three calls (the distractor-aware tracker's head internals) are the wrapped
network's, run eagerly.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from siam_core.deploy import GRAPH_MODES, PRECISIONS, check_precision

MAX_SHAPES = 8  # graphs/compilations per call; further shapes (rare: a DROL batch) run eagerly
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
Tensors = list[torch.Tensor]


def check_options(device: torch.device | str, precision: str, graph_mode: str) -> None:
    """ValueError naming the option when ``precision``/``graph_mode`` cannot run on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    check_precision("torch", precision)  # int8 is an exported graphs' precision
    if graph_mode not in GRAPH_MODES:
        raise ValueError(f"graph_mode must be one of {', '.join(GRAPH_MODES)}, got {graph_mode!r}")
    if graph_mode == "cuda_graph" and torch.device(device).type != "cuda":
        raise ValueError(f"graph_mode 'cuda_graph' needs a CUDA device, the tracker is on {device}")


class _CudaGraph:
    """One captured call: static inputs, the graph, static outputs."""

    def __init__(self, fn: Callable[..., Tensors], inputs: Sequence[torch.Tensor]) -> None:
        device = inputs[0].device
        self.inputs = [t.clone() for t in inputs]
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up off the default stream (PyTorch's recipe)
            for _ in range(2):
                fn(*self.inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = fn(*self.inputs)

    def __call__(self, *inputs: torch.Tensor) -> Tensors:
        for static, t in zip(self.inputs, inputs, strict=True):
            static.copy_(t)
        self.graph.replay()
        return [t.clone() for t in self.outputs]


class _Head:
    """``rpn_head`` of an ``AcceleratedNet``: ``track`` accelerated, the rest the network's."""

    def __init__(self, owner: AcceleratedNet) -> None:
        self._owner = owner

    def track(self, kernels: Tensors, feats: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        return self._owner.head(kernels, feats)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_owner":
            raise AttributeError(name)
        return getattr(self._owner.net.rpn_head, name)


class AcceleratedNet:
    """``net``'s tracker calls with ``precision`` autocast and ``graph_mode`` (module doc)."""

    def __init__(
        self,
        net: Any,
        device: torch.device | str,
        precision: str = "fp32",
        graph_mode: str = "eager",
    ) -> None:
        check_options(device, precision, graph_mode)
        self.net = net
        self.device = torch.device(device)
        self.precision = precision
        self.graph_mode = graph_mode
        self.rpn_head = _Head(self)
        self.fallbacks: list[str] = []
        self._fast: dict[tuple, Callable[..., Tensors] | None] = {}
        self._compiled: dict[str, Callable[..., Tensors]] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "net":
            raise AttributeError(name)
        return getattr(self.net, name)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        dtype = _DTYPES.get(self.precision)
        if dtype is None:
            yield
            return
        # no weight-cast cache: it must not outlive a CUDA graph capture
        with torch.autocast(self.device.type, dtype=dtype, cache_enabled=False):
            yield

    def _features(self, x: torch.Tensor) -> Tensors:
        with self._autocast():
            return [f.float() for f in self.net.features(x)]

    def _head(self, kernels: Sequence[torch.Tensor], feats: Sequence[torch.Tensor]) -> Tensors:
        with self._autocast():
            cls, loc = self.net.rpn_head.track(list(kernels), list(feats))
        return [cls.float(), loc.float()]

    def _head_of(self, num_kernels: int) -> Callable[..., Tensors]:
        """The head as a function of its tensors alone (kernels first), for capture/compile."""
        return lambda *tensors: self._head(tensors[:num_kernels], tensors[num_kernels:])

    def template(self, z: torch.Tensor) -> Tensors:
        with self._autocast():
            return [k.float() for k in self.net.template(z)]

    def features(self, x: torch.Tensor) -> Tensors:
        return self._run("features", self._features, [x])

    def head(self, kernels: Tensors, feats: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        nk = len(kernels)
        cls, loc = self._run(f"head{nk}", self._head_of(nk), [*kernels, *feats])
        return cls, loc

    def _run(self, name: str, eager: Callable[..., Tensors], inputs: Tensors) -> Tensors:
        if self.graph_mode == "eager":
            return eager(*inputs)
        key = (name, *((tuple(t.shape), t.dtype, t.stride()) for t in inputs))
        if key not in self._fast:
            room = len(self._fast) < MAX_SHAPES
            self._fast[key] = self._build(name, eager, inputs) if room else None
        fast = self._fast[key]
        if fast is None:
            return eager(*inputs)
        return fast(*inputs)

    def _build(
        self, name: str, eager: Callable[..., Tensors], inputs: Tensors
    ) -> Callable[..., Tensors] | None:
        """The captured/compiled call for these input shapes, run once; None (eager) if it
        fails, with a warning that names the reason."""
        try:
            if self.graph_mode == "cuda_graph":
                fast: Callable[..., Tensors] = _CudaGraph(eager, inputs)
            else:
                if name not in self._compiled:
                    self._compiled[name] = torch.compile(eager, dynamic=False)
                fast = self._compiled[name]
            fast(*inputs)  # compiles (or checks the replay) now, inside the try
        except Exception as exc:  # any failure means: run eagerly
            why = f"{self.graph_mode} of {name} failed ({type(exc).__name__}: {exc}); eager"
            self.fallbacks.append(why)
            warnings.warn(why, RuntimeWarning, stacklevel=3)
            return None
        return fast
