"""AER against sure/possible gold, and the symmetrization heuristics on hand-checked cases."""

from __future__ import annotations

import pytest

from weam.alignment.scoring import parse_gold, score_alignments
from weam.alignment.symmetrize import symmetrize
from weam.core.errors import InputError


def test_both_possible_markers_and_sure_counts_as_possible():
    sure, possible = parse_gold("0-0 1?2 2p1")
    assert sure == {(0, 0)} and possible == {(0, 0), (1, 2), (2, 1)}
    with pytest.raises(InputError, match="bad gold link"):
        parse_gold("0:1")


def test_aer_by_hand(tmp_path):
    pred = tmp_path / "pred"
    gold = tmp_path / "gold"
    pred.write_text("0-0 1-1 2-2\n0-1\n")
    gold.write_text("0-0 1p1 2-1\n0-1 1?0\n")
    # A = 4 links; S = {0-0, 2-1, 0-1} (3); A∩S = {0-0, 0-1} (2); A∩P = {0-0, 1-1, 0-1} (3)
    scores = score_alignments(pred, gold)
    assert scores["precision"] == pytest.approx(3 / 4)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["aer"] == pytest.approx(1 - (2 + 3) / (4 + 3))


def test_line_count_mismatch(tmp_path):
    (tmp_path / "pred").write_text("0-0\n0-0\n")
    (tmp_path / "gold").write_text("0-0\n")
    with pytest.raises(InputError, match="fewer lines"):
        score_alignments(tmp_path / "pred", tmp_path / "gold")


def test_cli_score_prints_the_three_figures(tmp_path):
    from typer.testing import CliRunner

    from weam.alignment.cli import app

    (tmp_path / "pred").write_text("0-0 1-1\n")
    (tmp_path / "gold").write_text("0-0 1p1\n")
    result = CliRunner().invoke(app, ["score", "--pred", str(tmp_path / "pred"), "--gold", str(tmp_path / "gold")])
    assert result.exit_code == 0
    assert result.output.split() == ["precision", "1.0000", "recall", "1.0000", "aer", "0.0000"]


FWD = {(0, 0), (1, 1), (2, 1), (3, 3)}
REV = {(0, 0), (1, 1), (1, 2), (4, 3)}


def test_intersection_and_union():
    assert symmetrize(FWD, REV, "intersection") == [(0, 0), (1, 1)]
    assert symmetrize(FWD, REV, "union") == sorted(FWD | REV)


def test_grow_diag_final_and_by_hand():
    # grow: from {0-0, 1-1}, 2-1 and 1-2 neighbour 1-1 and each has an unaligned word -> added.
    # final-and: 3-3 (fwd) has both words unaligned -> added; 4-3 (rev) then has 3 aligned -> not.
    assert symmetrize(FWD, REV, "grow-diag-final-and") == [(0, 0), (1, 1), (1, 2), (2, 1), (3, 3)]


def test_grow_requires_an_unaligned_word():
    # 1-1 is in the union and diagonal to 0-0, but both its words are already aligned by 0-1 and 1-0.
    fwd = {(0, 0), (0, 1), (1, 0)}
    rev = {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert (1, 1) not in symmetrize(fwd, rev, "grow-diag-final-and")


def test_gold_links_past_the_sentence_are_refused_with_the_corpus(tmp_path):
    """Issue 26, item 8: a gold link past the end of its sentence used to count as a miss (recall
    0.75 instead of 1.0); with the corpus (given, or recorded by `weam align run` beside the
    prediction) it is an error naming the file and line, exit 2."""
    from typer.testing import CliRunner

    from weam.cli import app
    from weam.core.manifest import write_manifest

    out = tmp_path / "align"
    out.mkdir()
    (tmp_path / "src").write_text("a b\nc d\n")
    (tmp_path / "tgt").write_text("x y\nz w\n")
    (out / "alignment.txt").write_text("0-0 1-1\n0-0 1-1\n")
    (tmp_path / "gold").write_text("0-0 1-1\n0-0 1-1 2-2\n")  # 2-2: past two-word sentences
    assert score_alignments(out / "alignment.txt", tmp_path / "gold")["recall"] == pytest.approx(0.8)
    with pytest.raises(InputError, match=r"gold:2: link 2-2 is out of range"):
        score_alignments(out / "alignment.txt", tmp_path / "gold", tmp_path / "src", tmp_path / "tgt")
    write_manifest(out, "align", {"src": tmp_path / "src", "tgt": tmp_path / "tgt"}, {}, {"alignment": "alignment.txt"})
    runner = CliRunner()
    refused = runner.invoke(app, ["align", "score", "--pred", str(out / "alignment.txt"), "--gold", str(tmp_path / "gold")])
    assert refused.exit_code != 0 and "out of range" in str(refused.exception)
    (tmp_path / "gold").write_text("0-0 1-1\n0-0 1-1\n")
    fine = runner.invoke(app, ["align", "score", "--pred", str(out / "alignment.txt"), "--gold", str(tmp_path / "gold")])
    assert fine.exit_code == 0 and "recall\t1.0000" in fine.output
