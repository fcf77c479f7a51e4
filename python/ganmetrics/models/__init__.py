"""Reference GANs that validate the metrics: toy 2-D mixtures and 8x8 handwritten digits.

``data`` (mixtures with known modes, the scikit-learn digits), ``nets`` (MLP GAN, small DCGAN, the
digits classifier), ``losses`` (non-saturating BCE, WGAN-GP, hinge), ``trainer`` (seeded training
with per-step logs and checkpoints), ``degraded`` (generators broken on purpose) and ``zoo`` (the
shipped checkpoints).
"""
