"""Every network by name, declared once: its class, its kind, its routes and its weights files.

Adding an architecture is this table and the architecture's own module: the
restorer (:class:`~wsi_deblur.restore.neural.NeuralRestorer`), the CLI's
choices and help, the weights files, adaptation and the worker plugins all
read it. A network class builds itself from its weights file's config
(``from_config``) and says what that config is (``config()``).

Examples
--------
>>> [spec.name for spec in list_networks("restorer")]
['fast', 'dbmid', 'bcr']
>>> network_spec("fast").routes["mixed"], network_spec("dbmid").routes["mixed"]
(('mixed',), ('motion', 'defocus'))
>>> network_spec("fast").weights_name("defocus")
'deblur_fast_defocus.safetensors'
>>> network_spec("blurnet").weights_name()
'blur_classifier.safetensors'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from wsi_deblur.errors import check_choice

#: DBMID's routes: the networks each blur type goes through, in order (mixed: DL_motion then DL_defocus).
DBMID_ROUTES: dict[str, tuple[str, ...]] = {
    "in_focus": (), "defocus": ("defocus",), "motion": ("motion",), "mixed": ("motion", "defocus")}


@dataclass(frozen=True)
class NetworkSpec:
    """One architecture: what it is called, what it does, where its class and weights are.

    Parameters
    ----------
    name : str
        What users type (``--restorer fast``) and weights configs record as ``architecture``.
    kind : {"restorer", "classifier"}
    cls : str
        ``"module:Class"``, imported on first use (so that naming networks loads no torch).
    summary : str
        One line for ``--help`` and :func:`list_networks`.
    routes : dict
        Restorers: the networks (``DL_<blur>``) each blur class goes through, in order.
    weights : str
        The weights file's name; ``{network}`` is replaced by the DL_ network's blur.
    training : dict
        Restorers: ``pipelines.train_restorer``'s defaults (loss, lr, schedule, steps, batch, directional).
    """

    name: str
    kind: str
    cls: str
    summary: str
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    weights: str = "deblur_{name}_{network}.safetensors"
    training: dict = field(default_factory=dict)

    @property
    def networks(self) -> tuple[str, ...]:
        """The DL_ networks the routes use, in the order they first appear (a classifier: one, unnamed)."""
        if self.kind == "classifier":
            return ("",)
        return tuple(dict.fromkeys(net for route in self.routes.values() for net in route))

    def weights_name(self, network: str = "") -> str:
        """The file name of DL_``network``'s weights (shipped, or in an ``adapt`` folder)."""
        return self.weights.format(name=self.name, network=network)

    def network_class(self) -> type:
        """The ``torch.nn.Module`` class (imports torch)."""
        module, name = self.cls.split(":")
        return getattr(importlib.import_module(module), name)


NETWORKS: dict[str, NetworkSpec] = {spec.name: spec for spec in (
    NetworkSpec("fast", "restorer", "wsi_deblur.nets.fast:FastDeblurNet",
                "light networks, DL_defocus, DL_motion and DL_mixed, a tenth of DBMID's arithmetic",
                {**DBMID_ROUTES, "mixed": ("mixed",)},
                training={"loss": "l1", "lr": 2e-3, "schedule": "one-cycle", "steps": 5000, "batch": 16,
                          "directional": True}),
    NetworkSpec("dbmid", "restorer", "wsi_deblur.nets.dbmid:DBMIDNet",
                "the DBMID paper's encoder-decoders, mixed blur through DL_motion then DL_defocus",
                DBMID_ROUTES,
                training={"loss": "mse", "lr": 1e-4, "schedule": "constant", "steps": 1500, "batch": 8,
                          "directional": False}),
    NetworkSpec("bcr", "restorer", "wsi_deblur.nets.bcr:BCRNet",
                "one learned deconvolution in the Fourier domain told each tile's PSF (after m-rBCR)",
                {"in_focus": (), "defocus": ("all",), "motion": ("all",), "mixed": ("all",)},
                training={"loss": "l1+ssim+fourier", "lr": 2e-3, "schedule": "one-cycle", "steps": 6000,
                          "batch": 16, "directional": False}),
    NetworkSpec("blurnet", "classifier", "wsi_deblur.nets.blurnet:BlurNet",
                "BlurNet: blur type, defocus distance, motion length and direction of a tile",
                weights="blur_classifier.safetensors"),
)}

#: The restorer architectures, in the order users see them.
RESTORER_ARCHITECTURES: tuple[str, ...] = tuple(n for n, s in NETWORKS.items() if s.kind == "restorer")


def list_networks(kind: str | None = None) -> list[NetworkSpec]:
    """Every registered network (of ``kind``, ``restorer`` or ``classifier``, if given)."""
    return [spec for spec in NETWORKS.values() if kind is None or spec.kind == kind]


def network_spec(name: str, kind: str | None = None) -> NetworkSpec:
    """The registered network ``name`` (of ``kind``, if given).

    Raises :class:`~wsi_deblur.errors.OptionError` naming the choices for an unknown one.
    """
    check_choice(f"{kind or 'network'} architecture", name, [s.name for s in list_networks(kind)])
    return NETWORKS[name]


def architecture_of_file(file_name: str) -> tuple[NetworkSpec, str] | None:
    """The network and DL_ name a weights file's name belongs to, or None for a name that is none of ours.

    Examples
    --------
    >>> spec, network = architecture_of_file("deblur_bcr_all.safetensors"); spec.name, network
    ('bcr', 'all')
    >>> architecture_of_file("notes.safetensors") is None
    True
    """
    for spec in NETWORKS.values():
        for network in spec.networks:
            if spec.weights_name(network) == file_name:
                return spec, network
    return None
