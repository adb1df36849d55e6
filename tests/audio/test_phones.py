import numpy as np
import pytest

from moda.audio.phones import (
    BILABIALS,
    OPEN_VOWELS,
    VISEMES,
    PhoneRecognizerProcess,
    PhonesAhead,
    all_phones_in_window,
    heard_phones_in_window,
    phone_track,
    recognize_phones,
    viseme_track,
)
from moda.media.audio import load_audio
from tests.helpers import SHARED


@pytest.fixture(scope="module")
def go_forward():
    return load_audio(SHARED / "real" / "speech" / "goforward.wav")


def test_real_speech_gets_its_phones(go_forward):
    """ "go forward ten meters": the recogniser hears the words' sounds in order."""
    phones = recognize_phones(go_forward)
    labels = [p.label for p in phones]
    assert labels[0] == "SIL" and labels[-1] == "SIL"
    assert labels.index("G") < labels.index("F") < labels.index("T")
    assert all(a.end <= b.start + 1e-9 for a, b in zip(phones, phones[1:]))
    assert abs(phones[-1].end - len(go_forward) / 16000) < 0.02


def test_recognition_decodes_the_words_and_falls_back_to_phones_where_they_do_not_align(go_forward, monkeypatch):
    from moda.audio import phones as module
    from moda.audio.phones import align_phones

    said = [p.label for p in align_phones(go_forward, "go forward ten meters") if p.label != "SIL"]
    assert [p.label for p in recognize_phones(go_forward) if p.label != "SIL"] == said
    monkeypatch.setattr(module, "_aligned", lambda pcm, words: None)
    phones = recognize_phones(go_forward)  # all-phone decoding: every 10 ms its likeliest phone, no words
    assert [p.label for p in phones if p.label != "SIL"] != said and "M" not in [p.label for p in phones]
    assert phones[0].start == 0 and abs(phones[-1].end - len(go_forward) / 16000) < 0.02
    monkeypatch.undo()
    assert all_phones_in_window(go_forward, 0.0) == phones  # the corpus's phone source


def test_the_default_front_end_hears_words_where_they_fit_the_audio_and_phones_where_they_do_not(go_forward, monkeypatch):
    """Real speech: the words' phones ("meters" closes on its M, which all-phone decoding misses). The espeak
    sample's first block: the English words heard in it fit its audio badly, so all-phone decoding's phones."""
    from moda.audio import phones as module
    from moda.audio.speech import SpeechFeatureExtractor
    from moda.samples import sample_path

    heard = heard_phones_in_window(go_forward, 0.0)
    assert heard == recognize_phones(go_forward) and "M" in [p.label for p in heard]
    assert "M" not in [p.label for p in all_phones_in_window(go_forward, 0.0)]
    espeak, start = next(SpeechFeatureExtractor().phone_windows(load_audio(sample_path("speech.wav"))))
    assert heard_phones_in_window(espeak, start) == all_phones_in_window(espeak, start)
    assert recognize_phones(espeak) != all_phones_in_window(espeak, start)  # words were heard, and aligned
    monkeypatch.setattr(module, "WORD_FIT_MARGIN", 0.0)  # words never fit as well as free phones
    assert heard_phones_in_window(go_forward, 0.0) == all_phones_in_window(go_forward, 0.0)


def test_recognition_does_not_depend_on_earlier_calls(go_forward):
    first = recognize_phones(go_forward[:24000])
    recognize_phones(go_forward[20000:])
    assert recognize_phones(go_forward[:24000]) == first


class KeyboardInterruptOnPickle:
    def __reduce__(self):
        raise KeyboardInterrupt


def test_the_recogniser_process_hears_what_this_one_does(go_forward):
    recognizer = PhoneRecognizerProcess()
    try:
        assert recognizer(go_forward) == heard_phones_in_window(go_forward, 0.0)
        assert recognizer(go_forward[:24000]) == heard_phones_in_window(go_forward[:24000], 0.0)
        recognizer.close()
        assert recognizer(go_forward[8000:]) == heard_phones_in_window(go_forward[8000:], 0.5)  # started again
        recognizer._connection.send(go_forward)  # an interrupted request: its answer is still in the pipe
        with pytest.raises(KeyboardInterrupt):
            recognizer(KeyboardInterruptOnPickle())
        assert recognizer(go_forward[:24000]) == heard_phones_in_window(go_forward[:24000], 0.0)  # not the stale one
    finally:
        recognizer.close()


def test_phones_ahead_answers_the_windows_it_was_given_in_order_and_passes_others_through():
    import threading

    from moda.audio.phones import Phone

    ahead_asked, asked_now, release = [], [], threading.Event()

    def source(window, start):
        here = threading.current_thread() is threading.main_thread()
        (asked_now if here else ahead_asked).append(start)
        if window[0] == 7:
            release.wait(10)  # the second window is slow: the others are still waiting when the rest is dropped
        return [Phone("AA", 0.0, len(window) / 16000)]

    windows = [(np.full(1600 * (i + 1), 6 + i, np.float32), float(i)) for i in range(4)]
    ahead = PhonesAhead(source, windows)
    assert ahead(*windows[0]) == [Phone("AA", 0.0, 0.1)] and asked_now == []
    assert ahead(np.ones(800, np.float32), 0.0) == [Phone("AA", 0.0, 0.05)]  # not given ahead: asked now
    assert ahead(np.zeros(3200, np.float32), 1.0) == [Phone("AA", 0.0, 0.2)]  # same place, other audio: asked now
    assert asked_now == [0.0, 1.0]
    ahead.close()
    release.set()
    ahead._worker.join(10)
    assert ahead_asked == [0.0, 1.0]  # the windows not begun were dropped, never decoded


def test_tracks_label_every_frame(go_forward):
    phones = recognize_phones(go_forward)
    frames = len(go_forward) // 640
    labels, visemes = phone_track(phones, frames), viseme_track(phones, frames)
    assert len(labels) == frames and visemes.shape == (frames,) and visemes.max() < len(VISEMES)
    assert labels[0] == "SIL" and any(label in OPEN_VOWELS for label in labels)
    assert BILABIALS == {"M", "B", "P"}


def test_alignment_follows_the_transcript_and_refuses_silence(go_forward):
    from moda.audio.phones import align_phones
    from moda.errors import MoDAError

    phones = align_phones(go_forward, "Go forward ten meters.")
    said = [p.label for p in phones if p.label != "SIL"]
    assert said == ["G", "OW", "F", "AO", "R", "W", "ER", "D", "T", "EH", "N", "M", "IY", "T", "ER", "Z"]
    assert all(a.start <= b.start for a, b in zip(phones, phones[1:]))
    with pytest.raises(MoDAError, match="silent"):
        align_phones(np.zeros(16000, np.float32), "go forward")


def test_known_phones_are_served_per_window_in_its_own_time():
    from moda.audio.phones import KnownPhones, Phone

    known = KnownPhones((Phone("SIL", 0.0, 1.0), Phone("M", 1.0, 1.1), Phone("AA", 1.1, 1.4), Phone("SIL", 1.4, 3.0)))
    window = np.zeros(8000, np.float32)  # 0.5 s
    served = known(window, 0.95)  # 0.95 s to 1.45 s of the clip
    assert [p.label for p in served] == ["SIL", "M", "AA", "SIL"]
    assert served[1].start == pytest.approx(0.05) and served[2].end == pytest.approx(0.45)
    assert known(window, 5.0) == []  # after the clip
