"""Cut out a folder of product photos from Python and lay each cutout on a brand colour.

    python examples/batch.py examples/images out/

Shows the library: one session for many images, the same options object the CLI uses, and the per-file
outcomes of the batch pipeline (bad files are reported, the rest still run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cutout
from cutout.batch import Job, process_images
from cutout.options import RemoveOptions


def main(source: Path, target: Path) -> int:
    session = cutout.new_session("u2netp", threads=1)  # many images: one thread per image, several at once
    options = cutout.make_options(RemoveOptions(), bg="#f4f1ea")  # a warm off-white studio background
    jobs = [Job(photo, target / f"{photo.stem}.jpg", "jpg") for photo in sorted(source.glob("*.jpg"))]
    failed = 0
    for outcome in process_images(jobs, session, options, workers=2):
        print(f"{outcome.status:7} {outcome.job.name} {outcome.reason}")
        failed += outcome.status == "failed"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
