"""Voice front end: audio I/O, wake word, VAD, speech recognition and synthesis."""
