"""bincounter: count the items in a warehouse bin photo.

The package root imports nothing heavy: serving imports the torch-free modules
(labels, preprocess, modelcard, verification) and training adds the torch ones.
"""

__version__ = "0.1.0"
