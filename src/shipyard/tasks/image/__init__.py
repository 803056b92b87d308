"""The image classification task: transfer learning, ONNX export with parity, saliency."""
