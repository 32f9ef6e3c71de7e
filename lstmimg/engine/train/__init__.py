"""Training: the loop (`fit`), its state and steps, optimiser, stopping rule, the input and clip plan, batches, processes, TensorBoard and the feature cache."""
