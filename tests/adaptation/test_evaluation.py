"""Adaptation's scores decide what is kept: they must not move with the precision this machine chose by timing."""

import copy

import numpy as np

from wsi_deblur.adaptation.evaluation import further_degraded_scores, restorer_scores
from wsi_deblur.adaptation.pairs import simulated_pairs
from wsi_deblur.nets.runtime import load_deblur_network
from wsi_deblur.restore.neural import default_weights as restorer_weights
from wsi_deblur.synthetic import SyntheticSlide


def test_scores_are_those_of_fp32_whatever_path_the_network_was_given():
    field = SyntheticSlide((384, 384), tissue=False, seed=3).render(0, 0, 384, 384)
    pairs = simulated_pairs(field[None], "defocus", 6, 64, np.random.default_rng(4))
    net = load_deblur_network(str(restorer_weights("fast", "defocus")))
    as_fp32, as_bf16 = copy.deepcopy(net), copy.deepcopy(net)
    as_fp32.cpu_precision, as_bf16.cpu_precision = "fp32", "bf16"  # what a killed and a resumed process may pick
    assert restorer_scores(as_bf16, pairs) == restorer_scores(as_fp32, pairs)
    assert further_degraded_scores(as_bf16, pairs, max_iterations=2) == \
        further_degraded_scores(as_fp32, pairs, max_iterations=2)
