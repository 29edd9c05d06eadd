"""Restorers by name, as the CLI and :class:`~wsi_deblur.pipeline.options.RunOptions` refer to them.

Every registered restorer network (:mod:`wsi_deblur.nets.registry`) is a
restorer of the same name; ``wiener`` is the classical one.

Examples
--------
>>> RESTORERS
('fast', 'dbmid', 'bcr', 'wiener', 'hybrid')
>>> make_restorer("wiener").name
'wiener'
"""

from __future__ import annotations

from wsi_deblur.errors import check_choice
from wsi_deblur.nets.registry import RESTORER_ARCHITECTURES, list_networks, network_spec
from wsi_deblur.restore.base import Restorer

#: Classical restorers: name -> what ``--help`` says of it.
CLASSICAL = {"wiener": "classical Wiener deconvolution with the estimated PSF"}
#: Restorers that route each blur type to another: name -> what ``--help`` says, the network architecture it uses
#: and that architecture's networks it loads.
COMPOSITE = {"hybrid": ("defocus by Wiener with the estimated PSF as a geometric disc, motion and mixed blur by "
                        "fast's networks", "fast", ("motion", "mixed"))}

#: Every restorer, networks first (in the registry's order).
RESTORERS: tuple[str, ...] = (*RESTORER_ARCHITECTURES, *CLASSICAL, *COMPOSITE)


def restorer_help() -> str:
    """One phrase per restorer, for ``--help``: ``"fast (...), dbmid (...), ..."``."""
    lines = ({spec.name: spec.summary for spec in list_networks("restorer")} | CLASSICAL
             | {name: c[0] for name, c in COMPOSITE.items()})
    return ", ".join(f"{name} ({summary})" for name, summary in lines.items())


def make_restorer(name: str, *, device: str | None = None, threads: int = 1,
                  weights_dir: str | None = None) -> Restorer:
    """A restorer by name (one of :data:`RESTORERS`).

    ``device`` picks the torch device of the networks (default: CUDA when
    present, else CPU); ``threads`` their CPU threads per call (1 under Dask,
    which runs a task per core). ``weights_dir``: a folder written by
    ``wsi-deblur adapt``; each network it holds replaces the shipped one, the
    others stay shipped (with a warning naming them).
    """
    check_choice("restorer", name, RESTORERS)
    if name == "wiener":
        from wsi_deblur.restore.wiener import WienerRestorer  # deferred: scipy

        return WienerRestorer()
    if name in COMPOSITE:
        from wsi_deblur.restore.hybrid import HybridRestorer  # deferred: scipy

        networks = make_restorer(COMPOSITE[name][1], device=device, threads=threads, weights_dir=weights_dir)
        return HybridRestorer(networks)
    from wsi_deblur.restore.neural import NeuralRestorer  # torch

    return NeuralRestorer(architecture=name, device=device, threads=threads, weights_dir=weights_dir,
                          fallback=weights_dir is not None)


def restorer_networks(name: str) -> list[str]:
    """The weights files restorer ``name`` loads (none for a classical one).

    Examples
    --------
    >>> restorer_networks("hybrid")
    ['deblur_fast_motion.safetensors', 'deblur_fast_mixed.safetensors']
    >>> restorer_networks("wiener")
    []
    """
    if name in COMPOSITE:
        spec = network_spec(COMPOSITE[name][1])
        return [spec.weights_name(blur) for blur in COMPOSITE[name][2]]
    if name in RESTORER_ARCHITECTURES:
        spec = network_spec(name)
        return [spec.weights_name(blur) for blur in spec.networks]
    return []
