"""weam.core.progress: periodic plain lines when not on a terminal; uninformative library warnings filtered."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from weam.core.progress import Progress, quiet_library_noise, track


def test_plain_progress_prints_one_line_per_ten_percent_with_rate_and_eta():
    out = io.StringIO()  # not a terminal
    with Progress("pretrain weam", total=200, unit="tokens", stream=out) as bar:
        for step in range(1, 51):
            bar.update(step * 4, info=f"step {step}")
    lines = out.getvalue().splitlines()
    assert [re.search(r": (\d+)% ", line).group(1) for line in lines] == [str(p) for p in range(10, 101, 10)]
    assert all("tokens/s" in line and "ETA" in line and "elapsed" in line for line in lines)
    assert lines[-1].startswith("[weam] pretrain weam: 100% 200/200 tokens") and lines[-1].endswith("(step 50)")


def test_plain_progress_jumps_print_once_and_unfinished_runs_print_where_they_stopped():
    out = io.StringIO()
    bar = Progress("align", total=10, unit="pairs", stream=out)
    bar.update(7)  # 70 %: one line, not seven
    bar.update(7.99)  # 79.9 %: no new line (the next is at 80 %)
    bar.close()  # stopped at 70 %: a last line says so
    assert [line.split(": ")[1].split(" ")[0] for line in out.getvalue().splitlines()] == ["70%", "79%"]  # floored, never rounded up


def test_progress_off_and_disabled_print_nothing(monkeypatch):
    out = io.StringIO()
    assert list(track(range(5), "eval", stream=out, enabled=False)) == [0, 1, 2, 3, 4]
    monkeypatch.setenv("WEAM_PROGRESS", "off")
    assert list(track(range(5), "eval", stream=out)) == [0, 1, 2, 3, 4]
    assert out.getvalue() == ""


def test_terminal_progress_draws_a_rich_bar(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    for _ in track(range(3), "fine-tune", stream=out):
        pass
    assert "fine-tune" in out.getvalue() and "3/3" in out.getvalue()
    assert "[weam]" not in out.getvalue()


def test_cli_installs_the_filter(monkeypatch):
    from weam import cli

    monkeypatch.setattr(sys, "argv", ["weam", "--help"])
    try:
        cli.main()
    except SystemExit:
        pass
    assert any(type(f).__name__ == "_NoiseFilter" for f in logging.getLogger("DeepSpeed").filters)


def test_deepspeed_scheduler_and_accelerator_warnings_are_filtered(tmp_path):
    """DeepSpeed's own code paths emit both messages before the filter and neither after it."""
    script = textwrap.dedent("""
        import torch
        from deepspeed.accelerator import real_accelerator
        from deepspeed.runtime.lr_schedules import WarmupLR
        from weam.core.progress import quiet_library_noise

        def noisy():
            real_accelerator.ds_accelerator = None
            real_accelerator.get_accelerator()
            optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
            WarmupLR(optimizer, warmup_num_steps=10).get_lr()  # before the first step

        noisy()
        print("=== filtered from here", flush=True)
        quiet_library_noise()
        noisy()
        print("=== end", flush=True)
    """)
    env = {k: v for k, v in os.environ.items() if k != "DS_ACCELERATOR"}  # let DeepSpeed auto-detect
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    before, after = (done.stdout + done.stderr).split("=== filtered from here")
    for message in ("Attempting to get learning rate from scheduler before it has started",
                    "Setting accelerator to CPU"):
        assert message in before  # the test would notice DeepSpeed rewording it
        assert message not in after
    assert "=== end" in after


@pytest.mark.multiprocess
def test_weam_pretrain_not_on_a_terminal_logs_progress_lines_and_no_library_noise(tmp_path):
    """A real `weam pretrain run` with output to a pipe: plain progress lines with rate and ETA, and
    none of the filtered messages (DeepSpeed auto-detects the accelerator here, which warns)."""
    import yaml

    from tests.training.conftest import tiny_config, write_pair
    from weam.modeling import train_wordpiece_tokenizer

    made = [write_pair(tmp_path / "en-fi", "en", "fi", 60, 1, "ko")]
    texts = [line for p in made for f in (p["src_file"], p["tgt_file"]) for line in f.read_text().splitlines()]
    train_wordpiece_tokenizer(texts, vocab_size=100).save_pretrained(tmp_path / "tok")
    config = tiny_config({"pairs": made, "tokenizer": tmp_path / "tok"}, tmp_path / "run", max_steps=None,
                         token_budget=3000)
    (tmp_path / "pretrain.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    env = {k: v for k, v in os.environ.items() if k not in ("DS_ACCELERATOR", "WEAM_PROGRESS")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-m", "weam.cli", "pretrain", "run", "--config", str(tmp_path / "pretrain.yaml")],
                          capture_output=True, text=True, env=env, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    lines = [line for line in output.splitlines() if line.startswith("[weam] pretrain weam: ")]
    assert len(lines) >= 3, output[-3000:]
    assert all("tokens/s" in line and "ETA" in line and "/3,000 tokens" in line for line in lines)
    assert int(lines[-1].split(": ")[1].split("%")[0]) >= 90  # the budget ends within the last batch
    for message in ("Attempting to get learning rate", "Setting accelerator to CPU", "Setting ds_accelerator"):
        assert message not in output


@pytest.mark.parametrize("quiet", [False, True])
def test_library_bars_that_say_nothing_are_not_drawn(tmp_path, quiet):
    """transformers' "Loading weights" / "Writing model shards" bars (one per model load or save) are
    dropped once weam quiets the libraries, before transformers is imported; another bar is still drawn.
    Without it they are there (the test notices transformers renaming them)."""
    script = textwrap.dedent(f"""
        import sys
        from weam.core.progress import quiet_library_noise
        if {quiet}:
            quiet_library_noise()
            assert "transformers" not in sys.modules  # quieting costs no import
        from transformers import BertConfig, BertModel
        from transformers.utils import logging
        tiny = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
        BertModel(tiny).save_pretrained({str(tmp_path)!r})
        BertModel.from_pretrained({str(tmp_path)!r})
        list(logging.tqdm(range(3), desc="Downloading"))
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("HF_DATASETS_DISABLE_PROGRESS_BARS", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Downloading: 100%" in done.stderr
    for bar in ("Loading weights", "Writing model shards"):
        assert (bar in done.stderr) is not quiet, bar
