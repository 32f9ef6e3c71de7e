"""Review: evaluation, metrics, mistakes, plots, explanations and the report page."""
