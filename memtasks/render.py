"""Pictures of an episode for ``render_mode="rgb_array"`` (used by :class:`memtasks.env.MemTaskEnv`).

Two layouts, chosen by the task's input kind:

* **bit inputs** (the NTM tasks): a grid with one row per channel and one column
  per time step, in three blocks from top to bottom: the input tape, the target
  tape and the agent's outputs so far. A set bit is dark, a clear bit white,
  other input values blue (positive) or orange (negative) by magnitude. Unscored
  steps are grey in the target and output blocks; a wrong output bit on a scored
  step is red. The column of the step to be answered next is framed in blue.
* **token inputs** (bAbI): the sequence as text, one line per frame, with each
  question's target answer and the answer given (green if right, red if wrong).
  Frames not yet observed are grey; the current one is highlighted.

The image size is fixed when the episode starts (it depends on the episode's
number of steps, its channels or its text, never on the current step), so every
frame of an episode has the same shape, as video writers need. Pillow draws
the text with its built-in font; it is imported only when a picture is drawn.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from memtasks.core import Batch, Task

__all__ = ["EpisodeRenderer"]

# colours (RGB)
_BG = (244, 244, 244)
_ZERO = (255, 255, 255)
_ONE = (25, 25, 25)
_POS = (40, 90, 220)
_NEG = (235, 130, 20)
_UNSCORED = (205, 205, 205)
_UNSCORED_ONE = (150, 150, 150)
_UNSCORED_ZERO = (225, 225, 225)
_WRONG = (220, 35, 35)
_RIGHT = (30, 150, 60)
_CURSOR = (30, 110, 255)
_TEXT = (20, 20, 20)
_FAINT = (160, 160, 160)
_QUESTION = (30, 60, 160)
_HIGHLIGHT = (218, 232, 255)

_PAD = 6  # outer margin, px
_ALIGN = 16  # width and height are multiples of this (video codecs like even sizes)
_MIN_WIDTH = 320
_MAX_GRID_WIDTH = 4096  # long tapes get smaller cells rather than enormous images


_FONT: Any = None  # Pillow's built-in font, loaded on first use


def _font() -> Any:
    from PIL import ImageFont

    global _FONT
    if _FONT is None:
        _FONT = ImageFont.load_default()
    return _FONT


def _text_width(text: str) -> int:
    return int(np.ceil(_font().getlength(text)))


def _line_height() -> int:
    top, bottom = _font().getbbox("Ag|")[1::2]
    return int(bottom - top) + 4


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


class EpisodeRenderer:
    """Draws one episode; built at ``reset``, then :meth:`draw` once per frame.

    Args:
        task: The episode's task (its ``spec`` picks the layout).
        batch: The episode, a batch of one sample.
        title: Shown in the header (e.g. the task id).
    """

    def __init__(self, task: Task, batch: Batch, title: str) -> None:
        self.task, self.batch, self.title = task, batch, title
        self.spec = task.spec
        self.num_steps = batch.num_steps
        self.line_h = _line_height()
        if self.spec.input_kind == "bits":
            self._init_grid()
        else:
            self._init_story()

    # -- public ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of every frame of this episode."""
        return self.height, self.width, 3

    def draw(self, t: int, actions: Sequence[Any], total_reward: float) -> np.ndarray:
        """The frame after ``t`` steps with ``actions`` taken: (H, W, 3) uint8."""
        if self.spec.input_kind == "bits":
            return self._draw_grid(t, actions, total_reward)
        return self._draw_story(t, actions, total_reward)

    def _header(self, t: int, total_reward: float) -> str:
        return f"{self.title}   step {t}/{self.num_steps}   return {total_reward:g}"

    # -- bit inputs: a grid of cells --------------------------------------------------------
    def _init_grid(self) -> None:
        T = self.num_steps
        self.pitch = int(min(8, max(3, _MAX_GRID_WIDTH // T)))  # cell + 1 px gap, fixed per episode
        self.out_rows = self.spec.output_size if self.spec.output_kind == "bits" else 1
        labels = ("input", "target", "output")
        self.label_w = max(_text_width(s) for s in labels) + 8
        self.x0 = _PAD + self.label_w
        gap = 6
        y = _PAD + self.line_h + 4
        self.blocks: dict[str, tuple[int, int]] = {}  # name -> (y, rows)
        for name, rows in zip(labels, (self.spec.input_size, self.out_rows, self.out_rows)):
            self.blocks[name] = (y, rows)
            y += rows * self.pitch + gap
        self.legend_y = y
        legend = "dark = 1, white = 0, grey = unscored, red = wrong, blue frame = next step"
        x = self.batch.inputs[0]
        if np.any((x != 0) & (x != 1)):
            legend += ", blue/orange = +/- value"
        self.width = _align(max(_MIN_WIDTH, self.x0 + T * self.pitch + _PAD, _text_width(legend) + 2 * _PAD))
        self.height = _align(y + self.line_h + _PAD)

        # the static picture: labels, legend, input and target blocks
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (self.width, self.height), _BG)
        draw = ImageDraw.Draw(img, "RGB")
        for name, (by, rows) in self.blocks.items():
            draw.text((_PAD, by + max(0, (rows * self.pitch - self.line_h) // 2)), name, fill=_TEXT, font=_font())
        draw.text((_PAD, self.legend_y), legend, fill=_FAINT, font=_font())
        base = np.array(img)
        self._paste(base, "input", self._input_colours())
        self._paste(base, "target", self._target_colours())
        self.base = base
        self.scored = self.batch.mask[0] > 0

    def _input_colours(self) -> np.ndarray:
        x = self.batch.inputs[0].T.astype(np.float64)  # (channels, T)
        low, high = self.task.observation_bounds()
        scale = max(abs(low), abs(high), 1.0)
        a = np.clip(np.abs(x) / scale, 0.0, 1.0)[..., None]
        colours = np.where(x[..., None] > 0, _lerp(_ZERO, _POS, a), _lerp(_ZERO, _NEG, a))
        colours[x == 1.0] = _ONE
        colours[x == 0.0] = _ZERO
        return colours

    def _target_colours(self) -> np.ndarray:
        scored = self.batch.mask[0] > 0  # (T,)
        if self.spec.output_kind == "bits":
            y = self.batch.targets[0].T > 0.5  # (C, T)
            colours = np.where(y[..., None], np.array(_ONE, float), np.array(_ZERO, float))
        else:  # a class target: one row marking where an answer is asked for
            colours = np.broadcast_to(np.array(_ONE, float), (1, self.num_steps, 3)).copy()
        colours[:, ~scored] = _UNSCORED
        return colours

    def _output_colours(self, actions: Sequence[Any]) -> np.ndarray:
        n = len(actions)
        colours = np.empty((self.out_rows, n, 3))
        if n == 0:
            return colours
        scored = self.scored[:n]
        if self.spec.output_kind == "bits":
            a = np.stack([np.asarray(x).reshape(-1) for x in actions]).T > 0.5  # (C, n)
            y = self.batch.targets[0, :n].T > 0.5
            colours[:] = np.where(a[..., None], np.array(_ONE, float), np.array(_ZERO, float))
            grey = np.where(a[..., None], np.array(_UNSCORED_ONE, float), np.array(_UNSCORED_ZERO, float))
            colours[:, ~scored] = grey[:, ~scored]
            colours[(a != y) & scored] = _WRONG
        else:
            a = np.array([int(np.asarray(x).reshape(())) for x in actions])
            right = a == self.batch.targets[0, :n]
            colours[0] = np.where(right[:, None], np.array(_RIGHT, float), np.array(_WRONG, float))
            colours[0, ~scored] = _UNSCORED
        return colours

    def _paste(self, img: np.ndarray, block: str, colours: np.ndarray) -> None:
        """Fill ``block``'s cells from ``colours`` (rows, steps, 3); each cell keeps a 1 px gap."""
        rows, steps = colours.shape[:2]
        if steps == 0:
            return
        p = self.pitch
        y0, _ = self.blocks[block]
        cells = np.repeat(np.repeat(colours.astype(np.uint8), p, axis=0), p, axis=1)
        region = img[y0 : y0 + rows * p, self.x0 : self.x0 + steps * p]
        keep = np.ones((rows * p, steps * p), bool)
        keep[p - 1 :: p, :] = False
        keep[:, p - 1 :: p] = False
        region[keep] = cells[keep]

    def _draw_grid(self, t: int, actions: Sequence[Any], total_reward: float) -> np.ndarray:
        img = self.base.copy()
        self._paste(img, "output", self._output_colours(actions[: self.num_steps]))
        if t < self.num_steps:  # frame the column of the next step across the three blocks
            p = self.pitch
            top = self.blocks["input"][0] - 1
            y_out, rows = self.blocks["output"]
            bottom = y_out + rows * p - 1
            left, right = self.x0 + t * p - 1, self.x0 + (t + 1) * p - 1
            img[top : bottom + 1, [max(left, 0), right]] = _CURSOR
            img[[top, bottom], max(left, 0) : right + 1] = _CURSOR
        strip = _PAD + self.line_h + 2  # the header is the only text that changes: draw on its strip alone
        img[:strip] = self._text_on(img[:strip].copy(), [((_PAD, _PAD), self._header(t, total_reward), _TEXT)])
        return img

    # -- token inputs: the story as text ----------------------------------------------------------
    def _init_story(self) -> None:
        vocab = self.spec.vocab or ()
        frames = self.batch.inputs[0]
        self.lines = [" ".join(vocab[int(i)] for i in frame if i) for frame in frames]
        self.scored = self.batch.mask[0] > 0
        self.targets = [self._label(self.batch.targets[0, t]) for t in range(self.num_steps)]
        num_w = _text_width(f"{self.num_steps - 1:d}  ") + 6
        text_w = max([_text_width(s) for s in self.lines] + [_text_width("frame")])
        answers = [s for s, q in zip(self.targets, self.scored) if q]
        if self.spec.output_kind == "classes":
            answers += list(self.spec.classes or ())
        ans_w = max([_text_width(s) for s in answers] + [_text_width("target")])
        self.cols = (_PAD, _PAD + num_w, _PAD + num_w + text_w + 16, _PAD + num_w + text_w + 16 + ans_w + 16)
        self.rows_y0 = _PAD + 2 * self.line_h
        self.width = _align(max(_MIN_WIDTH, self.cols[3] + ans_w + _PAD))
        self.height = _align(self.rows_y0 + self.num_steps * self.line_h + _PAD)

    def _label(self, value: Any) -> str:
        """A target or an action as text: the class name, or the bits as 0/1."""
        if self.spec.output_kind == "classes":
            classes = self.spec.classes
            k = int(np.asarray(value).reshape(()))
            return classes[k] if classes and 0 <= k < len(classes) else str(k)
        return "".join("1" if v > 0.5 else "0" for v in np.asarray(value).reshape(-1))

    def _story_layer(self, seen: bool) -> np.ndarray:
        """Every frame's line, drawn once per episode: as observed (``seen``) or not yet (grey)."""
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = _ZERO
        c0, c1, c2, c3 = self.cols
        y_head = _PAD + self.line_h
        texts = [((c0, y_head), "t", _FAINT), ((c1, y_head), "frame", _FAINT)]
        texts += [((c2, y_head), "target", _FAINT), ((c3, y_head), "answer given", _FAINT)]
        for k, line in enumerate(self.lines):
            y = self.rows_y0 + k * self.line_h
            question = bool(self.scored[k])
            texts.append(((c0, y), str(k), _FAINT))
            texts.append(((c1, y), line, ((_QUESTION if question else _TEXT) if seen else _FAINT)))
            if question:
                texts.append(((c2, y), self.targets[k], _TEXT if seen else _FAINT))
        return self._text_on(img, texts)

    def _draw_story(self, t: int, actions: Sequence[Any], total_reward: float) -> np.ndarray:
        if not hasattr(self, "_layers"):
            self._layers = (self._story_layer(seen=True), self._story_layer(seen=False))
        seen, unseen = self._layers
        split = self.rows_y0 + (min(t, self.num_steps - 1) + 1) * self.line_h  # rows 0..t are observed
        img = unseen.copy()
        img[:split] = seen[:split]
        if t < self.num_steps:  # highlight the current frame's line (its background only)
            y = self.rows_y0 + t * self.line_h
            band = img[y - 1 : y + self.line_h - 1]
            band[(band == _ZERO).all(axis=-1)] = _HIGHLIGHT
        texts = [((_PAD, _PAD), self._header(t, total_reward), _TEXT)]
        c3 = self.cols[3]
        for k in np.flatnonzero(self.scored[: len(actions)]):
            said = self._label(actions[k])
            y = self.rows_y0 + int(k) * self.line_h
            texts.append(((c3, y), said, _RIGHT if said == self.targets[k] else _WRONG))
        return self._text_on(img, texts)

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _text_on(img: np.ndarray, texts: list[tuple[tuple[int, int], str, tuple[int, int, int]]]) -> np.ndarray:
        from PIL import Image, ImageDraw

        pic = Image.fromarray(img)
        draw = ImageDraw.Draw(pic, "RGB")
        for xy, text, colour in texts:
            draw.text(xy, text, fill=colour, font=_font())
        return np.asarray(pic, dtype=np.uint8).copy()


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], w: np.ndarray) -> np.ndarray:
    return np.array(a, float) * (1.0 - w) + np.array(b, float) * w
