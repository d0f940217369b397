"""An evaluation split into (task, fine-tuning seed) parts, as ``weam study run --ray-address``
runs it (one GPU task each, weam/study/ray_run.py), then merged by the step itself: the step's
files equal a sequential evaluation's, whatever order the parts ran in, and the merge computes
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weam.eval.config import EvalConfig
from weam.stages import STAGES, Step, Tracking, execute, prepare_parts, verdict

ON = Tracking(enabled=True)
"""With weam.stages.open_run patched to hand out a BookLogger."""


def eval_step(folder: Path, model: Path, xtreme_dir: Path) -> Step:
    config = EvalConfig(tasks=["tatoeba", "xnli"], langs=["sw", "ur"], data_dir=xtreme_dir, seeds=[1, 2],
                        labels_dir=xtreme_dir / "labels", tatoeba_encoder="pretrained", out_dir=folder,
                        hyperparams={"xnli": {"max_steps": 2, "batch_size": 4, "max_seq_len": 64}},
                        eval_batch_size=8, tracking={"enabled": False})
    return Step("eval/base/seed0", "eval", folder, config, extra={"model": str(model)})


def files(folder: Path) -> dict[str, bytes]:
    """Every file the evaluation wrote but the manifests (they carry times): cells, predictions, results."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".")}


class BookLogger:
    """The stage's MLflow run and its children (RunLogger's calls), kept in ``book[run name]``, with
    paths under ``root`` made relative and wall times blanked (they differ between two runs)."""

    def __init__(self, name: str, book: dict, root: Path):
        self.name, self.book, self.root = name, book, root
        book[name] = []

    def child(self, name, tags=None):
        return BookLogger(f"{self.name}/{name}", self.book, self.root)

    def log_params(self, params):
        self.book[self.name].append(("params", dict(params)))

    def log_metrics(self, metrics, step=None):
        self.book[self.name].append(("metrics", {k: None if k.endswith("seconds") else v for k, v in metrics.items()}))

    def log_artifact(self, path, artifact_path=None):
        self.book[self.name].append(("artifact", str(Path(path).relative_to(self.root)), artifact_path))

    def set_tags(self, tags):
        self.book[self.name].append(("tags", dict(tags)))

    def end(self, status="FINISHED"):
        self.book[self.name].append(("end", status))


def test_parts_merged_equal_the_sequential_evaluation(tiny_model_dir, xtreme_dir, tmp_path, monkeypatch):
    sequential = eval_step(tmp_path / "sequential", tiny_model_dir, xtreme_dir)
    books: dict[str, dict] = {}  # folder name → its runs
    monkeypatch.setattr("weam.stages.open_run", lambda step, tracking, tags: BookLogger(
        "eval", books.setdefault(step.out_dir.name, {}), step.out_dir))
    assert execute(sequential, ON) is False

    split = eval_step(tmp_path / "parts", tiny_model_dir, xtreme_dir)
    stage = STAGES["eval"]
    parts = stage.parts(split)
    assert parts == ["tatoeba/seed1", "xnli/seed1", "xnli/seed2"]  # tatoeba is not fine-tuned: one seed
    split.out_dir.mkdir(parents=True)
    (split.out_dir / "manifest.json").write_text("{}")  # a stale finished attempt: cleared once, before the parts
    prepare_parts(split)
    assert not (split.out_dir / "manifest.json").exists()
    for part in reversed(parts):  # parts run in any order (on a cluster, at once)
        stage.run_part(split, part)
    assert not (split.out_dir / "xnli" / "results.json").exists()  # a part merges nothing

    def no_compute(*args, **kwargs):
        raise AssertionError("the merge recomputed a cell")

    monkeypatch.setattr("weam.eval.api._compute_cells", no_compute)
    assert execute(split, ON) is False  # the step runs: it merges the parts, logs into its run, writes its manifest
    assert verdict(split).done and verdict(sequential).done
    # MLflow: the same runs with the same calls in the same order (the parts' fine-tuning logged by the merge)
    assert list(books["parts"]) == ["eval", "eval/xnli/ft1", "eval/xnli/ft2"]
    assert books["parts"] == books["sequential"]
    assert ("artifact", "xnli/seed2/predictions", "predictions") in books["parts"]["eval/xnli/ft2"]
    assert not list(split.out_dir.rglob(".training.json"))  # logged once, then removed

    merged, expected = files(split.out_dir), files(sequential.out_dir)
    assert set(merged) == set(expected)
    assert {"tatoeba/results.json", "xnli/results.json", "xnli/seed1/sw.json", "xnli/seed2/ur.json"} <= set(merged)
    assert merged == expected
    results = json.loads(merged["xnli/results.json"])
    assert set(results["seeds"]) == {"1", "2"} and set(results["per_language"]) == {"sw", "ur"}
    for name in ("manifest.json", "xnli/manifest.json", "tatoeba/manifest.json"):
        ours = json.loads((split.out_dir / name).read_text())
        theirs = json.loads((sequential.out_dir / name).read_text())
        hashes = [{key: out["sha256"] for key, out in m["outputs"].items()} for m in (ours, theirs)]
        assert hashes[0] == hashes[1] and ours.get("counts") == theirs.get("counts"), name
    # the step's fingerprint (a task's manifest records its out_dir in its config, so not theirs)
    step_manifests = [json.loads((s.out_dir / "manifest.json").read_text()) for s in (split, sequential)]
    assert step_manifests[0]["fingerprint"] == step_manifests[1]["fingerprint"]


def test_one_part_is_no_split(tiny_model_dir, xtreme_dir, tmp_path):
    from weam.study.ray_run import step_parts

    step = eval_step(tmp_path / "one", tiny_model_dir, xtreme_dir)
    step.config = step.config.model_copy(update={"tasks": ["tatoeba"]})
    assert step_parts(step) == []
    step.config = step.config.model_copy(update={"tasks": ["tatoeba", "xnli"]})
    assert step_parts(step) == ["tatoeba/seed1", "xnli/seed1", "xnli/seed2"]
    with pytest.raises(ValueError):
        STAGES["eval"].run_part(step, "xnli/seedX")
