"""Phone timings of speech with PocketSphinx (its wheel ships the en-us acoustic model, a word language model, a
pronouncing dictionary and a phone language model).

`recognize_phones` (what `moda score` hears) decodes the words first (the en-us language model) and then aligns
them to the audio, phone by phone: measured on real read speech with known words (../shared/real's three clips
with transcripts, five LibriVox sentences and three card names from PocketSphinx's test recordings, 36 s), the
mouth classes agree with the aligned transcript on 93 % of frames and M / B / P frames are found 60 times,
missed 7 and invented 8, against 73 % and 49 / 18 / 30 for all-phone decoding, which labels every 10 ms with the
likeliest phone with no words behind it. All-phone decoding remains where no word is heard or the words do not
align. The default front-end hears each block's words only where they fit its audio about as well as all-phone
decoding does (`heard_phones_in_window`, which says why). Speech in other languages still gets the nearest
English words or phones; the default front-end therefore also keeps language-independent cues (energy, voicing,
spectrum), see `moda.audio.speech`.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from multiprocessing.connection import Connection

import numpy as np

from ..errors import MoDAError
from ..timebase import FPS, SAMPLE_RATE

PHONE_RATE = 100  # PocketSphinx frames per second
HOP = SAMPLE_RATE // PHONE_RATE  # samples per PocketSphinx frame
SILENCE_FLOOR_DB = -50.0  # dBFS: quieter than this is silence, whatever the recording level
RECOGNITION_LEVEL_DB = -20.0  # dBFS the loud parts of speech are brought to before recognition

# Mouth classes of the CMU phone set, by how the lips and jaw move.
VISEME_CLASSES = {
    "silence": ("SIL", "+SPN+", "+NSN+", "+BREATH+", "+COUGH+", "+LAUGH+", "+SMACK+", "+UM+", "+UH+"),
    "bilabial": ("P", "B", "M"),
    "labiodental": ("F", "V"),
    "dental_alveolar": ("TH", "DH", "T", "D", "N", "L", "S", "Z"),
    "postalveolar": ("SH", "ZH", "CH", "JH"),
    "back": ("K", "G", "NG", "HH"),
    "rounded_consonant": ("W", "R"),
    "palatal": ("Y",),
    "open_vowel": ("AA", "AE", "AH", "AO", "AW", "AY"),
    "mid_vowel": ("EH", "ER", "EY"),
    "close_vowel": ("IH", "IY"),
    "rounded_vowel": ("OW", "OY", "UH", "UW"),
}
VISEMES = tuple(VISEME_CLASSES)
VISEME_OF = {phone: index for index, members in enumerate(VISEME_CLASSES.values()) for phone in members}
OPEN_VOWELS = frozenset(VISEME_CLASSES["open_vowel"] + ("EH",))
BILABIALS = frozenset(VISEME_CLASSES["bilabial"])


@dataclass(frozen=True)
class Phone:
    label: str  # CMU phone (e.g. "AA"), or "SIL" / a filler such as "+NSN+"
    start: float  # seconds
    end: float  # seconds, exclusive

    @property
    def viseme(self) -> int:
        return VISEME_OF.get(self.label, VISEME_OF["SIL"])


# (16 kHz window of an audio clip, the window's start in seconds into the clip) -> the window's phones, their times
# in seconds from the window's start: what the speech front-end asks for, block by block
PhoneSource = Callable[[np.ndarray, float], list[Phone]]


def _model_file(*parts: str) -> str:
    try:
        from pocketsphinx import get_model_path
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise MoDAError("phone recognition needs pocketsphinx; reinstall moda (pip install moda)") from exc
    return os.path.join(get_model_path(), "en-us", *parts)


@lru_cache(maxsize=1)
def _phone_decoder():
    from pocketsphinx import Decoder

    return Decoder(hmm=_model_file("en-us"), allphone=_model_file("en-us-phone.lm.bin"), lm=None, lw=2.0,
                   beam=1e-20, pbeam=1e-20, loglevel="FATAL")


@lru_cache(maxsize=1)
def _word_decoder():
    from pocketsphinx import Decoder

    # one forward pass over a pruned lexicon tree (no flat-lexicon pass, no lattice): on the 36 s of read speech
    # of the module's docstring, 3.3 s instead of 7.2 with PocketSphinx's defaults, M / B / P frames found /
    # missed / invented 60 / 7 / 8 instead of 59 / 8 / 5
    return Decoder(hmm=_model_file("en-us"), lm=_model_file("en-us.lm.bin"), dict=_model_file("cmudict-en-us.dict"),
                   fwdflat=False, bestpath=False, maxwpf=3, maxhmmpf=1000, loglevel="FATAL")


@lru_cache(maxsize=1)
def _aligner():
    from pocketsphinx import Decoder

    return Decoder(hmm=_model_file("en-us"), dict=_model_file("cmudict-en-us.dict"), lm=None, loglevel="FATAL")


def _decoded(decoder, pcm: np.ndarray) -> None:
    """One utterance through `decoder`; the feature front-end (its cepstral mean) adapts across utterances, and
    resetting it makes every call independent (measured: the same phones as a whole `reinit()`, which reloads
    the models, 90 ms a call)."""
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()


def speech_level_db(waveform: np.ndarray) -> float:
    """The level of the loud parts of speech: the 95th percentile of 10 ms RMS levels, in dBFS (at least
    SILENCE_FLOOR_DB, so that silence is never amplified into speech)."""
    steps = len(waveform) // HOP
    if steps == 0:
        return SILENCE_FLOOR_DB
    rms = np.sqrt((waveform[: steps * HOP].astype(np.float64).reshape(steps, HOP) ** 2).mean(1))
    return max(float(np.percentile(20 * np.log10(rms + 1e-6), 95)), SILENCE_FLOOR_DB)


def _standard_level_pcm(waveform: np.ndarray) -> np.ndarray | None:
    """int16 PCM with the loud parts of speech at RECOGNITION_LEVEL_DB, plus about one bit of dither (digital
    silence otherwise decodes as a fricative); None for silence."""
    waveform = np.nan_to_num(waveform.astype(np.float64))
    level = speech_level_db(waveform)
    if level <= SILENCE_FLOOR_DB:
        return None
    dither = np.random.default_rng(len(waveform)).normal(0, 1.0, len(waveform))
    pcm = np.clip(waveform * 10 ** ((RECOGNITION_LEVEL_DB - level) / 20) * 32767 + dither, -32768, 32767)
    return pcm.astype(np.int16)


def transcript_words(text: str) -> list[str]:
    """A transcript as the pronouncing dictionary's words: lower case, punctuation other than apostrophes gone."""
    return re.findall(r"[^\W_]+(?:'[^\W_]+)*", text.lower().replace("\u2019", "'"))


