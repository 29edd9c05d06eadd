"""How the networks learn: losses, training batches and the fine-tuning loops.

Used by the training pipelines (``pipelines/``, on ``../shared/data``) and by
site adaptation (:mod:`wsi_deblur.adaptation`, on a facility's own slides).
Importing this package imports torch.
"""
