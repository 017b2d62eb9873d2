"""Everything that knows lc0's formats: weights, the torch model, the policy map, the encoder, ONNX."""
