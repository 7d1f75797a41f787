"""The model server: the SageMaker serving contract on ONNX Runtime (torch-free)."""
