"""Voice front end: audio in, wake word, VAD and endpointing, two speech recognition paths, the
text turn, speech out (docs/voice.md). :class:`edgepipe.voice.session.VoiceSession` is the entry
point; the backends' contracts and registries are in :mod:`edgepipe.voice.contracts`."""
