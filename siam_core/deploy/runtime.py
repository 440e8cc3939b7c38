"""Inference runtimes for exported graphs, shaped like the PyTorch network the tracker calls.

``OnnxNet`` answers ``template(z)``, ``features(x)`` and ``rpn_head.track(kernels, feats)`` with
torch tensors in and out, exactly the three calls ``SiamRPNTracker`` makes on its network. So
the tracker's crop, decoding, penalty, window and smoothing stay one piece of code whatever runs
the network; only the network call differs. Runtimes: ONNX Runtime (CPU execution provider; with
``device="cuda"`` its CUDA execution provider), ONNX Runtime's TensorRT execution provider
(``tensorrt``: CUDA only, engines cached beside the graphs; needs onnxruntime-gpu and TensorRT)
and OpenVINO (CPU plugin, float32 inference precision so boxes match PyTorch's). Inputs and
outputs pass through host memory (NumPy) whatever the provider.

Reduced precision (``precision``): ``int8`` runs an export's statically quantised graphs
(``siam_core.deploy.quantize``; ONNX Runtime's QDQ kernels use AVX512-VNNI/AMX, OpenVINO folds
the same QDQ pairs into its int8 layers), ``bf16`` sets OpenVINO's inference precision hint
(its CPU plugin then runs on bf16 units: AVX512-BF16, AMX) and ``fp16`` lets TensorRT pick
half-precision kernels. ``siam_core.deploy.BACKEND_PRECISIONS`` says which backend takes which.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siam_core.deploy import BACKENDS, CPU_ONLY_BACKENDS, check_precision
from siam_core.deploy.export import head_file, read_manifest, search_file

__all__ = ["BACKENDS", "OnnxNet"]


# int8 x int8 -> int32 dot-product instructions: x86 VNNI (AVX-512 or AVX) and AMX, Arm's dot
# product extension. The /proc/cpuinfo flag names are the Linux kernel's.
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


@functools.cache
def _machine_cpuinfo() -> str:
    """This machine's /proc/cpuinfo, read once ("" where there is none)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def int8_dot_product(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has an int8 dot-product instruction (``INT8_DOT_FLAGS``; ``cpuinfo``:
    a /proc/cpuinfo text, else this machine's; False where none can be read).

    Without one (x86 with AVX2 alone) int8 kernels sum u8 x s8 products in int16 pairs
    (``vpmaddubsw``), which saturates: on such a CPU (AMD EPYC, family 25) the default model's
    int8 boxes were 8-14 px from fp32's per frame against about 1 px with VNNI, and the node's
    default configuration lost 0.04 success AUC on the test sequences (README "The default
    runtime: `auto`"), so such a CPU runs graphs with 7-bit weights
    (``quantize.weight_bits_for_cpu``)."""
    if cpuinfo is None:
        cpuinfo = _machine_cpuinfo()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.partition(":")[2].split())
    return bool(flags & INT8_DOT_FLAGS)


def _missing(package: str, backend: str) -> RuntimeError:
    return RuntimeError(
        f"backend '{backend}' needs the Python package '{package}' (pip install {package}; "
        "`make setup` installs it)"
    )


def ort_providers(provider: str, device: str, path: Path, fp16: bool = False) -> list:
    """ONNX Runtime execution providers, in order of preference, for a backend and device:
    CPU; CUDA (``onnxruntime`` on ``cuda[:N]``); TensorRT then CUDA (``tensorrt``, engines
    cached in ``<export>/trt_cache``, fp16 kernels allowed with ``fp16``). The CPU provider
    comes last so an operator a GPU provider lacks still runs."""
    dev = torch.device(device)
    if provider == "onnxruntime" and dev.type == "cpu":
        return ["CPUExecutionProvider"]
    if dev.type != "cuda":
        raise ValueError(f"backend '{provider}' runs on CUDA, got device {device!r}")
    index = dev.index or 0
    cuda = ("CUDAExecutionProvider", {"device_id": index})
    if provider == "onnxruntime":
        return [cuda, "CPUExecutionProvider"]
    cache = path.parent / "trt_cache"
    trt = {
        "device_id": index,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_fp16_enable": fp16,
    }
    return [("TensorrtExecutionProvider", trt), cuda, "CPUExecutionProvider"]


class _OrtGraph:
    def __init__(
        self,
        path: Path,
        threads: int,
        provider: str = "onnxruntime",
        device: str = "cpu",
        fp16: bool = False,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise _missing("onnxruntime", provider) from exc
        providers = ort_providers(provider, device, path, fp16)
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in ort.get_available_providers():
            raise RuntimeError(
                f"backend '{provider}' on {device} needs ONNX Runtime's {wanted}, which this "
                f"onnxruntime lacks (it has {ort.get_available_providers()}); install "
                "onnxruntime-gpu (and TensorRT for the tensorrt backend)"
            )
        if wanted == "TensorrtExecutionProvider":
            (path.parent / "trt_cache").mkdir(exist_ok=True)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        # no spinning between calls: the tracker shares its cores with the camera and the node
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        if wanted not in self.session.get_providers():  # listed, but its libraries failed
            raise RuntimeError(
                f"backend '{provider}': ONNX Runtime could not start its {wanted} (libraries "
                f"missing? the session fell back to {self.session.get_providers()})"
            )
        self.inputs = [i.name for i in self.session.get_inputs()]

    def threads(self) -> int:
        """The session's intra-op thread count (0: ONNX Runtime's default, one per core)."""
        return int(self.session.get_session_options().intra_op_num_threads)

    def __call__(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self.inputs, arrays, strict=True)))


class _OvGraph:
    def __init__(self, path: Path, threads: int, bf16: bool = False) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise _missing("openvino", "openvino") from exc
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            # explicit either way: CPUs with bf16/fp16 units would otherwise pick reduced
            # precision by default; an int8 graph's quantised layers run int8 under either
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        }
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        # an infer request serves one thread at a time: the frame path and DROL's training
        # worker each get their own (the compiled model is shared, and thread-safe)
        self._local = threading.local()
        self.num_outputs = len(self.compiled.outputs)

    def threads(self) -> int:
        """The thread count the compiled model runs with."""
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    def __call__(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer(arrays)
        # copies: the request's output buffers are reused by the next call
        return [np.array(result[self.compiled.output(i)]) for i in range(self.num_outputs)]


class _OnnxHead:
    """``rpn_head.track(kernels, feats)`` over the per-batch-size head graphs."""

    def __init__(self, owner: OnnxNet) -> None:
        self._owner = owner
        self.anchor_num = owner.anchor_num

    def track(
        self, kernels: list[torch.Tensor], feats: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cls, loc = self._owner.run_head([*kernels, *feats])
        return cls, loc


class OnnxNet:
    """The exported graphs of one model, run by ``provider`` (``onnxruntime``, ``openvino`` or
    ``tensorrt``) on ``device`` (``cpu``; ``cuda[:N]`` for onnxruntime and tensorrt) at
    ``precision`` (module doc; ``int8`` needs an export whose manifest says int8)."""

    def __init__(
        self,
        export_dir: str | Path,
        provider: str = "onnxruntime",
        threads: int = 0,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        if provider not in BACKENDS[1:]:
            raise ValueError(f"provider must be one of {BACKENDS[1:]}, got {provider!r}")
        if provider in CPU_ONLY_BACKENDS and device != "cpu":
            raise ValueError(f"backend '{provider}' runs on the CPU, got device {device!r}")
        check_precision(provider, precision)
        self.device, self.precision = device, precision
        self.dir = Path(export_dir)
        self.manifest = read_manifest(self.dir)
        graphs = self.manifest.get("precision", "fp32")
        if (graphs == "int8") != (precision == "int8"):
            hint = "siam-export --precision int8 writes int8 graphs" if graphs != "int8" else ""
            raise ValueError(
                f"{self.dir} holds {graphs} graphs, precision {precision} was asked for"
                + (f" ({hint})" if hint else "")
            )
        self.provider = provider
        self.threads = int(threads)
        self.num_kernels = int(self.manifest["num_kernels"])
        heads = self.manifest["config"]["model"]["head"]
        self.anchor_num = int(heads.get("anchor_num", 5))
        self._template = self._open("template.onnx")
        self._features = self._open("features.onnx")
        self._per_batch: dict[str, _OrtGraph | _OvGraph] = {}  # head/search graphs, by file
        self.rpn_head = _OnnxHead(self)

    def _open(self, name: str) -> _OrtGraph | _OvGraph:
        path = self.dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{self.dir}: graph {name} missing; re-run siam-export")
        if self.provider == "openvino":
            return _OvGraph(path, self.threads, bf16=self.precision == "bf16")
        return _OrtGraph(path, self.threads, self.provider, self.device, self.precision == "fp16")

    def _batch_graph(self, name: str) -> _OrtGraph | _OvGraph:
        """A per-batch-size graph, opened on its first use."""
        graph = self._per_batch.get(name)
        if graph is None:
            graph = self._per_batch[name] = self._open(name)
        return graph

    def threads_in_use(self) -> int:
        """The per-frame graph's thread count as its runtime reports it."""
        return self._features.threads()

    @staticmethod
    def _arrays(tensors: list[torch.Tensor]) -> list[np.ndarray]:
        return [np.ascontiguousarray(t.detach().cpu().float().numpy()) for t in tensors]

    @staticmethod
    def _tensors(arrays: list[np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(a) for a in arrays]

    def template(self, z: torch.Tensor) -> list[torch.Tensor]:
        return self._tensors(self._template(self._arrays([z])))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._tensors(self._features(self._arrays([x])))

    @property
    def fused(self) -> bool:
        """Whether the export has the merged search graphs (``search_b{N}.onnx``)."""
        return bool(self.manifest.get("search_batches"))

    def search(
        self, x: torch.Tensor, kernels: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cls``, ``loc`` of search patches ``x`` with their targets' kernels in one call
        (the merged graph of that batch size); without one, features then head."""
        batch = int(x.shape[0])
        if batch not in self.manifest.get("search_batches", []):
            return self.run_head([*kernels, *self.features(x)])
        graph = self._batch_graph(search_file(batch))
        cls, loc = self._tensors(graph(self._arrays([x, *kernels])))
        return cls, loc

    def run_head(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The head for a batch of targets; a batch size without a graph of its own (any
        number of targets in the node) runs the batch-1 graph once per target."""
        batch = int(tensors[0].shape[0])
        if batch > 1 and batch not in self.manifest.get("head_batches", [1]):
            rows = [self.run_head([t[i : i + 1] for t in tensors]) for i in range(batch)]
            return torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])
        cls, loc = self._tensors(self._batch_graph(head_file(batch))(self._arrays(tensors)))
        return cls, loc
