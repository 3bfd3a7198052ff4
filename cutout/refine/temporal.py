"""Temporal stability for video: motion-aware smoothing of the alpha across frames.

Per-frame models flicker: the same still edge gets slightly different alpha in every frame. An exponential
moving average removes that, but where the subject moves it would drag the old alpha along (ghosting). So
the weight of the past is lowered, per pixel, where the image itself changed between the two frames:

    keep = strength * exp(-(motion / tolerance)^2)
    alpha_t = keep * alpha_{t-1} + (1 - keep) * prediction_t

``motion`` is the absolute change of the frame (mean over channels, 0..1 scale) at network resolution, so the
smoothing costs a few operations on a 320 x 320 map. A scene cut (most of the frame changes) starts afresh.

    >>> smoother = TemporalSmoother(strength=0.6)                         # doctest: +SKIP
    >>> alpha = smoother(prediction, small_frame)                         # once per frame, in order
"""

from __future__ import annotations

import numpy as np

from cutout.errors import UsageError

#: Frame change (0..1 scale, ~25 grey levels) at which the past keeps only 1/e of its weight.
DEFAULT_TOLERANCE = 0.1
#: A frame where more than this share of pixels moved beyond the tolerance is a cut: no smoothing across it.
SCENE_CUT_SHARE = 0.6


def frame_signature(model_input: np.ndarray, std: tuple[float, float, float]) -> np.ndarray:
    """The frame at network resolution on a 0..1 scale, averaged over channels, for motion estimates.

    Undoes the per-channel standard deviation of the normalisation so that differences are in image units.

    Shape: (1, 3, h, w) float32 -> (h, w) float32.
    """
    scale = np.asarray(std, np.float32).reshape(3, 1, 1)
    return (model_input[0] * scale).mean(axis=0)


class TemporalSmoother:
    """Stateful, one per video: call it on each frame's alpha in frame order.

    Args:
        strength: 0 turns smoothing off (the output is the prediction); towards 1 the past weighs more.
        tolerance: frame change (0..1 scale) at which the past keeps 1/e of its weight.
    """

    def __init__(self, strength: float, tolerance: float = DEFAULT_TOLERANCE) -> None:
        if not 0.0 <= strength < 1.0:  # NaN too: typer's range check lets it through
            raise UsageError(f"temporal smoothing must be from 0 (off) to below 1, got {strength}; 0.5 is the default")
        self.strength = strength
        self.tolerance = tolerance
        self._alpha: np.ndarray | None = None
        self._frame: np.ndarray | None = None

    def __call__(self, alpha: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """The smoothed alpha for this frame.

        Shape: alpha (h, w) float in [0, 1], frame (h, w) float (see :func:`frame_signature`) -> (h, w) float32.
        """
        alpha = np.asarray(alpha, np.float32)
        previous, previous_frame = self._alpha, self._frame
        self._frame = frame
        if self.strength == 0.0 or previous is None or previous_frame is None or previous.shape != alpha.shape:
            self._alpha = alpha
            return alpha
        motion = np.abs(frame - previous_frame) / self.tolerance
        if (motion > 1.0).mean() > SCENE_CUT_SHARE:
            self._alpha = alpha
            return alpha
        keep = self.strength * np.exp(-np.square(motion))
        smoothed = alpha + keep * (previous - alpha)
        self._alpha = smoothed
        return smoothed
