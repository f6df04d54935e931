"""The open path, second backend: Moonshine base-en, run with onnxruntime.

Long on purpose: the model's conversion (once, to the model cache), its search (a beam over
batched decoder steps) and its teacher-forced scoring belong together; each is short.

The weights are those ``moonshine-cpp`` ships (``models/base-en``: ``encoder_model.ort``,
``decoder_model_merged.ort``, MIT), the tokenizer is the ``tokenizer.json`` of
``useful-moonshine-onnx``; neither package's Python code is run (``moonshine_cpp`` loads an
onnxruntime library of its own when imported, ``moonshine_onnx`` would pull in librosa).

**Conversion.** The ``.ort`` files keep every weight matrix as int8 with a scale and an offset,
and turn it back into float32 with a ``Cast``, a ``Mul`` and an ``Add`` at *every* run: each
decoder step converts all 42 MB of the decoder again. moonshine-cpp's own library took 3.8-5.3 s
for a 1.6 s command on the (loaded) bench machine, at 663 MB resident.
:func:`converted_models` rewrites both graphs once into the model cache
(``$EDGEPIPE_CACHE/models/moonshine-base-en-<hash>/``, ~3 s): the offsets are whole multiples of
the scales, so each matrix is exactly ``scale * (q - zero_point)`` and becomes an 8-bit
``MatMulNBits`` (onnxruntime's weight-only quantized product; blocks of 32, activations
quantized per block: ``accuracy_level`` 4) with the same int8 values; the token embedding is
gathered as int8 and dequantized (``DequantizeLinear``), its transpose (the output layer) is a
``MatMulNBits`` over the same rows; the three convolutions are folded to float32. Side by side
on the same loaded machine a decoder step took 39 ms against 269 ms as shipped (the encoder
about the same); the two models hold ~210 MB once loaded (Whisper tiny.en: ~96 MB). On 60
espeak-ng commands at 10 dB the converted models' word error rate was 0.29 against 0.31 for
the same weights folded to float32 (8 of 60 transcripts differ).

**What it declares** (:attr:`MoonshineTranscriber.capabilities`):

* ``alternatives``: a beam search (``voice.open.beam_size``), its finished hypotheses best
  first by mean token log-probability;
* ``phrase_score``: the mean log-probability per token of writing the phrase (``"Okay Nabu."``)
  for the audio, teacher-forced from the start of the transcript. Moonshine has no previous
  text, so the phrase cannot be given first as Whisper's is;
* ``sentence_scores``: each sentence's total log-probability, written as Moonshine writes a
  sentence (capital, full stop) and ended (its end-of-text token counts), teacher-forced;
* ``encode``: the encoder's output, decoded again by :meth:`~MoonshineTranscriber.transcribe`;
  the last encoding is also kept for scoring the same samples (rescoring, the contrast check).

Not ``context``: the decoder was trained without previous text, so neither the pack's prompt
(``voice.open.prompt``) nor the grammar path's words can be given to it (no second pass).

**Confidence.** ``avg_logprob`` is the hypothesis's mean log-probability per token, its
end-of-text token included. Moonshine has no no-speech token; ``no_speech_prob`` is the
probability its decoder gives to ending the transcript at once (an empty transcript), the
nearest it has to Whisper's: 0.90 for a second of silence, 0.9999 for white noise, under 0.02
for the test commands. Its cost grows with the audio: no padding, no fixed window.

**The wake check needs its own threshold.** Without the phrase as previous text its scores sit
far below Whisper's (the wake phrase: median -2.5 against -0.4), so a pack that selects it
sets ``voice.wake.verify_min_logprob`` too. On ``bench/bench_transcribers.py --parts wake``
(79 wake phrases, 40 look-alike detections in 30 minutes): -3.0 keeps 85 % of the wake phrases
and no look-alike, -3.5 96 % and 3, -4.0 99 % and 6 (Whisper at its -1.3: 99 % and 2).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.voice.contracts import (
    AsrError,
    Capability,
    EncodedAudio,
    OpenHypothesis,
    OpenTranscriber,
    Samples,
)

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

CONVERSION_VERSION = 1
"""Bump when :func:`converted_models` writes other graphs (the cached ones are then rebuilt)."""
BLOCK = 32
"""``MatMulNBits`` block size (along the input dimension); every Moonshine base matrix's input
size is a multiple of it."""
ACCURACY_LEVEL = 4
"""``MatMulNBits``: int8 products, activations quantized per block (accuracy level 0, float
products from the same int8 weights, ran ~50x slower in onnxruntime 1.32)."""

RATE = 16000
MIN_SAMPLES = 1600
"""Moonshine's shortest input (0.1 s); shorter audio is transcribed as nothing."""
MAX_SAMPLES = 64 * RATE
"""Moonshine's longest input (64 s)."""
MAX_TOKENS = 96
TOKENS_PER_SECOND = 6.5
"""A transcript gets at most ``10 + 6.5`` tokens per second of audio (and :data:`MAX_TOKENS`):
speech is ~3 tokens a second; the cap stops a decoder that loops."""
BOS, EOS = 1, 2
SCORE_BATCH = 8
"""Sentences scored in one decoder run (their logits: 8 x tokens x 32,768 floats)."""


