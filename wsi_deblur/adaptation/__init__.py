"""Adapt the networks to a facility's scanner from its own slides, without ground truth.

Every batch holds thousands of in-focus tiles of exactly the facility's
scanner, stains and tissue, and some blurred ones, never a sharp twin of a
blurred tile. :func:`~wsi_deblur.adaptation.job.adapt`:

1. samples tissue tiles of the given slides (:mod:`.site_tiles`): in focus by
   BlurNet and in the slide's top range of a no-reference sharpness, and
   those BlurNet calls blurred;
2. fits the simulator to the site (:mod:`.site_model`: its own scale and
   stain, the noise measured on its in-focus tiles, the defocus BlurNet
   finds on its blurred ones), degrades the in-focus tiles with it and
   fine-tunes DL_defocus, DL_motion, DL_mixed and BlurNet from the shipped
   weights on them (:mod:`.pairs`);
3. takes DeepContrast's step (Pimpão Martins et al., 2023) for the scanner's
   own blur: the blurred tiles degraded *further* by the forward model at
   their estimated blur, learnt back to the tiles as scanned, beside the
   simulated pairs (alone, they teach a network to under-restore); the
   adapted network is iterated while, one level down, an iteration still
   brings further-degraded tiles closer to themselves as scanned and the
   consistency guard rejects no more windows (:mod:`.iterations`);
4. scores shipped and adapted networks on held-back tiles (:mod:`.evaluation`)
   and writes safetensors and a model card (:mod:`.card`) into a folder that
   ``--weights`` (``RunOptions.weights``) then uses.

Importing this package imports torch.
"""
