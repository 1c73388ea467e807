"""The data types every layer shares: variants, results and comparisons, examples and dataset
items, extracted answers and safe text.

They sit below the layers that build them (:mod:`lmwidgets.prompting`), run them
(:mod:`lmwidgets.run`) and render them (:mod:`lmwidgets.sharing`, :mod:`lmwidgets.notebook`):
nothing here imports those layers (``tests/test_layers.py`` checks it).
"""
