"""The two aligners behind one interface. Both run inside Ray tasks, so everything here takes and
returns plain data (lists of lines, bytes), never paths of the driver's machine.

``train_global(src, tgt)`` fits one model on a sample and returns it as a picklable object;
``align(src, tgt, model)`` returns one symmetrized Pharaoh line per pair, training a model on
these very pairs when ``model`` is None.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from weam.alignment.config import AlignConfig, EflomalConfig, FastAlignConfig, ThotConfig
from weam.alignment.pharaoh import format_links, parse_links
from weam.alignment.symmetrize import symmetrize
from weam.core.errors import WeamError
from weam.core.lock import LockedError, exclusive

FAST_ALIGN_HELP = (
    "fast_align is not installed. Either use `--engine thot` (eflomal's sampler, seeded; pip package installed with weam), "
    "or build fast_align: the weam Docker image builds it from the pinned upstream repository "
    "https://github.com/clab/fast_align; by hand: `git clone https://github.com/clab/fast_align && "
    "cd fast_align && apt-get install -y libsparsehash-dev cmake && mkdir build && cd build && "
    "cmake .. && make`, then put build/ on PATH or set FAST_ALIGN_BIN=.../build/fast_align and "
    "ATOOLS_BIN=.../build/atools (or fast_align.binary / fast_align.atools in the config)."
)
STDERR_TAIL = 3000


@dataclass(frozen=True)
class FastAlignTools:
    fast_align: str
    atools: str


def find_fast_align(config: FastAlignConfig) -> FastAlignTools | None:
    """Absolute paths of fast_align and atools from the config or PATH, or None if either is missing."""
    binary = _executable(config.binary) if config.binary else shutil.which("fast_align")
    if binary is None:
        return None
    beside = Path(binary).with_name("atools")
    atools = _executable(config.atools) if config.atools else (
        str(beside) if os.access(beside, os.X_OK) else shutil.which("atools"))
    return FastAlignTools(binary, atools) if atools else None


def _executable(path: str) -> str | None:
    resolved = Path(path).expanduser().resolve()
    return str(resolved) if resolved.is_file() and os.access(resolved, os.X_OK) else None


def require_fast_align(config: FastAlignConfig) -> FastAlignTools:
    tools = find_fast_align(config)
    bad = [p for p in (config.binary, config.atools) if p and _executable(p) is None]
    if bad:  # a path was given (config or FAST_ALIGN_BIN/ATOOLS_BIN): say that it is wrong
        raise WeamError(f"{', '.join(bad)}: not an executable file (set by fast_align.binary/atools or "
                        f"FAST_ALIGN_BIN/ATOOLS_BIN); fix the path, unset it, or use --engine thot. {FAST_ALIGN_HELP}")
    if tools is None:
        named = [p for p in (config.binary, config.atools) if p]
        where = f" (looked for {', '.join(named)})" if named else " (not on PATH)"
        raise WeamError(f"fast_align or atools not found{where}. {FAST_ALIGN_HELP}")
    return tools


def resolve_engine(config: AlignConfig) -> str:
    """The engine to run. ``auto`` falls back to thot (seeded eflomal) only when fast_align was not
    asked for by path: a configured binary (or $FAST_ALIGN_BIN) that is missing is a mistake, not a
    preference. Both choices are deterministic (fast_align with one thread)."""
    if config.engine != "auto":
        return config.engine
    if config.fast_align.binary or config.fast_align.atools:
        require_fast_align(config.fast_align)
        return "fast_align"
    return "fast_align" if find_fast_align(config.fast_align) else "thot"


def make_engine(config: AlignConfig):
    name = resolve_engine(config)
    if name == "fast_align":
        return FastAlignEngine(config.fast_align, require_fast_align(config.fast_align), config.symmetrization)
    if name == "thot":
        return ThotEngine(config.thot, config.symmetrization, config.seed)
    return EflomalEngine(config.eflomal, config.symmetrization)


SCRATCH_LOCK = ".in-use"
SCRATCH_GRACE_SECONDS = 60


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary folder (it holds a copy of the shard) that does not outlive a killed run.

    ``TemporaryDirectory`` cleans up only when Python unwinds; after kill -9 its folder and corpus
    copy stay in the temp dir for good. So each folder carries a lock its process holds, and every
    new one first removes the folders whose lock nobody holds any more (their owner died)."""
    root = Path(tempfile.gettempdir())
    for old in root.glob(f"{prefix}*"):
        _remove_if_abandoned(old)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        with exclusive(folder / SCRATCH_LOCK, f"scratch folder {folder}"):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_if_abandoned(folder: Path) -> None:
    lock = folder / SCRATCH_LOCK
    try:
        if not lock.is_file():  # just created and not locked yet, or not ours: leave young ones alone
            if time.time() - folder.stat().st_mtime > SCRATCH_GRACE_SECONDS and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
            return
        with exclusive(lock, f"scratch folder {folder}", reentrant=False):
            shutil.rmtree(folder, ignore_errors=True)
    except (LockedError, OSError):
        return  # alive (its owner holds the lock) or not ours to remove


