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
# The GPU path's options of the torch backend (siam_core.tracker.accel).
PRECISIONS = ("fp32", "fp16", "bf16")
GRAPH_MODES = ("eager", "cuda_graph", "compile")
