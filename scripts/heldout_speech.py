"""Real read speech with known words that ../shared/real does not hold, for `benchmarks/real_speech.py --heldout`.

    python scripts/heldout_speech.py OUT_DIR

PocketSphinx's source package on PyPI carries its test recordings with their transcripts: five sentences of a
LibriVox reading of "Sense and Sensibility" (public domain; 64 kb/s MP3 decoded to 16 kHz, 3-7 s each) and
three card names ("ten of clubs", "four queen of clubs", "seven of clubs"; 1-2 s). This downloads that package
with pip (registry access only) and writes each recording as NAME.wav beside NAME.txt, its words, and
PocketSphinx's BSD licence as LICENSE-pocketsphinx.txt.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "5.1.1"
CARD_NUMBERS = ("001", "002", "003")  # 004, "five five", has no M / B / P and no open vowel to speak of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        subprocess.run([sys.executable, "-m", "pip", "download", f"pocketsphinx=={VERSION}", "--no-binary", ":all:",
                        "--no-deps", "--quiet", "-d", temporary], check=True)
        with tarfile.open(Path(temporary) / f"pocketsphinx-{VERSION}.tar.gz") as archive:
            archive.extractall(temporary, filter="data")
        source = Path(temporary) / f"pocketsphinx-{VERSION}"
        data = source / "test" / "data"
        for recording in sorted((data / "librivox").glob("*.wav")):
            name = "librivox" + recording.stem.rsplit("-", 1)[1]
            shutil.copy(recording, out / f"{name}.wav")
            (out / f"{name}.txt").write_text(recording.with_suffix(".txt").read_text().strip() + "\n")
        lines = (data / "cards" / "cards.transcription").read_text().splitlines()
        words = {m.group(2): m.group(1).strip() for m in (re.match(r"<s>(.*)</s> \((\d+)\)", line) for line in lines) if m}
        for number in CARD_NUMBERS:
            shutil.copy(data / "cards" / f"{number}.wav", out / f"cards{number}.wav")
            (out / f"cards{number}.txt").write_text(words[number] + "\n")
        shutil.copy(source / "LICENSE", out / "LICENSE-pocketsphinx.txt")
    print(f"{len(list(out.glob('*.wav')))} recordings with their words in {out}")


if __name__ == "__main__":
    main()
