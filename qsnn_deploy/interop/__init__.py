"""Interoperation with other SNN tools through NIR (https://neuroir.org).

* :mod:`.nir_import`: graphs written by snnTorch, Norse, Sinabs, Rockpool (or by hand) imported as
  frozen integer nets (``nir_graph_to_torch``, ``nir_graph_to_frozen``, ``load_nir``);
* :mod:`.rockpool_nir`: Rockpool torch networks written with their recurrent weights (``rockpool_to_nir``;
  Rockpool 3.1's own ``to_nir`` drops them);
* :mod:`.nir_peers`: our own ``.nir`` files run in those tools' importers (``run_peer``,
  ``run_snntorch_import``) and compared spike for spike with the NumPy reference.

Our own export and its bit-exact read-back stay in :mod:`qsnn_deploy.exporters.nir_export`.
"""
