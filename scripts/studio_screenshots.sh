#!/usr/bin/env bash
# The studio page's four tab screenshots (docs/studio_{dfi,fusion,style,dtn}.png): the browser test, run against trained runs.
#   bash scripts/studio_screenshots.sh [RUNS]    # RUNS holds fusion/*, fast_style/*, dtn/* (default runs)
# Train them first (minutes each on a CPU):
#   python -m experiments.train_dtn --steps 200 --no-ablations --out runs/dtn/default
#   python -m experiments.train_fusion --out runs/fusion/default
#   python -m experiments.train_fast_style --out runs/fast_style/default
set -euo pipefail
cd "$(dirname "$0")/.."
DFIJAX_STUDIO_RUNS="$(realpath "${1:-runs}")" DFIJAX_SCREENSHOTS=docs \
  python -m pytest -q -p no:xdist -o addopts="" tests/test_studio.py -k browser
