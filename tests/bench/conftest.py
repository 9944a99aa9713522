import sys
from pathlib import Path

# The benchmarks are scripts beside each other (bench/), not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
