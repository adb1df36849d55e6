import subprocess
import sys

CHECK = """
import sys
{before}
from moda.face.landmarks import FaceMeshDetector
import numpy as np
with FaceMeshDetector() as detector:
    assert detector.detect(np.zeros((64, 64, 3), np.uint8)) == []
print("pyplot loaded by the detector:", "matplotlib.pyplot" in sys.modules)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
figure = plt.figure()
assert hasattr(figure, "savefig")
print("real pyplot after:", plt.__name__)
"""


def _run(before: str) -> str:
    result = subprocess.run([sys.executable, "-c", CHECK.format(before=before)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_mediapipe_loads_without_matplotlib_and_leaves_the_real_one_importable():
    out = _run("")
    assert "pyplot loaded by the detector: False" in out
    assert "real pyplot after: matplotlib.pyplot" in out


def test_a_program_that_already_uses_matplotlib_keeps_it():
    out = _run("import matplotlib.pyplot")
    assert "pyplot loaded by the detector: True" in out
    assert "real pyplot after: matplotlib.pyplot" in out
