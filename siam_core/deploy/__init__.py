"""Deployment: ONNX export of the RPN-family networks and inference runtimes behind the tracker.

``export`` writes a model as ONNX graphs with a manifest; ``runtime`` runs those graphs with ONNX
Runtime or OpenVINO through the same ``template`` / ``features`` / ``rpn_head.track`` calls the
tracker makes on its PyTorch network, so the tracker logic stays one piece of code.
"""