def _run_tool(command: list[str], stdout_path: Path, stdin_path: Path | None = None, threads: int = 1) -> str:
    """Run one tool writing ``stdout_path``; return its stderr; raise with stderr's tail on failure."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    try:
        with open(stdout_path, "wb") as out:
            done = subprocess.run(command, stdin=stdin, stdout=out, stderr=subprocess.PIPE, check=False, env=env)
    except OSError as exc:
        raise WeamError(f"cannot run {command[0]}: {exc}") from None
    finally:
        if stdin_path:
            stdin.close()
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise WeamError(
            f"{' '.join(command)} exited with status {done.returncode}; its stderr ends with:\n"
            f"{stderr[-STDERR_TAIL:]}"
        )
    return stderr


def _read_links(path: Path, field: int | None = None) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("|||")[field].strip() for line in lines] if field is not None else lines


class FastAlignEngine:
    """fast_align forward and reverse (run side by side), then ``atools -c``."""

    name = "fast_align"

    def __init__(self, config: FastAlignConfig, tools: FastAlignTools, symmetrization: str):
        self.config, self.tools, self.symmetrization = config, tools, symmetrization

    def flags(self) -> list[str]:
        c = self.config
        return [*(["-d"] if c.favor_diagonal else []), *(["-o"] if c.optimize_tension else []),
                *(["-v"] if c.variational_bayes else []), "-I", str(c.iterations), *c.extra_args]

    def train_global(self, src: list[str], tgt: list[str]) -> dict:
        with scratch_dir("weam-fa-") as work:
            joint = _write_joint(work, src, tgt)
            model = {}
            for direction, extra in (("fwd", []), ("rev", ["-r"])):
                params = work / f"{direction}.params"
                stderr = _run_tool([self.tools.fast_align, "-i", str(joint), *self.flags(), *extra,
                                    "-p", str(params)], work / f"{direction}.out", threads=self.config.threads)
                model[direction] = {"params": params.read_bytes(), **_tension_and_ratio(stderr)}
            return model

    def align(self, src: list[str], tgt: list[str], model: dict | None = None) -> list[str]:
        with scratch_dir("weam-fa-") as work:
            joint = _write_joint(work, src, tgt)
            commands = {d: self._command(work, joint, d, model) for d in ("fwd", "rev")}
            with ThreadPoolExecutor(2) as pool:
                futures = [pool.submit(_run_tool, cmd, work / f"{d}.out", stdin, self.config.threads)
                           for d, (cmd, stdin) in commands.items()]
                for future in futures:
                    future.result()
            if model is not None:  # force-align output is "src ||| tgt ||| links"
                for d in ("fwd", "rev"):
                    (work / f"{d}.out").write_text("\n".join(_read_links(work / f"{d}.out", 2)) + "\n")
            atools = [self.tools.atools, "-i", str(work / "fwd.out"), "-j", str(work / "rev.out"),
                      "-c", self.symmetrization.replace("intersection", "intersect")]
            _run_tool(atools, work / "sym.out")
            return _read_links(work / "sym.out")

    def _command(self, work: Path, joint: Path, direction: str, model: dict | None):
        reverse = ["-r"] if direction == "rev" else []
        if model is None:
            return [self.tools.fast_align, "-i", str(joint), *self.flags(), *reverse], None
        params = work / f"{direction}.params"
        params.write_bytes(model[direction]["params"])
        part = model[direction]
        command = [self.tools.fast_align, "-i", "-", "-d", "-T", part["tension"], "-m", part["ratio"],
                   "-f", str(params), *reverse]
        return command, joint


def _write_joint(work: Path, src: list[str], tgt: list[str]) -> Path:
    """fast_align's input file (it reads the corpus once per EM iteration, so it needs a file)."""
    joint = work / "corpus.src-tgt"
    with open(joint, "w", encoding="utf-8", newline="\n") as handle:
        for s, t in zip(src, tgt, strict=True):
            handle.write(f"{s} ||| {t}\n")
    return joint


