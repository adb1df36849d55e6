"""Speech with exact phoneme timings from libespeak-ng (its synthesis events), through ctypes.

Debian / Ubuntu: `apt-get install espeak-ng` provides libespeak-ng.so.1.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np
import soxr

from ...errors import MoDAError

AUDIO_OUTPUT_SYNCHRONOUS = 0x02
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
POS_CHARACTER, CHARS_UTF8 = 1, 1
# espeak-ng reports each phoneme event later than the phoneme is heard: mouth targets built from its event times
# (`visemes.mouth_shapes`) correlate best with the speech's loudness envelope 0.81 frame (32 ms) late, while the
# same targets built from PocketSphinx's phones of the same audio peak at 0 lag; a generator trained on the event
# times moved the mouth after the recognised phones of real speech, and its vowel-vs-bilabial d on real speech
# peaked with its motion moved 0.5 frame (20 ms) earlier (all measured by benchmarks/mouth_timing.py). Phoneme
# times are moved earlier by the latter, the amount that mattered for the generator's output.
EVENT_LAG_SECONDS = 0.02


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Phoneme:
    symbol: str  # IPA
    start: float  # seconds
    end: float


@dataclass
class Utterance:
    text: str
    waveform: np.ndarray  # float32 mono at `sample_rate`
    sample_rate: int
    phonemes: list[Phoneme]

    @property
    def duration(self) -> float:
        return len(self.waveform) / self.sample_rate


class Espeak:
    """One synthesiser (libespeak-ng keeps global state: use one instance per process)."""

    def __init__(self, voice: str = "en-us"):
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as exc:
            raise MoDAError("libespeak-ng not found; install it (Debian/Ubuntu: apt-get install espeak-ng)") from exc
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                                      INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA)
        if self.sample_rate <= 0:
            raise MoDAError("espeak-ng failed to initialise; check that espeak-ng-data is installed")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str, int]] = []  # (type, phoneme, audio position in samples)
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: the library calls it
        self.lib.espeak_SetSynthCallback(self._callback)
        self.set_voice(voice)

    def _on_synth(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768)
        index = 0
        while events[index].type != EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == EVENT_PHONEME:
                symbol = bytes(event.id.string).split(b"\0")[0].decode("utf-8", "replace")
                self._events.append((event.type, symbol, event.sample))
            index += 1
        return 0

    def set_voice(self, voice: str) -> None:
        """A voice by name, with an optional variant (`en-us+f2`)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise MoDAError(f"espeak-ng has no voice {voice!r}")

    def set_rate(self, words_per_minute: int) -> None:
        self.lib.espeak_SetParameter(1, words_per_minute, 0)  # espeakRATE

    def set_pitch(self, pitch: int) -> None:
        self.lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH, 0..100

    def synthesize(self, text: str, sample_rate: int = 16000) -> Utterance:
        """Speech for `text`, resampled to `sample_rate`, with each phoneme's start and end in seconds (as heard:
        `EVENT_LAG_SECONDS` before espeak-ng's event)."""
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if status != 0:
            raise MoDAError(f"espeak-ng could not synthesise {text!r} (error {status})")
        self.lib.espeak_Synchronize()
        waveform = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        duration = len(waveform) / self.sample_rate
        starts = [(symbol, max(0.0, sample / self.sample_rate - EVENT_LAG_SECONDS)) for _, symbol, sample in self._events]
        phonemes = [Phoneme(symbol, start, end)
                    for (symbol, start), (_, end) in zip(starts, starts[1:] + [("", duration)]) if symbol and end > start]
        if sample_rate != self.sample_rate:
            waveform = soxr.resample(waveform, self.sample_rate, sample_rate, quality="HQ").astype(np.float32)
        return Utterance(text, waveform, sample_rate, phonemes)
