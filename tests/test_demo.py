"""`make demo` runs `python -m ttsfleet.demo`: it must end with the right words in out/demo.wav."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.recognition import TEST_PHRASES, recognise
from ttsfleet import wavfile
from ttsfleet.protocol import Encoding

DEMO_SENTENCE = "the speech fleet is ready"


def test_demo_once_writes_a_wav_that_says_the_sentence(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ttsfleet.demo"],
        cwd=tmp_path,
        env={**os.environ, "DEMO_ONCE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    fmt, pcm = wavfile.parse((tmp_path / "out" / "demo.wav").read_bytes())
    assert (fmt.encoding, fmt.sample_rate) == (Encoding.LINEAR16, 24000)
    assert recognise(pcm, fmt.encoding, fmt.sample_rate, (*TEST_PHRASES, DEMO_SENTENCE)) == DEMO_SENTENCE
