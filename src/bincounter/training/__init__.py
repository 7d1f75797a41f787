"""Training-side pieces of the core (torch, torchvision, ONNX export, smdebug).

The one place that chooses the protobuf runtime: smdebug's generated protobuf
code (the debugger hook, reading trials for the rules) works only with the
pure-Python runtime, and protobuf fixes its runtime at its first import, which
onnx makes. Every entry point that trains or reads a trial (train.py,
``orchestrate report --rules``, the tests) imports this package first.
"""

import os

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
