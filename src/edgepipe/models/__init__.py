"""Local models: llama.cpp language models, and CPU onnxruntime sessions for the ONNX ones."""