# --------------------------------------------------------------------------- the files


def moonshine_model_dir() -> Path:
    """``models/base-en`` inside the installed ``moonshine-cpp`` (found, not imported)."""
    spec = importlib.util.find_spec("moonshine_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise AsrError("Moonshine base-en ships in moonshine-cpp: pip install moonshine-cpp")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models" / "base-en"
    if not (folder / "encoder_model.ort").is_file():
        raise AsrError(f"moonshine-cpp has no base-en model in {folder}")
    return folder


def moonshine_tokenizer_path() -> Path:
    """Moonshine's ``tokenizer.json``, from ``useful-moonshine-onnx`` (found, not imported)."""
    spec = importlib.util.find_spec("moonshine_onnx")
    if spec is None or not spec.submodule_search_locations:
        raise AsrError(
            "Moonshine's tokenizer ships in useful-moonshine-onnx: "
            "pip install --no-deps useful-moonshine-onnx"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "tokenizer.json"
    if not path.is_file():
        raise AsrError(f"useful-moonshine-onnx has no tokenizer at {path}")
    return path


def converted_models(
    model_dir: Path | None = None, cache_dir: Path | None = None
) -> tuple[Path, Path]:
    """The encoder and decoder as rewritten ONNX graphs (see the module docstring), converted
    once into ``cache_dir`` (default: edgepipe's model cache)."""
    source = model_dir or moonshine_model_dir()
    if cache_dir is None:
        from edgepipe.core.paths import cache_home

        cache_dir = cache_home() / "models"
    names = ("encoder_model", "decoder_model_merged")
    sizes = ":".join(str((source / f"{name}.ort").stat().st_size) for name in names)
    digest = hashlib.sha256(f"{CONVERSION_VERSION}:{BLOCK}:{sizes}".encode()).hexdigest()[:12]
    folder = cache_dir / f"moonshine-base-en-{digest}"
    paths = (folder / "encoder.onnx", folder / "decoder.onnx")
    if all(path.is_file() for path in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    log.info("converting Moonshine base-en for onnxruntime (once) into %s", folder)
    for name, path in zip(names, paths, strict=True):
        _convert(source / f"{name}.ort", path)
    return paths


def _convert(ort_path: Path, out: Path) -> None:
    """Write ``ort_path``'s graph, its int8 weights rewritten, to ``out`` (atomically)."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - the voice extra is not installed
        raise AsrError(
            "Moonshine needs onnxruntime and onnx: pip install 'edgepipe[voice]'"
        ) from exc
    plain = out.with_suffix(f".plain.{os.getpid()}")
    tmp = out.with_suffix(f".tmp.{os.getpid()}")
    try:
        # onnxruntime writes the .ort graph back out as ONNX, unoptimized
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.optimized_model_filepath = str(plain)
        ort.InferenceSession(str(ort_path), options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(plain))
        _rewrite(model)
        onnx.save(model, str(tmp))
        tmp.replace(out)  # atomic: concurrent loaders each write their own file
    finally:
        plain.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class _Quantized:
    q: npt.NDArray[np.int8]
    scale: float
    zero_point: int


def _rewrite(model: Any) -> None:
    """Replace each ``Cast(int8) * scale + offset`` weight of ``model`` (in place): see the
    module docstring. Raises :class:`AsrError` when the graph is not the one expected."""
    from onnx import AttributeProto, helper, numpy_helper

    graph = model.graph
    _name_subgraphs(graph, "moonshine")
    inits = {init.name: init for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    weights: dict[str, _Quantized] = {}
    dropped_nodes: set[int] = set()
    dropped_inits: set[str] = set()
    for node in graph.node:
        if node.op_type != "Add" or not node.input[1].endswith("_zero_point"):
            continue
        mul = producer.get(node.input[0])
        cast = producer.get(mul.input[0]) if mul is not None else None
        if mul is None or cast is None or (mul.op_type, cast.op_type) != ("Mul", "Cast"):
            continue
        q = numpy_helper.to_array(inits[cast.input[0]])
        scale = float(numpy_helper.to_array(inits[mul.input[1]]).reshape(-1)[0])
        offset = float(numpy_helper.to_array(inits[node.input[1]]).reshape(-1)[0])
        steps = offset / scale
        if q.dtype != np.int8 or abs(steps - round(steps)) > 1e-3 or abs(steps) > 127:
            raise AsrError(f"Moonshine weight {cast.input[0]} is not int8 with a whole offset")
        weights[node.output[0]] = _Quantized(q, scale, -round(steps))
        dropped_nodes.update((id(node), id(mul), id(cast)))
        dropped_inits.update((cast.input[0], mul.input[1], node.input[1]))
    if not weights:
        raise AsrError("no int8 weights found in the Moonshine graph")
    added: dict[str, Any] = {}

    def nbits(name: str, rows: npt.NDArray[np.int8], weight: _Quantized) -> tuple[str, int, int]:
        """``MatMulNBits`` inputs for a product with ``rows`` (N x K, int8) as its weights."""
        n, k = rows.shape
        blocks = -(-k // BLOCK)
        zero = weight.zero_point + 128
        packed = (rows.astype(np.int16) + 128).astype(np.uint8)
        packed = np.pad(packed, ((0, 0), (0, blocks * BLOCK - k)), constant_values=zero)
        if name not in added:
            added[name] = [
                numpy_helper.from_array(packed.reshape(n, blocks, BLOCK), f"{name}_B"),
                numpy_helper.from_array(
                    np.full(n * blocks, weight.scale, dtype=np.float32), f"{name}_S"
                ),
                numpy_helper.from_array(np.full(n * blocks, zero, dtype=np.uint8), f"{name}_Z"),
            ]
        return name, k, n

    def product(node: Any, name: str, k: int, n: int) -> Any:
        return helper.make_node(
            "MatMulNBits",
            [node.input[0], f"{name}_B", f"{name}_S", f"{name}_Z"],
            list(node.output),
            name=f"{node.name}_nbits",
            domain="com.microsoft",
            K=k,
            N=n,
            bits=8,
            block_size=BLOCK,
            accuracy_level=ACCURACY_LEVEL,
        )

    def rewrite(g: Any) -> None:
        made = {out: node for node in g.node for out in node.output}
        users: dict[str, list[Any]] = {}
        for node in g.node:
            for name in node.input:
                users.setdefault(name, []).append(node)
        nodes: list[Any] = []
        for node in g.node:
            if id(node) in dropped_nodes:
                continue
            for attribute in node.attribute:
                if attribute.type == AttributeProto.GRAPH:
                    rewrite(attribute.g)
            op, ins = node.op_type, node.input
            source = made.get(ins[1]) if op == "MatMul" and len(ins) > 1 else None
            if op == "MatMul" and ins[1] in weights:
                weight = weights[ins[1]]
                nodes.append(product(node, *nbits(f"{ins[1]}_nb", weight.q.T, weight)))
            elif (
                source is not None
                and source.op_type == "Transpose"
                and source.input[0] in weights
                and _is_plain_transpose(source)
            ):
                weight = weights[source.input[0]]
                nodes.append(product(node, *nbits(f"{source.input[0]}_nbT", weight.q, weight)))
            elif (
                op == "Transpose"
                and ins[0] in weights
                and _is_plain_transpose(node)
                and all(
                    user.op_type == "MatMul" and user.input[1] == node.output[0]
                    for user in users.get(node.output[0], [])
                )
            ):
                continue  # its product reads the weights' rows directly
            elif op == "Gather" and ins[0] in weights:
                weight = weights[ins[0]]
                key = f"{ins[0]}_q8"
                if key not in added:
                    added[key] = [
                        numpy_helper.from_array(weight.q, key),
                        numpy_helper.from_array(np.array(weight.scale, np.float32), f"{key}_s"),
                        numpy_helper.from_array(np.array(weight.zero_point, np.int8), f"{key}_z"),
                    ]
                attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
                raw = f"{node.output[0]}_int8"
                nodes.append(helper.make_node("Gather", [key, ins[1]], [raw], **attributes))
                nodes.append(
                    helper.make_node("DequantizeLinear", [raw, f"{key}_s", f"{key}_z"], node.output)
                )
            else:
                for name in ins:
                    if name in weights and name not in added:
                        weight = weights[name]
                        folded = weight.scale * (weight.q.astype(np.float32) - weight.zero_point)
                        added[name] = [numpy_helper.from_array(folded.astype(np.float32), name)]
                nodes.append(node)
        del g.node[:]
        g.node.extend(nodes)

    rewrite(graph)
    kept = [init for init in graph.initializer if init.name not in dropped_inits]
    del graph.initializer[:]
    graph.initializer.extend([*kept, *(t for tensors in added.values() for t in tensors)])
    standard = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend([*standard, helper.make_opsetid("com.microsoft", 1)])


def _is_plain_transpose(node: Any) -> bool:
    perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
    return not perm or perm[0] == [1, 0]


def _name_subgraphs(graph: Any, name: str) -> None:
    """onnxruntime writes the ``If`` branches without names, which ONNX requires."""
    from onnx import AttributeProto

    if not graph.name:
        graph.name = name
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                _name_subgraphs(attribute.g, f"{name}_{attribute.name}")


# --------------------------------------------------------------------------- the model


class MoonshineModel:
    """The heavy part, shared through :class:`~edgepipe.core.resources.Resources`: the
    encoder's and decoder's sessions (``threads`` each; they run one after the other) and the
    tokenizer. Stateless between calls."""

    def __init__(
        self, *, threads: int = 2, model_dir: Path | None = None, cache_dir: Path | None = None
    ) -> None:
        try:
            import tokenizers
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise AsrError("Moonshine needs the tokenizers package") from exc
        from edgepipe.models.onnx import cpu_session

        encoder, decoder = converted_models(model_dir, cache_dir)
        self.threads = threads
        try:
            self.encoder = cpu_session(encoder, threads=threads, spin=False)
            self.decoder = cpu_session(decoder, threads=threads, spin=False)
        except Exception as exc:  # a damaged cache entry is converted again, not trusted
            log.warning("converted Moonshine in %s unreadable (%s): again", encoder.parent, exc)
            encoder.unlink(missing_ok=True)
            decoder.unlink(missing_ok=True)
            encoder, decoder = converted_models(model_dir, cache_dir)
            self.encoder = cpu_session(encoder, threads=threads, spin=False)
            self.decoder = cpu_session(decoder, threads=threads, spin=False)
        self.tokenizer: Any = tokenizers.Tokenizer.from_file(str(moonshine_tokenizer_path()))
        inputs = {i.name: i for i in self.decoder.get_inputs()}
        self._past = sorted(
            (name for name in inputs if name.startswith("past_key_values.")), key=_cache_order
        )
        self._present = [o.name for o in self.decoder.get_outputs()][1:]
        if [name.replace("present.", "past_key_values.") for name in self._present] != self._past:
            raise AsrError("the Moonshine decoder's cache inputs and outputs do not pair up")
        _, heads, _, head_dim = inputs[self._past[0]].shape
        self._empty = (int(heads), int(head_dim))
        self.vocabulary = int(self.decoder.get_outputs()[0].shape[-1])

    def hidden(self, audio: FloatArray) -> FloatArray:
        """The encoder's output for 16 kHz float32 ``audio``: (1, frames, 416)."""
        out: FloatArray = self.encoder.run(None, {"input_values": audio[None, :]})[0]
        return out

    def start(
        self, hidden: FloatArray, ids: npt.NDArray[np.int64]
    ) -> tuple[FloatArray, list[FloatArray]]:
        """Decode ``ids`` (batch x tokens, no cache): the logits at every position and the
        cache (self-attention over ``ids``, cross-attention over ``hidden``)."""
        batch = ids.shape[0]
        heads, head_dim = self._empty
        empty = np.zeros((batch, heads, 0, head_dim), dtype=np.float32)
        feeds: dict[str, Any] = dict.fromkeys(self._past, empty)
        feeds.update(
            input_ids=ids,
            encoder_hidden_states=np.repeat(hidden, batch, axis=0) if batch > 1 else hidden,
            use_cache_branch=np.array([False]),
        )
        logits, *cache = self.decoder.run(None, feeds)
        return logits, cache

    def step(
        self, hidden: FloatArray, ids: npt.NDArray[np.int64], cache: list[FloatArray]
    ) -> tuple[FloatArray, list[FloatArray]]:
        """One more token for each row of ``ids`` (batch x 1) after ``cache``: the logits
        (batch x vocabulary) and the cache with the token in it."""
        feeds: dict[str, Any] = dict(zip(self._past, cache, strict=True))
        feeds.update(
            input_ids=ids,
            encoder_hidden_states=hidden,
            use_cache_branch=np.array([True]),
        )
        logits, *present = self.decoder.run(None, feeds)
        # the cross-attention entries are passed back as they were
        updated = [
            new if ".decoder." in name else old
            for name, old, new in zip(self._past, cache, present, strict=True)
        ]
        return logits[:, -1, :], updated

    def reorder(self, cache: list[FloatArray], rows: list[int]) -> list[FloatArray]:
        """The cache of the beams ``rows`` (a row may repeat). The cross-attention entries are
        the same for every beam: only their number changes."""
        index = np.asarray(rows, dtype=np.int64)
        out: list[FloatArray] = []
        for name, entry in zip(self._past, cache, strict=True):
            if ".decoder." in name:
                out.append(np.take(entry, index, axis=0))
            elif entry.shape[0] == len(rows):
                out.append(entry)
            else:
                out.append(np.repeat(entry[:1], len(rows), axis=0))
        return out

    def ids(self, text: str) -> list[int]:
        """Tokens of ``text``, no start token."""
        return [int(t) for t in self.tokenizer.encode(text, add_special_tokens=False).ids]

    def text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True)).strip()


def _cache_order(name: str) -> tuple[int, str]:
    """``past_key_values.<layer>.<decoder|encoder>.<key|value>`` in the decoder's output order."""
    _, layer, rest = name.split(".", 2)
    return int(layer), {"decoder.key": "0", "decoder.value": "1", "encoder.key": "2"}.get(rest, "3")


def load_moonshine_model(*, threads: int = 2, cache_dir: Path | None = None) -> MoonshineModel:
    """Moonshine base-en with ``threads`` CPU threads, converted into ``cache_dir`` (default:
    edgepipe's model cache) the first time."""
    return MoonshineModel(threads=threads, cache_dir=cache_dir)


def _log_softmax(logits: FloatArray) -> FloatArray:
    peak = logits.max(axis=-1, keepdims=True)
    shifted = logits - peak
    out: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


# --------------------------------------------------------------------------- the transcriber


@dataclass(frozen=True, slots=True)
class _Encoding:
    """What :meth:`MoonshineTranscriber.encode` keeps: the encoder's output."""

    hidden: FloatArray
    key: bytes


class MoonshineTranscriber(OpenTranscriber):
    """Open vocabulary: Moonshine base-en (see the module docstring for what it declares, and
    how its scores are made). ``model``: a loaded :func:`load_moonshine_model` to share
    (default: one loaded here with ``threads``); ``beam_size``: the search's width (1: greedy,
    no alternatives)."""

    name = "moonshine"
    capabilities = frozenset(
        {
            Capability.ALTERNATIVES,
            Capability.PHRASE_SCORE,
            Capability.SENTENCE_SCORES,
            Capability.ENCODE,
        }
    )

    def __init__(
        self,
        model: MoonshineModel | None = None,
        *,
        threads: int = 2,
        beam_size: int = 5,
        no_repeat_ngram: int = 3,
    ) -> None:
        self.model = model if model is not None else load_moonshine_model(threads=threads)
        self.beam_size = max(1, beam_size)
        self.no_repeat_ngram = no_repeat_ngram
        self._last: _Encoding | None = None

    # ---- audio

    @staticmethod
    def _audio(samples: Samples) -> FloatArray:
        audio = np.asarray(samples)
        if audio.ndim != 1:
            raise AsrError(f"Moonshine takes mono audio (one dimension), not shape {audio.shape}")
        if len(audio) > MAX_SAMPLES:
            raise AsrError(
                f"Moonshine transcribes at most {MAX_SAMPLES // RATE} s at once, "
                f"not {len(audio) / RATE:.1f} s"
            )
        if audio.dtype == np.int16:
            return audio.astype(np.float32) / 32768.0
        return np.ascontiguousarray(audio, dtype=np.float32)

    def encode(self, samples: Samples) -> EncodedAudio:
        """Run the encoder over ``samples`` once, for :meth:`transcribe` to decode (and for
        scoring the same samples: the last encoding is kept)."""
        audio = self._audio(samples)
        frames = len(audio) * 100 // RATE
        if len(audio) < MIN_SAMPLES:
            return EncodedAudio(None, frames, frames)
        key = hashlib.blake2b(audio.tobytes(), digest_size=16).digest()
        last = self._last
        if last is None or last.key != key:
            last = _Encoding(self.model.hidden(audio), key)
            self._last = last
        return EncodedAudio(last, frames, frames)

    def _hidden(self, samples: Samples) -> FloatArray | None:
        encoding = self.encode(samples).output
        return encoding.hidden if isinstance(encoding, _Encoding) else None

    # ---- transcription

    def transcribe(
        self,
        samples: Samples,
        *,
        audio: EncodedAudio | None = None,
        context: str = "",
    ) -> OpenHypothesis:
        """A beam search over ``samples`` (or their encoding ``audio``, from :meth:`encode`).
        ``context`` is ignored (not declared: no previous text)."""
        from edgepipe.voice.backends.whisper import drop_repeats

        started = time.perf_counter()
        if audio is None:
            audio = self.encode(samples)
        window_s = audio.frames / 100
        encoding = audio.output
        if not isinstance(encoding, _Encoding):  # under 0.1 s: nothing to hear
            return OpenHypothesis("", -math.inf, 1.0, window_s, _ms(started))
        limit = min(MAX_TOKENS, 10 + int(TOKENS_PER_SECOND * window_s))
        found, no_speech = self._search(encoding.hidden, limit)
        hypotheses: list[tuple[str, float]] = []
        seen: set[tuple[str, ...]] = set()
        for ids, score in found:
            text = join_numbers(drop_repeats(self.model.text(ids)))
            # a hypothesis that differs from a better one only in punctuation or case adds
            # nothing ("Turn off the lights." / "Turn off the lights")
            words = tuple("".join(c if c.isalnum() else " " for c in text.lower()).split())
            if words not in seen:
                seen.add(words)
                hypotheses.append((text, score))
        text, avg = hypotheses[0] if hypotheses else ("", -math.inf)
        if not text:
            avg = -math.inf
        return OpenHypothesis(
            text=text,
            avg_logprob=avg,
            no_speech_prob=no_speech,
            window_s=window_s,
            ms=_ms(started),
            alternatives=tuple(hypotheses[1:]),
        )

    def _search(
        self, hidden: FloatArray, limit: int
    ) -> tuple[list[tuple[list[int], float]], float]:
        """The beam's finished hypotheses (tokens, mean log-probability per token with the
        end-of-text token), best first, and the probability of ending at once."""
        model, width = self.model, self.beam_size
        logits, cache = model.start(hidden, np.array([[BOS]], dtype=np.int64))
        logprobs = _log_softmax(logits[:, -1, :].astype(np.float32))
        no_speech = float(math.exp(logprobs[0, EOS]))
        alive: list[tuple[list[int], float]] = [([], 0.0)]
        finished: list[tuple[list[int], float]] = []
        tiled = hidden
        for _ in range(limit):
            totals = np.array([score for _, score in alive], dtype=np.float32)[:, None] + logprobs
            self._ban_repeats(alive, totals)
            flat = totals.reshape(-1)
            take = min(flat.size, 2 * width)
            best = np.argpartition(-flat, take - 1)[:take]
            best = best[np.argsort(-flat[best], kind="stable")]
            kept: list[tuple[list[int], float]] = []
            rows: list[int] = []
            for index in best:
                row, token = divmod(int(index), logprobs.shape[1])
                score = float(flat[index])
                if not math.isfinite(score):
                    break
                if token == EOS:
                    tokens = alive[row][0]
                    finished.append((tokens, score / (len(tokens) + 1)))
                else:
                    kept.append(([*alive[row][0], token], score))
                    rows.append(row)
                if len(kept) == width:
                    break
            if len(finished) >= width or not kept:
                break
            if width == 1 and finished:
                break
            if len(rows) != tiled.shape[0]:
                tiled = np.repeat(hidden, len(rows), axis=0)
            cache = model.reorder(cache, rows)
            last = np.array([[tokens[-1]] for tokens, _ in kept], dtype=np.int64)
            step_logits, cache = model.step(tiled, last, cache)
            logprobs = _log_softmax(step_logits.astype(np.float32))
            alive = kept
        if not finished:  # out of tokens: the beams as they stand
            finished = [(tokens, score / max(1, len(tokens))) for tokens, score in alive]
        finished.sort(key=lambda pair: pair[1], reverse=True)
        return finished[:width], no_speech

    def _ban_repeats(self, alive: list[tuple[list[int], float]], totals: FloatArray) -> None:
        """No beam writes an n-gram (:attr:`no_repeat_ngram`) it has already written."""
        n = self.no_repeat_ngram
        if n < 2:
            return
        for row, (tokens, _) in enumerate(alive):
            if len(tokens) < n - 1:
                continue
            tail = tokens[len(tokens) - n + 1 :]
            for i in range(len(tokens) - n + 1):
                if tokens[i : i + n - 1] == tail:
                    totals[row, tokens[i + n - 1]] = -np.inf

    # ---- scoring

    def _written(self, text: str) -> list[int]:
        """Tokens of ``text`` written as Moonshine writes a sentence: a capital, a full stop."""
        words = " ".join(text.split()).strip(" .")
        if not words:
            return []
        return self.model.ids(f"{words[0].upper()}{words[1:]}.")

    def _forced(self, hidden: FloatArray, sequences: list[list[int]]) -> list[FloatArray]:
        """Per-token log-probabilities of the decoder writing each of ``sequences`` (tokens
        after the start token), teacher-forced, a few sentences per decoder run."""
        out: list[FloatArray] = []
        for first in range(0, len(sequences), SCORE_BATCH):
            batch = sequences[first : first + SCORE_BATCH]
            length = max(len(ids) for ids in batch)
            # right-padded: a causal decoder's earlier positions do not see the padding
            ids = np.full((len(batch), length), EOS, dtype=np.int64)
            ids[:, 0] = BOS
            for row, tokens in enumerate(batch):
                ids[row, 1 : len(tokens)] = tokens[:-1]
            logits, _ = self.model.start(hidden, ids)
            for row, tokens in enumerate(batch):
                rows = logits[row, : len(tokens)].astype(np.float32)
                picked = rows[np.arange(len(tokens)), tokens]
                peak = rows.max(axis=-1)
                total = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=-1))
                out.append((picked - total).astype(np.float32))
        return out

    def phrase_logprob(self, samples: Samples, phrase: str) -> float:
        """Mean log-probability per token of writing ``phrase`` (``"Okay Nabu."``) as the
        start of the transcript of ``samples``: one encoder pass, one teacher-forced decoder
        pass, no search. Not its end-of-text token: the audio may go on into the command."""
        ids = self._written(phrase)
        if not ids or len(samples) == 0:
            return -math.inf
        hidden = self._hidden(samples)
        if hidden is None:
            return -math.inf
        return float(self._forced(hidden, [ids])[0].mean())

    def sentence_scores(self, samples: Samples, sentences: list[str]) -> list[float]:
        """Total log-probability of writing each of ``sentences`` for ``samples``, each written
        as a sentence and ended (its end-of-text token counts: a reading that stops short of
        the audio pays for it). The encoder runs once (not at all for the samples last
        encoded)."""
        written = [self._written(sentence) for sentence in sentences]
        if len(samples) == 0 or not sentences:
            return [-math.inf] * len(sentences)
        hidden = self._hidden(samples)
        if hidden is None:
            return [-math.inf] * len(sentences)
        scored = [k for k, ids in enumerate(written) if ids]
        totals = self._forced(hidden, [[*written[k], EOS] for k in scored])
        scores = [-math.inf] * len(sentences)
        for k, per_token in zip(scored, totals, strict=True):
            scores[k] = float(per_token.sum())
        return scores


_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    "eighty|ninety|hundred"
)
_NUMBER_COMMA = re.compile(
    rf"\b(hundred|thousand|million),(?=\s+(?:and\s+)?(?:{_NUMBER_WORDS})\b)", re.IGNORECASE
)


def join_numbers(text: str) -> str:
    """Moonshine writes some numbers in words with a comma inside ("in two thousand,
    eighteen"); the comma goes, so that the rest of the number is not read as a clause of its
    own (the pack's templates read "eighteen" alone as a temperature)."""
    return _NUMBER_COMMA.sub(r"\1", text)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
