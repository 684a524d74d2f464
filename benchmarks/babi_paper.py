"""The published bAbI numbers this benchmark compares against, as data.

Source: Sukhbaatar, Szlam, Weston & Fergus 2015, "End-To-End Memory Networks",
arXiv 1503.08895, Table 1 (test error %, one model per task), as transcribed in
``/work/shared/reference/papers.md`` (section "End-To-End Memory Networks").
Only what that transcription holds is here: the per-task errors of the
"PE LS RN" column (1k training sets), of "PE LS RN joint" (one model trained on all
20 tasks; ours: the agent label ``memn2n_joint``) and of "PE LS RN*" (10k, ReLU between hops), and the stated mean / failed-task summaries of those columns and of the
LSTM baseline (whose per-task errors are not transcribed).

A task "fails" when its test error is above :data:`FAIL_THRESHOLD` percent.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAIL_THRESHOLD", "PAPER_SOURCE", "PaperColumn", "PAPER_COLUMNS", "paper_column"]

FAIL_THRESHOLD = 5.0
"""A task fails when its test error (%) is strictly above this (the paper's criterion)."""

PAPER_SOURCE = "Sukhbaatar et al. 2015, End-To-End Memory Networks, arXiv 1503.08895, Table 1"
"""Where the numbers come from (via /work/shared/reference/papers.md)."""


@dataclass(frozen=True)
class PaperColumn:
    """One column of the paper's Table 1.

    Attributes:
        name: The column's label in the paper (e.g. ``"PE LS RN"``).
        size: Training set, ``"1k"`` or ``"10k"``.
        agent: The model family of ours it compares with (``"memn2n"`` or ``"lstm"``).
        errors: Test error % per task 1..20, or ``None`` when only the summary is known.
        mean: The stated mean test error %.
        failed: The stated number of tasks with error > 5 %.
    """

    name: str
    size: str
    agent: str
    errors: dict[int, float] | None
    mean: float
    failed: int


_PE_LS_RN_1K = (0.0, 8.3, 40.3, 2.8, 13.1, 7.6, 17.3, 10.0, 13.2, 15.1,
                0.9, 0.2, 0.4, 1.7, 0.0, 1.3, 51.0, 11.1, 82.8, 0.0)  # fmt: skip
_PE_LS_RN_JOINT_1K = (0.0, 11.4, 21.9, 13.4, 14.4, 2.8, 18.3, 9.3, 1.9, 6.5,
                      0.3, 0.1, 0.2, 6.9, 0.0, 2.7, 40.4, 9.4, 88.0, 0.0)  # fmt: skip
_PE_LS_RN_STAR_10K = (0.0, 0.3, 2.1, 0.0, 0.8, 0.1, 2.0, 0.9, 0.3, 0.0,
                      0.0, 0.0, 0.0, 0.2, 0.0, 51.8, 18.6, 5.3, 2.3, 0.0)  # fmt: skip

PAPER_COLUMNS: dict[tuple[str, str], PaperColumn] = {
    ("memn2n", "1k"): PaperColumn("PE LS RN", "1k", "memn2n", dict(enumerate(_PE_LS_RN_1K, 1)), 13.9, 11),
    ("memn2n", "10k"): PaperColumn("PE LS RN*", "10k", "memn2n", dict(enumerate(_PE_LS_RN_STAR_10K, 1)), 4.2, 3),
    ("memn2n_joint", "1k"): PaperColumn(
        "PE LS RN joint", "1k", "memn2n_joint", dict(enumerate(_PE_LS_RN_JOINT_1K, 1)), 12.4, 11
    ),
    ("lstm", "1k"): PaperColumn("LSTM", "1k", "lstm", None, 51.3, 20),
    ("lstm", "10k"): PaperColumn("LSTM", "10k", "lstm", None, 36.4, 16),
}
"""The paper's columns by ``(agent, size)``; the NTM was not in the paper's bAbI table."""


def paper_column(agent: str, size: str) -> PaperColumn | None:
    """The paper's column for ``agent`` trained on ``size``, or ``None`` if the paper has none."""
    return PAPER_COLUMNS.get((agent, size))
