"""Stage 3, the jobs: training (``training``, with ``plan``, ``batches``, ``optim``, ``trainstate``,
``features`` and ``distributed``), the one inference path (``inference``), scoring and ``evaluate``
(``evaluation``), the video timeline (``timeline``), explanations, ONNX export (``export``) and the ONNX
model (``onnx``), loading a model to use (``loading``) and plots."""
