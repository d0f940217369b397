"""The ground every stage stands on; imports nothing above it (no stage, no study, no CLI).

config (YAML → pydantic, ``not_result`` fields), manifest (content hashes, fingerprints, the skip
rule), tracking (MLflow runs, the tag vocabulary, the offline buffer), mlflow_local, errors,
corpus (Moses pairs and alignments), languages (the registry, ``languages.tsv``), layout (a study's
work directory), progress, lock (one study per work directory).
"""
