#!/usr/bin/env bash
# A shell pipeline: cut out every photo in a folder through stdin/stdout, one process per image, and put
# each cutout on a white background as JPEG. (For whole folders `cutout image in/ out/` is much faster; this
# shows the pipe form, e.g. for tools that stream images.)
#
#   bash examples/pipeline.sh examples/images out/
set -euo pipefail
in=${1:-examples/images}
out=${2:-out}
mkdir -p "$out"
for photo in "$in"/*.jpg; do
  name=$(basename "${photo%.*}")
  cutout image - --bg white --format jpg < "$photo" > "$out/$name.jpg"
  echo "$out/$name.jpg"
done
