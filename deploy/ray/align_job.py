"""Entry script for ``ray submit deploy/ray/cluster.yaml deploy/ray/align_job.py -- ARGS``.

``ray submit`` runs this file with Python on the head node; it runs ``weam align run ARGS`` there,
joined to the running cluster (``--ray-address auto`` unless ARGS name another address), so the
shards spread over every node. ARGS are those of ``weam align run`` (--src --tgt --out, --shards,
--config, --set KEY=VALUE …).
"""

from __future__ import annotations

import sys


def weam_argv(args: list[str]) -> list[str]:
    """The ``weam`` command line for ARGS, joining the cluster this script runs on."""
    joined = any(arg == "--ray-address" or arg.startswith("--ray-address=") for arg in args)
    return ["align", "run", *args, *([] if joined else ["--ray-address", "auto"])]


def main() -> None:
    from weam.cli import main as weam_main

    sys.argv = ["weam", *weam_argv(sys.argv[1:])]
    weam_main()


if __name__ == "__main__":
    main()