def _tension_and_ratio(stderr: str) -> dict:
    """The diagonal tension and length ratio fast_align -p prints; force-alignment needs them."""
    found = {}
    for line in stderr.splitlines():
        if "expected target length" in line:
            found["ratio"] = line.split()[-1]
        elif "final tension" in line:
            found["tension"] = line.split()[-1]
    if set(found) != {"ratio", "tension"}:
        raise WeamError(f"fast_align did not report its tension and length ratio; stderr:\n{stderr[-STDERR_TAIL:]}")
    return found


class EflomalEngine:
    """eflomal's two directions, symmetrized here (same heuristics as atools)."""

    name = "eflomal"

    def __init__(self, config: EflomalConfig, symmetrization: str):
        self.config, self.symmetrization = config, symmetrization

    def _directions(self, src: list[str], tgt: list[str], priors: str | None) -> tuple[list[str], list[str]]:
        import eflomal

        c = self.config
        aligner = eflomal.Aligner(model=c.model, n_samplers=c.n_samplers, rel_iterations=c.length,
                                  null_prior=c.null_prior)
        with scratch_dir("weam-ef-") as tmp:
            fwd, rev = tmp / "fwd", tmp / "rev"
            try:
                aligner.align([s + "\n" for s in src], [t + "\n" for t in tgt],
                              links_filename_fwd=str(fwd), links_filename_rev=str(rev),
                              priors_input=io.StringIO(priors) if priors else None, quiet=True)
            except (subprocess.CalledProcessError, ValueError, OSError) as exc:
                raise WeamError(f"eflomal failed: {exc}") from None
            return _read_links(fwd), _read_links(rev)

    def train_global(self, src: list[str], tgt: list[str]) -> str:
        """eflomal priors (its makepriors format) from aligning the sample."""
        import eflomal

        fwd, rev = self._directions(src, tgt, None)
        buffer = io.StringIO()
        eflomal.write_priors(buffer, *eflomal.calculate_priors(src, tgt, fwd, rev))
        return buffer.getvalue()

    def align(self, src: list[str], tgt: list[str], model: str | None = None) -> list[str]:
        fwd, rev = self._directions(src, tgt, model)
        return [format_links(symmetrize(parse_links(f), parse_links(r), self.symmetrization))
                for f, r in zip(fwd, rev, strict=True)]


