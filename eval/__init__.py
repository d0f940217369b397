"""XTREME-R zero-shot evaluation: fine-tune an HF encoder on English, select on English dev, predict
every target language, score with the benchmark's own metrics, aggregate by family and resource level.

- :mod:`eval.tasks`   the registry: ten tasks as data (languages, files, metric, hyper-parameters);
- :mod:`eval.formats` readers of XTREME's download layout, the Tatoeba writer, the leaderboard layout;
- :mod:`eval.data`    a task's split from that layout or a Hugging Face dataset;
- :mod:`eval.runners` one model head per task kind (classification, multiple choice, tagging, QA,
  dual-encoder retrieval, Tatoeba sentence retrieval) over the shared loop in :mod:`eval.training`;
- :mod:`eval.metrics` XTREME-R's metrics and aggregates; :mod:`eval.score` leaderboard scoring;
- :mod:`eval.api`     ``evaluate(model, config, parent_run_id, tags)``; :mod:`eval.cli` ``weam eval``;
- :mod:`eval.bench`   ``python -m eval.bench``: a tiny-model run with timings.
"""
