"""``python -m train ...`` is ``cutout train ...`` (for torchrun: ``torchrun --nproc_per_node 2 -m train``)."""

import sys

from cutout.cli.main import app

app(["train", *sys.argv[1:]])
