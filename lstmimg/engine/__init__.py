"""Stage 3, the jobs, grouped by family: ``train`` (the loop and what it needs), ``infer`` (loading a model,
the one inference path, collections, streams, timelines, export), ``review`` (scoring, metrics, the report
page, explanations, plots), ``health`` (``lstmimg check``) and ``tune`` (``lstmimg tune``). See docs/layout.md."""
