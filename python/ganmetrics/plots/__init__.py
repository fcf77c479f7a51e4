"""Pictures where a person would rather look than read (matplotlib): the samples behind a number.

Metrics return numbers and indices; these functions draw them. Each takes the images as any image input
(:mod:`ganmetrics.images`: an image folder, ``.zip``, image ``.npz``/``.npy``, a 4-D uint8 or float 0-1 array or
tensor) and their features as arrays -- or, when the features are not given, extracts them from the images with
``extractor`` (as :func:`ganmetrics.extract`). Only the images shown are read. With ``path`` the figure is written
there (atomically, PNG or any format matplotlib knows by the extension) and the path returned; without, the
matplotlib Figure is returned.

- :func:`plot_nearest_neighbours`: each generated sample beside its k nearest training images, the flagged copies
  (:func:`ganmetrics.memorization`) first, then by distance ratio.
- :func:`plot_realism`: generated samples ranked by realism score, most and least realistic.
- :func:`plot_coverage_holes`: real samples no generated sample comes near (coverage's holes).
- :func:`plot_detectable`: the generated samples a classifier two-sample test finds most detectable.
"""

from __future__ import annotations

from ganmetrics.plots.samples import plot_coverage_holes, plot_detectable, plot_nearest_neighbours, plot_realism

__all__ = ["plot_coverage_holes", "plot_detectable", "plot_nearest_neighbours", "plot_realism"]
