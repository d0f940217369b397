"""XTREME-R zero-shot evaluation: fine-tune an HF encoder on English, select on English dev, predict
every target language, score with the benchmark's own metrics, aggregate by family and resource level.

- :mod:`weam.eval.tasks`   the registry: ten tasks as data (languages, files, splits and whether the download
  carries their gold labels, metric, hyper-parameters, model selection, the Hugging Face dataset);
  ``labelled_split`` says which split a study can score;
- :mod:`weam.eval.formats` readers of XTREME's download layout (and LASER's Tatoeba pairs), the Tatoeba writer
  for a study's own held-out sets (download layout, gold kept apart), the leaderboard layout;
- :mod:`weam.eval.data`    a task's split from that layout or a Hugging Face dataset, placeholder gold removed;
- :mod:`weam.eval.runners` one model head per task kind (classification, multiple choice, tagging, QA,
  dual-encoder retrieval, Tatoeba sentence retrieval) over the shared loop in :mod:`weam.eval.training`;
- :mod:`weam.eval.metrics` XTREME-R's metrics and aggregates; :mod:`weam.eval.score` leaderboard scoring;
- :mod:`weam.eval.api`     ``evaluate(model, config, parent_run_id, tags)``; :mod:`weam.eval.cli` ``weam eval``;
- :mod:`weam.eval.bench`   ``python -m weam.eval.bench``: a tiny-model run with timings.
"""
