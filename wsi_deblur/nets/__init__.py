"""The networks: every architecture, its registry entry, weights files and run-time (names imported on first use).

One home for each fact about a network: :mod:`~wsi_deblur.nets.registry`
(name, kind, routes, weights file), one module per architecture
(:mod:`~wsi_deblur.nets.fast`, :mod:`~wsi_deblur.nets.dbmid`,
:mod:`~wsi_deblur.nets.bcr`, :mod:`~wsi_deblur.nets.blurnet`), weights I/O
(:mod:`~wsi_deblur.nets.files`), loading and running
(:mod:`~wsi_deblur.nets.runtime`, :mod:`~wsi_deblur.nets.cpu_path`).
Restorers that use them live in :mod:`wsi_deblur.restore`, classifiers in
:mod:`wsi_deblur.classify`.

Examples
--------
>>> from wsi_deblur.nets import list_networks
>>> [(spec.name, spec.kind) for spec in list_networks()]
[('fast', 'restorer'), ('dbmid', 'restorer'), ('bcr', 'restorer'), ('blurnet', 'classifier')]
"""

from wsi_deblur.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "NETWORKS": "registry", "NetworkSpec": "registry", "list_networks": "registry", "network_spec": "registry",
    "build_network": "runtime", "network_from_weights": "runtime", "read_config": "files",
    "save_network": "files",
})