class ThotEngine:
    """eflomal's sampler as sil-thot implements it, seeded: a direct and an inverse model, their
    links symmetrized here (same heuristics as atools). The global model is thot's own files
    (``AlignmentModel.print``) carried as bytes, so a worker loads it without a shared folder."""

    name = "thot"
    MODEL_PREFIX = "model"

    def __init__(self, config: ThotConfig, symmetrization: str, seed: int):
        self.config, self.symmetrization, self.seed = config, symmetrization, seed

    def _train(self, src: list[list[str]], tgt: list[list[str]]):
        from thot.alignment import EflomalAlignmentModel

        model = EflomalAlignmentModel()
        for s, t in zip(src, tgt, strict=True):
            model.add_sentence_pair(s, t)
        model.seed, model.num_samplers, model.p0 = self.seed, self.config.n_samplers, self.config.null_prior
        # The lexical denominator N(e) + alpha·|V|, as eflomal's own sampler has it (thot's default,
        # 1/N(e), scored 0.061 AER on the Django en-de test corpus against 0.053 with this).
        model.lex_norm = False
        # One thread per chain loop: the chains are independent, but a single thread also keeps
        # a Ray worker on the one CPU it was given.
        model.deterministic = True
        model.emit_training_alignments = True
        model.start_training()
        # eflomal's schedule (its Python wrapper's): scaled by the corpus size and `length`.
        iters = max(2, round(self.config.length * 5000 / len(src) ** 0.5))
        model.set_iterations(max(2, iters // 4), max(1, iters // 4), iters)
        for _ in range(model.scheduled_iterations):
            model.train()
        model.end_training()
        return model

    def _directions(self, src: list[str], tgt: list[str], model: dict | None):
        """Links per pair of both directions, each as (source, target) index pairs."""
        src_words, tgt_words = [s.split() for s in src], [t.split() for t in tgt]
        if model is None:
            direct, inverse = self._train(src_words, tgt_words), self._train(tgt_words, src_words)
            fwd = [direct.get_training_alignment(n)[1] for n in range(len(src))]
            rev = [inverse.get_training_alignment(n)[1] for n in range(len(src))]
        else:
            direct, inverse = (self._load(model[d]) for d in ("fwd", "rev"))
            fwd = [m for _, m in direct.get_best_alignments(src_words, tgt_words)]
            rev = [m for _, m in inverse.get_best_alignments(tgt_words, src_words)]
        return ([_matrix_links(m) for m in fwd],
                [[(i, j) for j, i in _matrix_links(m)] for m in rev])

    def train_global(self, src: list[str], tgt: list[str]) -> dict:
        """Both directions' models, trained on the sample, as {direction: {file name: bytes}}."""
        src_words, tgt_words = [s.split() for s in src], [t.split() for t in tgt]
        return {"fwd": self._dump(self._train(src_words, tgt_words)),
                "rev": self._dump(self._train(tgt_words, src_words))}

    def _dump(self, model) -> dict:
        with scratch_dir("weam-thot-") as work:
            if not model.print(str(work / self.MODEL_PREFIX)):
                raise WeamError("thot could not write its alignment model")
            return {p.name: p.read_bytes() for p in sorted(work.iterdir())
                    if p.name.startswith(f"{self.MODEL_PREFIX}.")}

    def _load(self, files: dict):
        from thot.alignment import EflomalAlignmentModel

        with scratch_dir("weam-thot-") as work:
            for name, data in files.items():
                (work / Path(name).name).write_bytes(data)
            model = EflomalAlignmentModel()
            if not model.load(str(work / self.MODEL_PREFIX)):
                raise WeamError("thot could not load the global alignment model")
            return model

    def align(self, src: list[str], tgt: list[str], model: dict | None = None) -> list[str]:
        fwd, rev = self._directions(src, tgt, model)
        return [format_links(symmetrize(f, r, self.symmetrization)) for f, r in zip(fwd, rev, strict=True)]


def _matrix_links(matrix) -> list[tuple[int, int]]:
    """A thot WordAlignmentMatrix (rows: the model's source words) as (row, column) links."""
    import numpy as np

    rows, columns = np.nonzero(matrix.to_numpy())
    return [(int(i), int(j)) for i, j in zip(rows, columns)]
