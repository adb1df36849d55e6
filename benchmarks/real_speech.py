"""The default mode on real speech and real photos: `moda score` on every face x speech pair in ../shared/real.

    python benchmarks/real_speech.py [--real ../shared/real] [--heldout DIR] [--report docs/eval_report.json]
                                     [--keep DIR]

Prints one row per pair and the totals (open-vowel and bilabial shares pooled over all frames of a face, the
other figures averaged), and with --report writes them into the report's "real_speech" section. Clips whose
words are known (../shared/real/README.md) are also scored with their transcript aligned instead of their phones
recognised ("scored with the transcript" rows: recognition can hear M / B / P that were not said, which the
figures then count), and generated with their transcript (`moda generate --text`) and scored with it. With
--heldout DIR (`python scripts/heldout_speech.py DIR` writes such a folder), every portrait also speaks each
NAME.wav there, generated as a new user would and scored both with recognised phones and with NAME.txt's words.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from moda import GenerateOptions, Pipeline
from moda.audio.phones import BILABIALS, VISEME_CLASSES, Phone, align_phones, phone_track
from moda.evaluation.score import MouthTrack, score_tracks, track_mouth
from moda.face.landmarks import FaceMeshDetector
from moda.media.audio import load_audio
from moda.media.video import read_frames_at
from moda.timebase import FPS, SAMPLES_PER_FRAME

# what is said in the clips of ../shared/real/speech whose words its README gives
TRANSCRIPTS = {"goforward.wav": "go forward ten meters", "something.wav": "go somewhere and do something",
               "cards005.wav": "eight of spades four of clubs seven of hearts"}
FIGURES = ("envelope_corr", "vowel_bilabial_d", "open_vowel_open_share", "bilabial_closed_share", "identity_drift",
           "jitter")


def summarize(rows: list[dict]) -> dict[str, float]:
    """Shares pooled over all frames (weighted by each clip's frame count), other figures averaged over clips
    that have them (a clip without bilabials has no bilabial d)."""
    weights = {"open_vowel_open_share": "open_vowel_frames", "bilabial_closed_share": "bilabial_frames"}
    out = {}
    for figure in FIGURES:
        rows_with = [r for r in rows if not np.isnan(r[figure])]
        if figure in weights:
            out[figure] = float(np.average([r[figure] for r in rows_with], weights=[r[weights[figure]] for r in rows_with]))
        else:
            out[figure] = float(np.mean([r[figure] for r in rows_with]))
    return out


# opening of each mouth class for `phone_perfect_track`, in units of its widest (0.3 IOD)
PERFECT_OPENING = {"open_vowel": 1.0, "mid_vowel": 0.7, "close_vowel": 0.45, "rounded_vowel": 0.5, "bilabial": 0.0,
                   "labiodental": 0.15, "silence": 0.0}


def phone_perfect_track(phones: list[Phone], frames: int) -> MouthTrack:
    """A mouth that does what the words' aligned phones say: each mouth class's opening (`PERFECT_OPENING`, other
    consonants 0.3), blended with the neighbouring frames (co-articulation), lips closed on every M / B / P."""
    opening_of = {p: PERFECT_OPENING.get(c, 0.3) * 0.3 for c, members in VISEME_CLASSES.items() for p in members}
    labels = phone_track(phones, frames)
    opening = np.array([opening_of.get(p, 0.0) for p in labels])
    opening = np.convolve(np.pad(opening, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    opening[[p in BILABIALS for p in labels]] = 0.0
    return MouthTrack(opening, np.zeros((frames, 1, 2)), frames)


def pairs_met(rows: list[dict]) -> str:
    """How many pairs meet all four of issue 15's targets, and how many have M / B / P to be measured on."""
    met = sum(r["vowel_bilabial_d"] >= 2.5 and r["open_vowel_open_share"] >= 0.7 and r["bilabial_closed_share"] >= 0.5
              and r["envelope_corr"] >= 0.5 for r in rows)
    measurable = sum(not np.isnan(r["vowel_bilabial_d"]) for r in rows)
    return f"{met} of {len(rows)} pairs meet all four targets ({measurable} have M / B / P frames to measure d on)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", default=str(Path(__file__).resolve().parents[2] / "shared" / "real"))
    parser.add_argument("--heldout", help="a folder of further speech, NAME.wav beside NAME.txt (its words), e.g. "
                                          "from scripts/heldout_speech.py")
    parser.add_argument("--report", help="a report JSON to add the real_speech section to")
    parser.add_argument("--keep", help="a folder to keep the videos in (FACE_SPEECH.mp4), to look at them")
    args = parser.parse_args()
    real = Path(args.real)
    faces = sorted((real / "faces").glob("*.jpg"))
    # (clip, its words or None, whether it is held out)
    clips = [(clip, TRANSCRIPTS.get(clip.name), False) for clip in sorted((real / "speech").glob("*.wav"))]
    if args.heldout:
        clips += [(clip, clip.with_suffix(".txt").read_text().strip(), True)
                  for clip in sorted(Path(args.heldout).glob("*.wav"))]
    pipeline = Pipeline.default()
    rows: list[dict] = []
    transcript_rows: list[dict] = []  # generated as a new user would (phones recognised), scored with the transcript
    given_rows: list[dict] = []  # generated with the transcript (`moda generate --text`), scored with it
    heldout_rows: list[dict] = []  # held-out speech, generated as a new user would, scored both ways
    perfect_rows: list[dict] = []  # a phone-perfect mouth (no video) on each clip with words, scored as videos are
    # each clip's speech and, where its words are known, their phones aligned to it
    speech = {clip: (waveform := load_audio(clip), align_phones(waveform, text) if text else None)
              for clip, text, _ in clips}
    for clip, (waveform, aligned) in speech.items():
        if aligned is not None:
            for phones in (None, aligned):
                score = score_tracks(phone_perfect_track(aligned, len(waveform) // SAMPLES_PER_FRAME), waveform, phones)
                perfect_rows.append({"speech": clip.name, "phones_from": score.phones_from,
                                     **{f: getattr(score, f) for f in FIGURES[:4]}})
    started = time.perf_counter()
    print(f"{'face':<8} {'speech':<14} " + " ".join(f"{f:>22}" for f in FIGURES))
    with tempfile.TemporaryDirectory() as temporary, FaceMeshDetector() as detector:
        folder = Path(args.keep or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        for face in faces:
            for clip, text, heldout in clips:
                waveform, aligned = speech[clip]
                # (video name suffix, transcript it is generated with, rows, phones it is scored with, label)
                if heldout:
                    runs = [("", None, heldout_rows, None, "  (held out)"),
                            ("", None, heldout_rows, aligned, "  (held out, scored with the transcript)")]
                else:
                    runs = [("", None, rows, None, "")]
                    if text:
                        runs += [("", None, transcript_rows, aligned, "  (scored with the transcript)"),
                                 ("_text", text, given_rows, aligned, "  (generated and scored with the transcript)")]
                tracks = {}
                for suffix, transcript, chosen, phones, label in runs:
                    if suffix not in tracks:
                        out = pipeline.generate(face, clip, folder / f"{face.stem}_{clip.stem}{suffix}.mp4",
                                                GenerateOptions(seed=0, transcript=transcript), overwrite=True,
                                                progress=False)
                        tracks[suffix] = track_mouth(read_frames_at(out, FPS), detector)
                    score = score_tracks(tracks[suffix], waveform, phones)
                    row = {"face": face.name, "speech": clip.name, "phones_from": score.phones_from,
                           "open_vowel_frames": score.open_vowel_frames, "bilabial_frames": score.bilabial_frames,
                           **{f: getattr(score, f) for f in FIGURES}}
                    chosen.append(row)
                    print(f"{face.stem:<8} {clip.stem:<14} " + " ".join(f"{row[f]:>22.3f}" for f in FIGURES) + label,
                          flush=True)
    per_face = {face.name: summarize([r for r in rows if r["face"] == face.name]) for face in faces}
    print("\nper face (shares pooled over all frames, the rest averaged over the speech clips):")
    for name, figures in per_face.items():
        print(f"{name:<8} " + " ".join(f"{figures[f]:>22.3f}" for f in FIGURES))
    overall = {f: float(np.nanmean([v[f] for v in per_face.values()])) for f in FIGURES}
    print("all      " + " ".join(f"{overall[f]:>22.3f}" for f in FIGURES))
    print(f"\n../shared/real, phones recognised: {pairs_met(rows)}")
    print(f"  its clips with known words, scored with the transcript: {pairs_met(transcript_rows)}")
    print(f"  ... generated and scored with the transcript: {pairs_met(given_rows)}")
    if heldout_rows:
        for phones_from in ("recognition", "transcript"):
            chosen = [r for r in heldout_rows if r["phones_from"] == phones_from]
            print(f"held-out speech, scored with {phones_from}: {pairs_met(chosen)}; "
                  + ", ".join(f"{f} {value:.3f}" for f, value in summarize(chosen).items()))
    print("\na phone-perfect mouth (`phone_perfect_track`) on each clip with known words, scored with recognised "
          "phones / with the transcript:")
    for row, by_text in zip(perfect_rows[::2], perfect_rows[1::2]):
        print(f"  {row['speech']:<18} " + "   ".join(f"{f} {row[f]:.2f} / {by_text[f]:.2f}" for f in FIGURES[:4]))
    print("\nclips with known words, over all faces: generated / scored with recognised phones or the transcript")
    for clip in sorted({r["speech"] for r in transcript_rows}):
        for label, chosen in (("rec / rec", rows), ("rec / text", transcript_rows), ("text / text", given_rows)):
            of_clip = [r for r in chosen if r["speech"] == clip]
            d = [r["vowel_bilabial_d"] for r in of_clip if not np.isnan(r["vowel_bilabial_d"])]
            closed = [r["bilabial_closed_share"] for r in of_clip if not np.isnan(r["bilabial_closed_share"])]
            print(f"  {clip:<14} {label:<11} M/B/P frames {of_clip[0]['bilabial_frames']:>3}   d "
                  + (f"{min(d):.2f}-{max(d):.2f}" if d else "n/a") + "   closed "
                  + (f"{min(closed):.2f}-{max(closed):.2f}" if closed else "n/a"))
    videos = len(rows) + len(given_rows) + len(heldout_rows) // 2
    print(f"\n{videos} videos generated and scored in {time.perf_counter() - started:.0f} s")
    if args.report:
        path = Path(args.report)
        report = json.loads(path.read_text()) if path.is_file() else {}
        report["real_speech"] = {"overall": overall, "per_face": per_face, "pairs": rows,
                                 "pairs_scored_with_transcripts": transcript_rows,
                                 "pairs_generated_with_transcripts": given_rows,
                                 "heldout_pairs": heldout_rows, "phone_perfect_mouth": perfect_rows}
        path.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
