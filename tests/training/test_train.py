"""End-to-end pre-training on CPU (gloo, tiny preset): in-process runs, two-process ZeRO-2/3 runs
started the way a pod or torchrun starts them (rendezvous variables + ``python -m weam.cli``),
kill-and-resume, HF export, tracking without a server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.training.conftest import TORCH_ADAM, tiny_config
from weam.training import distributed
from weam.training.api import pretrain
from tests.ports import worker_port
from weam.training.config import DistributedEnv, PretrainConfig
from weam.core.config import load_config
from weam.core.manifest import file_sha256
from weam.core.tracking import RunLogger

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))


def losses(out_dir: Path) -> dict[int, float]:
    """Step → loss; a resumed run re-logs steps after its checkpoint, the last record wins."""
    records = [json.loads(line) for line in (out_dir / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records}


def launch(config: PretrainConfig, world: int) -> list[subprocess.Popen]:
    path = Path(config.out_dir).parent / f"{Path(config.out_dir).name}.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    port = str(worker_port())
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-m", "weam.cli", "pretrain", "run", "--config", str(path)],
                                      env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    return procs


def wait(procs: list[subprocess.Popen], timeout: float = 240) -> None:
    """Every rank ends with 0; on a timeout or a failed rank the others' process groups are killed,
    so a stuck launch leaves no process behind."""
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, out.decode()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


@pytest.mark.multiprocess
def test_two_processes_zero3_weam_loss_falls_and_export_loads(corpus, tmp_path):
    from transformers import AutoModelForMaskedLM

    config = tiny_config(corpus, tmp_path / "z3", zero_stage=3, max_steps=20, checkpoint_every=20, lr=2e-3)
    wait(launch(config, world=2))
    curve = losses(config.out_dir)
    assert len(curve) == 20
    assert sum(curve[s] for s in range(16, 21)) / 5 < sum(curve[s] for s in range(1, 6)) / 5 - 0.3
    model = AutoModelForMaskedLM.from_pretrained(config.out_dir / "model")
    assert model.config.hidden_size == 128
    manifest = json.loads((config.out_dir / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["world_size"] == 2 and counts["steps"] == 20
    assert sum(counts["tokens_per_pair"].values()) == counts["tokens"] > 0


@pytest.mark.multiprocess
def test_two_processes_zero2_killed_run_resumes_with_identical_losses(corpus, tmp_path):
    """Kill both ranks after a checkpoint; the resumed run's losses equal an uninterrupted run's
    at every later step to 1e-5 (fp32 on CPU; in practice they agree bit for bit)."""
    common = dict(zero_stage=2, max_steps=24, checkpoint_every=6, keep_checkpoints=2)
    reference = tiny_config(corpus, tmp_path / "ref", **common)
    wait(launch(reference, world=2))
    interrupted = tiny_config(corpus, tmp_path / "cut", **common)
    procs = launch(interrupted, world=2)
    latest = interrupted.out_dir / "checkpoints" / "latest"
    deadline = time.time() + 240
    while not latest.exists() and time.time() < deadline and procs[0].poll() is None:
        time.sleep(0.02)
    for proc in procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert latest.exists() and not (interrupted.out_dir / "manifest.json").exists()
    resumed_from = int(latest.read_text().removeprefix("step"))
    assert resumed_from < 24
    wait(launch(interrupted, world=2))
    want, got = losses(reference.out_dir), losses(interrupted.out_dir)
    assert sorted(got) == list(range(1, 25))
    for step in range(resumed_from + 1, 25):
        assert got[step] == pytest.approx(want[step], abs=1e-5), step
    worst = max(abs(got[s] - want[s]) for s in range(resumed_from + 1, 25))
    print(f"resumed from step {resumed_from}; max |loss difference| over steps {resumed_from + 1}-24: {worst:.2e}")
    manifest = json.loads((interrupted.out_dir / "manifest.json").read_text())
    assert manifest["counts"]["tokens"] == json.loads((reference.out_dir / "manifest.json").read_text())["counts"]["tokens"]


def test_in_process_runs_repeat_skip_and_track_without_a_server(corpus, tmp_path, monkeypatch):
    from transformers import AutoModelForMaskedLM

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dead = f"http://127.0.0.1:{worker_port()}"
    first = tiny_config(corpus, tmp_path / "a", zero_stage=1, log_every=2,
                        tracking={"uri": dead, "experiment": "t", "enabled": True})
    second = tiny_config(corpus, tmp_path / "b", objective="tlm", zero_stage=0)
    # The stage's run (weam.stages.execute opens it) is handed in; a dead server buffers its records.
    run = RunLogger(dead, "t", "pretrain/weam/a/seed0", buffer_dir=first.out_dir / "tracking-buffer",
                    system_metrics=False)
    assert pretrain(first, DistributedEnv(), run) == first.out_dir / "model"
    assert run.status is None  # pretrain() never ends the run it is handed
    run.end()
    assert pretrain(second) == second.out_dir / "model"  # a second run in the same process
    buffered = [json.loads(line) for line in (first.out_dir / "tracking-buffer/journal.jsonl").read_text().splitlines()]
    metrics = [r["metrics"] for r in buffered if r["op"] == "metrics"]
    assert any("perf/mfu" in m and "train/tokens/en-de" in m and "train/loss_cross" in m for m in metrics)
    # The pairs read are the run's datasets, digests from the files' sha256; the export is its LoggedModel.
    (inputs,) = [r["datasets"] for r in buffered if r["op"] == "inputs"]
    files = [[p.src_file, p.tgt_file, *([p.alignment] if p.alignment else [])] for p in first.data.pairs]
    assert [(d["name"], d["digest"]) for d in inputs] == [
        (p.name, "".join(file_sha256(f)[:8] for f in fs)) for p, fs in zip(first.data.pairs, files)]
    (model,) = [r for r in buffered if r["op"] == "model"]
    assert model["tags"]["weam.model_dir"] == str((first.out_dir / "model").resolve())
    assert model["name"] == "pretrain-weam-a-seed0" and int(model["params"]["steps"]) > 0
    stamp = (first.out_dir / "manifest.json").stat().st_mtime
    started = time.time()
    pretrain(first)  # finished and unchanged: skipped
    assert time.time() - started < 5 and (first.out_dir / "manifest.json").stat().st_mtime == stamp
    assert AutoModelForMaskedLM.from_pretrained(second.out_dir / "model").config.num_hidden_layers == 2
    before = losses(second.out_dir)
    changed = second.model_copy(update={"optim": second.optim.model_copy(update={"lr": 2e-3})})  # old checkpoints not resumed
    pretrain(changed)
    # A fresh start: the old run's rows are dropped (no step twice), the new losses differ.
    assert list(losses_steps(second.out_dir)) == [*range(1, 7)]
    assert losses(second.out_dir)[6] != before[6]


def losses_steps(out_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out_dir / "train_log.jsonl").read_text().splitlines()]


def test_interrupted_save_never_becomes_latest(tmp_path):
    class Engine:  # the real save_checkpoint around an engine whose save dies half-way
        global_rank = 0
        module = torch.nn.Linear(2, 2)  # what the disk-space check sizes

        def save_checkpoint(self, folder, tag, client_state, save_latest):
            (Path(folder) / tag).mkdir(parents=True)
            if tag == "step00000004":
                raise KeyboardInterrupt

    folder = tmp_path / "checkpoints"
    distributed.save_checkpoint(Engine(), folder, 2, {}, keep=2)
    with pytest.raises(KeyboardInterrupt):
        distributed.save_checkpoint(Engine(), folder, 4, {}, keep=2)
    assert (folder / "latest").read_text() == "step00000002"


def test_deepspeed_config_is_generated_and_overridable(corpus, tmp_path):
    config = tiny_config(corpus, tmp_path, batch_size=32, micro_batch_size=4, zero_stage=3, precision="bf16",
                         deepspeed_overrides={"zero_optimization": {"overlap_comm": True}, "gradient_clipping": 0.5})
    ds = distributed.deepspeed_config(config.optim, config.parallel, config.data.batch_size, world_size=2,
                                      planned_steps=100)
    assert ds["gradient_accumulation_steps"] == 4 and ds["train_micro_batch_size_per_gpu"] == 4
    assert ds["zero_optimization"] == {"stage": 3, "overlap_comm": True} and ds["gradient_clipping"] == 0.5
    assert ds["bf16"]["enabled"] and ds["scheduler"]["params"]["total_num_steps"] == 100


def test_cpu_zero_buckets_are_capped_at_the_model_unless_the_config_sets_them():
    """On CPU, DeepSpeed's default 2 GB bucket allocated every micro-step cost more system time than
    training (tiny preset, 20 steps of ZeRO-1: 33.9 s of system time against 1.35 s sized, the same
    weights byte for byte)."""
    generated = {"zero_optimization": {"stage": 2}, "train_batch_size": 8}
    capped = distributed.cpu_bucket_sizes(generated, 1000)
    assert capped == {"zero_optimization": {"stage": 2, "reduce_bucket_size": 1000, "allgather_bucket_size": 1000},
                      "train_batch_size": 8}
    assert generated["zero_optimization"] == {"stage": 2}  # a copy
    kept = distributed.cpu_bucket_sizes({"zero_optimization": {"stage": 2, "reduce_bucket_size": 5}}, 1000)
    assert kept["zero_optimization"] == {"stage": 2, "reduce_bucket_size": 5, "allgather_bucket_size": 1000}


def test_flat_keys_of_the_old_config_fail_naming_their_new_place(tmp_path):
    from weam.core.errors import ConfigError

    path = tmp_path / "old.yaml"
    path.write_text("objective: weam\nlr: 1.0e-4\nmax_steps: 3\n")
    with pytest.raises(ConfigError, match=r"lr → optim\.lr, max_steps → optim\.max_steps"):
        load_config(PretrainConfig, path)


def test_fingerprint_leaves_out_fields_that_do_not_affect_results(corpus, tmp_path):
    base = tiny_config(corpus, tmp_path)
    quiet = tiny_config(corpus, tmp_path, log_every=1, checkpoint_every=1, run_name="x", tags={"a": "b"},
                        tracking={"enabled": True, "experiment": "other"}, cpu_peak_flops=5.0)
    assert base.fingerprint_config() == quiet.fingerprint_config()
    for changed in ({"lr": 2e-3}, {"objective__weam__cross_weight": 2.0}, {"data__packing": True}):
        assert tiny_config(corpus, tmp_path, **changed).fingerprint_config() != base.fingerprint_config(), changed


def test_objective_table_decides_alignment_needs_and_input_mode(corpus, tmp_path):
    from weam.training.config import OBJECTIVES

    bare = [{k: v for k, v in pair.items() if k != "alignment"} for pair in corpus["pairs"]]
    for name, spec in OBJECTIVES.items():
        if spec.needs_alignments:
            with pytest.raises(ValueError, match=f"objective '{name}' needs 'alignment'"):
                tiny_config({**corpus, "pairs": bare}, tmp_path, objective=name)
        else:
            assert tiny_config({**corpus, "pairs": bare}, tmp_path, objective=name).input_mode() == spec.input
    assert tiny_config(corpus, tmp_path, objective="partner_id_prediction",
                       objective__weam__input="pair").input_mode() == "pair"
    assert tiny_config(corpus, tmp_path, objective="weam").input_mode() == "pair"  # Figure 1: the pair


def test_plateau_rule_by_hand():
    from weam.training.api import on_plateau

    assert not on_plateau([5.0, 4.0, 3.0], 2, 0.01)  # fewer than 2 windows
    assert not on_plateau([5.0, 5.0, 4.0, 4.0], 2, 0.1)  # 5 → 4: 20 % better, more than 10 %
    assert on_plateau([5.0, 5.0, 4.8, 4.8], 2, 0.1)  # 4 % better: a plateau at 10 %
    assert on_plateau([4.0, 4.0, 4.2, 4.2], 2, 0.01)  # worse is a plateau too
    assert not on_plateau([5.0] * 10, None, 0.01)  # off


def test_training_stops_on_a_plateau_and_says_so(corpus, tmp_path):
    """A window of 2 steps that must improve by 90 %: the run stops at step 4 (the first step with two
    windows), well before max_steps, and the manifest says the plateau ended it."""
    config = tiny_config(corpus, tmp_path / "plateau", max_steps=30, optim__plateau_window=2,
                         optim__plateau_min_delta=0.9, checkpoint_every=100)
    pretrain(config)
    counts = json.loads((config.out_dir / "manifest.json").read_text())["counts"]
    assert counts["stopped"] == "plateau" and counts["steps"] == 4
    capped = tiny_config(corpus, tmp_path / "capped", max_steps=3, checkpoint_every=100)
    pretrain(capped)
    assert json.loads((capped.out_dir / "manifest.json").read_text())["counts"]["stopped"] == "max_steps"


def test_word_aligned_frozen_copy_stays_while_the_model_trains(corpus, tmp_path, monkeypatch):
    """10 steps of Cao et al.'s objective through pretrain(): the frozen copy's parameters equal the
    starting model's at the end, the trained encoder's differ, and the frozen copy is in no
    checkpoint or export."""
    from transformers import AutoModelForMaskedLM

    from weam.training import api

    seen = {}
    make_copy = api.frozen_copy

    def recording_copy(config, mlm):
        frozen = make_copy(config, mlm)
        seen["start"] = {k: v.detach().clone() for k, v in frozen.state_dict().items()}
        seen["frozen"] = frozen
        return frozen

    monkeypatch.setattr(api, "frozen_copy", recording_copy)
    config = tiny_config(corpus, tmp_path / "wa", objective="word_aligned", max_steps=10, checkpoint_every=10,
                         lr=2e-3)
    pretrain(config)
    after = seen["frozen"].state_dict()
    assert all(torch.equal(after[k], v) for k, v in seen["start"].items())
    trained = AutoModelForMaskedLM.from_pretrained(config.out_dir / "model").bert.state_dict()
    moved = [k for k, v in seen["start"].items() if not torch.equal(trained[k], v)]
    assert len(moved) > len(seen["start"]) // 2
    records = [json.loads(line) for line in (config.out_dir / "train_log.jsonl").read_text().splitlines()]
    # R is above 0 from step 1: the trained model runs with dropout, the frozen copy without (as in Cao et al.).
    assert len(records) == 10 and all(r["reg"] > 0 and r["align"] > 0 for r in records)
    assert all(r["mlm"] == 0.0 and r["masked"] == 0 for r in records)


def test_rendezvous_from_environment():
    env = DistributedEnv.from_environ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                                       "MASTER_ADDR": "10.0.0.2", "MASTER_PORT": "29500"})
    assert (env.rank, env.world_size, env.local_rank, env.master_addr, env.master_port) == (3, 4, 1, "10.0.0.2", 29500)
    single = DistributedEnv.from_environ({}).resolved()
    assert single.world_size == 1 and single.rank == 0 and single.master_port > 0


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "pretrain").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path, tmp_path):
    overrides = ["tokenizer=tok"] if "tiny" in path.name else []
    config = load_config(PretrainConfig, path, overrides)
    assert config.objective.mask_prob == 0.3 and config.objective.weam.cross_weight == 1.0
    assert config.objective.name == {"mlm": "mlm", "tlm": "tlm", "word": "word_aligned"}.get(path.name.split("-")[0], "weam")
    assert not config.data.packing


def test_cli_help_and_config_listing():
    from typer.testing import CliRunner

    from weam.cli import app

    result = CliRunner().invoke(app, ["pretrain", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "torchrun" in result.output
    listing = CliRunner().invoke(app, ["pretrain", "config"])
    assert "objective.weam.multi_token" in listing.output and "objective.weam.cross_weight = 1.0" in listing.output
    assert "data.packing = False" in listing.output and "optim.lr = 5e-05" in listing.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_bf16_smoke(corpus, tmp_path):
    config = tiny_config(corpus, tmp_path / "gpu", precision="bf16", zero_stage=2, max_steps=4, checkpoint_every=4,
                         deepspeed_overrides=TORCH_ADAM)
    pretrain(config)
    curve = losses(config.out_dir)
    assert len(curve) == 4 and all(v == v for v in curve.values())
