"""The two clocks of the system: audio samples and video frames.

Motion, audio features and video all run at the video frame rate; audio is decoded to 16 kHz mono.
"""

FPS = 25  # video frames (and motion vectors, and audio feature frames) per second
SAMPLE_RATE = 16000  # audio samples per second after decoding
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
DEFAULT_MAX_DURATION = 1800.0  # seconds of speech `moda generate` and the API accept unless told otherwise