def checked_transcript(text: str) -> list[str]:
    """The words of a transcript, all known to the pronouncing dictionary, or a MoDAError saying what is not."""
    words = transcript_words(text)
    if not words:
        raise MoDAError(f"the transcript {text!r} has no words to align; give what is said, in English words")
    decoder = _aligner()
    unknown = sorted({word for word in words if decoder.lookup_word(word) is None})
    if unknown:
        raise MoDAError(f"the transcript has words the pronouncing dictionary does not know: {', '.join(unknown)}; "
                        "write numbers and abbreviations as spoken words")
    return words


@dataclass(frozen=True)
class _Decoding:
    phones: list[Phone]
    acoustic_score: int  # PocketSphinx's acoustic log-likelihood of the audio given these phones (higher: fits better)


def _aligned(pcm: np.ndarray, words: list[str]) -> _Decoding | None:
    """The phones of `words` (all in the dictionary) aligned to `pcm`, or None where they do not align."""
    decoder = _aligner()
    decoder.reinit_feat()
    try:
        decoder.set_align_text(" ".join(words))
        for phone_level in (False, True):  # words first, then phones within them
            if phone_level:
                decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(pcm.tobytes(), full_utt=True)
            decoder.end_utt()
        alignment = decoder.get_alignment()
    except RuntimeError:
        return None
    if alignment is None:
        return None
    phones = [Phone(phone.name, phone.start / PHONE_RATE, (phone.start + phone.duration) / PHONE_RATE)
              for word in alignment for phone in word]
    if all(phone.label in VISEME_CLASSES["silence"] for phone in phones):
        return None
    return _Decoding(phones, sum(phone.score for word in alignment for phone in word))


def _heard_words(pcm: np.ndarray) -> list[str]:
    decoder = _word_decoder()
    _decoded(decoder, pcm)
    hypothesis = decoder.hyp()
    return hypothesis.hypstr.split() if hypothesis is not None else []


