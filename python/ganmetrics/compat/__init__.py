"""Drop-in replacements with the signatures of the libraries people already use.

Change one import and keep your code:

    from pytorch_fid.fid_score import calculate_frechet_distance      # before
    from ganmetrics.compat.pytorch_fid import calculate_frechet_distance  # after

Modules: ``pytorch_fid``, ``prdc``, ``clean_fid``, ``torch_fidelity``; torchmetrics ``Metric``
classes live in ``ganmetrics.torchmetrics``. They work on features (or statistics); the originals'
image pipelines and feature networks are not reproduced.
"""
