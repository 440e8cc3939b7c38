"""Deployment: ONNX export of the RPN-family networks and inference runtimes behind the tracker.

``export`` writes a model as ONNX graphs with a manifest; ``runtime`` runs those graphs with ONNX
Runtime (CPU, CUDA or TensorRT execution provider) or OpenVINO through the same ``template`` /
``features`` / ``rpn_head.track`` calls the tracker makes on its PyTorch network, so the tracker
logic stays one piece of code.
"""

# The network runtimes a tracker can use; here, free of heavy imports, for fast --help.
BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")
# Backends that run on the CPU only; onnxruntime runs on CUDA too, tensorrt on CUDA only.
CPU_ONLY_BACKENDS = ("openvino",)
CUDA_ONLY_BACKENDS = ("tensorrt",)
# Network precisions: the torch backend's autocast (siam_core.tracker.accel; bf16 on a CPU with
# AMX/AVX512-BF16 units is its fast CPU mode), OpenVINO's bf16 inference precision, and int8
# graphs quantised statically on training crops (siam_core.deploy.quantize).
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# What each backend runs: torch autocasts; tensorrt's fp16 lets TensorRT pick fp16 kernels;
# ONNX Runtime's CPU provider has no bf16 convolutions, PyTorch no int8 tracker path.
BACKEND_PRECISIONS = {
    "torch": ("fp32", "fp16", "bf16"),
    "onnxruntime": ("fp32", "int8"),
    "openvino": ("fp32", "bf16", "int8"),
    "tensorrt": ("fp32", "fp16"),
}
GRAPH_MODES = ("eager", "cuda_graph", "compile")
# backend and precision: the fastest pair measured to keep the model's accuracy, decided per
# model and device (siam_core.zoo.resolve_runtime)
AUTO = "auto"


def check_precision(backend: str, precision: str) -> None:
    """ValueError naming what ``backend`` runs when it cannot run ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    allowed = BACKEND_PRECISIONS.get(backend)
    if allowed is not None and precision not in allowed:
        others = [b for b, ps in BACKEND_PRECISIONS.items() if precision in ps]
        raise ValueError(
            f"backend '{backend}' takes precision {', '.join(allowed)}; {precision} runs on "
            f"{', '.join(others)}"
        )