def _all_phones(pcm: np.ndarray) -> _Decoding:
    decoder = _phone_decoder()
    _decoded(decoder, pcm)
    segments = list(decoder.seg())
    return _Decoding([Phone(s.word, s.start_frame / PHONE_RATE, (s.end_frame + 1) / PHONE_RATE) for s in segments],
                     sum(s.ascore for s in segments))


def align_phones(waveform: np.ndarray, text: str, sample_rate: int = SAMPLE_RATE) -> list[Phone]:
    """Phones of 16 kHz speech whose words are known: PocketSphinx's forced alignment of `text` (English words of
    CMUdict; numbers written as words) with the audio."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"phone alignment takes {SAMPLE_RATE} Hz audio, not {sample_rate}")
    words = checked_transcript(text)
    pcm = _standard_level_pcm(waveform)
    if pcm is None:
        raise MoDAError("the audio is silent; there is no speech to align the transcript with")
    aligned = _aligned(pcm, words)
    if aligned is None:
        raise MoDAError("the transcript could not be aligned with the audio; is it what is said?")
    return aligned.phones


def recognize_phones(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, words: bool = True) -> list[Phone]:
    """Phones of 16 kHz mono float speech, in time order: the recognised words' phones aligned to it, or where no
    word is heard or they do not align (or `words` is False), all-phone decoding's. The speech is brought to a
    standard level first, so the recording level does not change what is heard."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"phone recognition takes {SAMPLE_RATE} Hz audio, not {sample_rate}")
    pcm = _standard_level_pcm(waveform)
    if pcm is None:
        return [Phone("SIL", 0.0, len(waveform) / sample_rate)]
    if words and (heard := _heard_words(pcm)) and (aligned := _aligned(pcm, heard)) is not None:
        return aligned.phones
    return _all_phones(pcm).phones


def all_phones_in_window(window: np.ndarray, start: float) -> list[Phone]:
    """All-phone decoding of each window, as a `PhoneSource`: what the synthetic corpus's recognised channels are
    made with (the shipped model was trained on them; `heard_phones_in_window` is what the default mode hears)."""
    return recognize_phones(window, words=False)


# How much worse, per 10 ms, the recognised words' alignment may fit a window's audio than all-phone decoding
# (which fits best, being free to pick any phone sequence) before the words are not believed, in PocketSphinx's
# acoustic score units. Measured per 3.5 s window: real read speech -6 to -18 (a telephone line -13 to -22),
# espeak-ng speech -11 to -35, mostly -20 to -29 (the English language model turns it into other words).
WORD_FIT_MARGIN = 20.0


def heard_phones_in_window(window: np.ndarray, start: float) -> list[Phone]:
    """The default front-end's `PhoneSource`: the phones of the words recognised in the window, aligned to it,
    where they fit its audio within WORD_FIT_MARGIN of all-phone decoding's; else all-phone decoding's (it
    hears the window only). Measured block by block against the aligned transcripts of the module docstring's
    real read speech, M / B / P frames found / missed / invented 58 / 9 / 7, mouth class right on 93 % of
    frames, against 44 / 23 / 28 and 71 % for all-phone decoding; on clean espeak-ng speech with exact phoneme
    timings (12 clips) 46 / 77 / 34 and 50 %, against 45 / 78 / 33 and 49 % (words alone: 33 / 90 / 28, 48 %)."""
    pcm = _standard_level_pcm(window)
    if pcm is None:
        return [Phone("SIL", 0.0, len(window) / SAMPLE_RATE)]
    phones = _all_phones(pcm)
    heard = _heard_words(pcm)
    aligned = _aligned(pcm, heard) if heard else None
    if aligned is not None and aligned.acoustic_score - phones.acoustic_score >= -WORD_FIT_MARGIN * len(pcm) / HOP:
        return aligned.phones
    return phones.phones


@dataclass(frozen=True)
class KnownPhones:
    """The `PhoneSource` of a clip whose phones are known (its transcript aligned to it, `align_phones`): each
    window gets the phones that overlap it, instead of phones recognised from it."""

    phones: tuple[Phone, ...]  # times in seconds into the clip

    def __call__(self, window: np.ndarray, start: float) -> list[Phone]:
        end = start + len(window) / SAMPLE_RATE
        return [Phone(p.label, p.start - start, p.end - start) for p in self.phones if p.end > start and p.start < end]


