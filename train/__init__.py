"""cutout's training package: data layouts, augmentation, losses, metrics, the loop, checkpoints, export.

Installed with ``pip install 'cutout[train]'``; ``cutout train`` is its command. ``import train`` needs torch;
``cutout`` itself never imports this package except inside the ``train`` command.
"""