class PhonesAhead:
    """A `PhoneSource` that asks `source` for the phones of windows known in advance, in order, in a thread of
    its own, while its caller does other work; a call for one of them waits for its answer, any other window is
    passed to `source` directly. `close()` drops the windows not yet begun."""

    def __init__(self, source: PhoneSource, windows: Iterable[tuple[np.ndarray, float]]):
        self._source = source
        self._ahead = {(start, len(window)): (window, Future[list[Phone]]()) for window, start in windows}
        self._worker = threading.Thread(target=self._work, args=(list(self._ahead.items()),), daemon=True,
                                        name="moda-phones-ahead")
        self._worker.start()

    def _work(self, ahead: list[tuple[tuple[float, int], tuple[np.ndarray, Future[list[Phone]]]]]) -> None:
        for (start, _), (window, answer) in ahead:
            if not answer.set_running_or_notify_cancel():
                continue
            try:
                answer.set_result(self._source(window, start))
            except BaseException as exc:  # raised where the answer is asked for
                answer.set_exception(exc)

    def __call__(self, window: np.ndarray, start: float) -> list[Phone]:
        known = self._ahead.pop((start, len(window)), None)
        if known is not None and np.array_equal(known[0], window):
            return known[1].result()
        return self._source(window, start)

    def close(self) -> None:
        for _, answer in self._ahead.values():
            answer.cancel()
        self._ahead.clear()

    def __enter__(self) -> PhonesAhead:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _serve_recognition(connection: Connection) -> None:
    """The recogniser process: waveforms in, phones out, until its parent closes the pipe or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    _phone_decoder(), _word_decoder(), _aligner()  # the models load before the first request comes
    while True:
        try:
            connection.send(heard_phones_in_window(connection.recv(), 0.0))
        except (EOFError, OSError):
            return


class PhoneRecognizerProcess:
    """`heard_phones_in_window` in a process of its own. PocketSphinx holds the GIL while it decodes (measured: a
    thread spinning beside a 4 s decode ran 4 % of the loops it runs alone), so decoding in one of the pipeline's
    threads stalls the other; from here it does not. The process starts with `start()` or the first call (spawn:
    it imports numpy and PocketSphinx only, and loads the models while its parent goes on) and ends with
    `close()` or with its parent."""

    def __init__(self) -> None:
        self._connection: Connection | None = None
        self._lock = threading.Lock()  # one request in flight at a time

    def start(self) -> None:
        with self._lock:
            self._started()

    def _started(self) -> Connection:
        if self._connection is None:
            self._connection, child = get_context("spawn").Pipe()
            get_context("spawn").Process(target=_serve_recognition, args=(child,), daemon=True,
                                         name="moda-phones").start()
            child.close()
        return self._connection

    def __call__(self, waveform: np.ndarray, start: float = 0.0) -> list[Phone]:
        """A `PhoneSource`: the phones `heard_phones_in_window` hears in `waveform` (`start`, where it begins in
        its clip, is not needed)."""
        with self._lock:
            connection = self._started()
            try:
                connection.send(waveform)
                return connection.recv()
            except BaseException as exc:
                # the next request gets a fresh process, never the answer this one left behind (an interrupt)
                self._connection = None
                connection.close()
                if isinstance(exc, (EOFError, OSError)):
                    raise MoDAError("the phone recogniser process stopped; run again") from exc
                raise

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


_SHARED_RECOGNIZER = PhoneRecognizerProcess()


def shared_phone_recognizer() -> PhoneRecognizerProcess:
    """The recogniser process this process's default pipelines share (one process, one copy of the models).
    Starting it before the pipeline's own imports lets it load its models meanwhile (`moda generate` does)."""
    return _SHARED_RECOGNIZER


def viseme_track(phones: list[Phone], frames: int, rate: int = FPS) -> np.ndarray:
    """(frames,) viseme class of the phone under each frame's centre (silence where none)."""
    track = np.full(frames, VISEME_OF["SIL"], dtype=np.int64)
    centres = (np.arange(frames) + 0.5) / rate
    for phone in phones:
        track[(centres >= phone.start) & (centres < phone.end)] = phone.viseme
    return track


def phone_track(phones: list[Phone], frames: int, rate: int = FPS) -> list[str]:
    """The phone label under each frame's centre ("SIL" where none)."""
    labels = ["SIL"] * frames
    for phone in phones:
        for frame in range(max(int(phone.start * rate), 0), min(int(np.ceil(phone.end * rate)), frames)):
            if phone.start <= (frame + 0.5) / rate < phone.end:
                labels[frame] = phone.label
    return labels
