"""Learned intent classifier for NeuroRoute.

Training (management command / Celery task only) uses scikit-learn, imported lazily
inside `train`.  Inference is pure Python + numpy from exported weights, so web
workers never import scikit-learn or scipy.

Model
-----
A multinomial logistic regression over three blocks of features, all computed by
the *same* pure-Python featurizer at training and inference time (so the exported
weights can never disagree with what was trained):

* word 1-2-grams (lower-cased, digit runs folded to "0"), sublinear TF-IDF, L2;
* character 3-5-grams inside whitespace-delimited tokens (like sklearn's
  ``char_wb``), sublinear TF-IDF, L2 - robust to typos, inflections and code;
* seven structural features (length beyond ~500 tokens, >2k / >8k-token flags,
  code-like lines, code punctuation, few-shot "Label:/Answer:" demonstrations,
  legal vocabulary density), standardised with training statistics.  There is
  no plain length feature on purpose (see DENSE_NAMES).

Long prompts are cut to a bounded window (first HEAD_CHARS + last TAIL_CHARS) for
everything but the length, so a 4,000-token prompt costs ~1 ms and a 100k-token
one barely more.  Class weights are balanced; the solver is newton-cg.

Labels are whatever the training examples carry: intent names and/or model keys
(``local``/``openai``/``anthropic``).  `IntentClassifier.predict` returns every
label with its probability; the router sums them per model.
"""

from __future__ import annotations

import io
import math
import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import orjson

INTENTS: tuple[str, ...] = (
    "chat",
    "simple_math",
    "file_creation",
    "code",
    "analysis",
    "summarization",
    "comparison",
    "complex_reasoning",
    "long_document",
    "legal",
    "detailed_reasoning",
)

INTENT_ROUTES: dict[str, str] = {
    "chat": "local",
    "simple_math": "local",
    "file_creation": "local",
    "code": "openai",
    "analysis": "openai",
    "summarization": "openai",
    "comparison": "openai",
    "complex_reasoning": "openai",
    "long_document": "anthropic",
    "legal": "anthropic",
    "detailed_reasoning": "anthropic",
}

# Model keys may be used directly as labels ("route this kind of prompt to X").
MODEL_KEYS: tuple[str, ...] = ("local", "openai", "anthropic")

DEFAULT_EXAMPLES_DIR = Path(__file__).resolve().parent / "default_examples"

# --- featurizer constants ---------------------------------------------------------
# Only a bounded window of a long prompt is tokenised: the instruction is usually
# at the start or the end, and the middle of a pasted document adds cost, not signal.
HEAD_CHARS = 1500
TAIL_CHARS = 1000
CHAR_NGRAM_MIN = 3
CHAR_NGRAM_MAX = 5
# Longer whitespace tokens (URLs, base64, minified code) are truncated before
# char n-gram extraction; their first characters carry what matters.
MAX_TOKEN_CHARS = 20
# Per-featurizer cache: whitespace token -> char n-gram feature ids.  Bounded so
# adversarial inputs cannot grow worker memory without limit.
TOKEN_CACHE_LIMIT = 200_000

ARTEFACT_MAGIC = b"NRIC"
ARTEFACT_VERSION = 1

_WORD_RE = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_+")
# Digits are folded to "0" on the UTF-8 bytes (C speed, ~100x faster than str.translate).
_DIGIT_FOLD = bytes.maketrans(b"123456789", b"000000000")
_CODE_PUNCT_BYTES = b"{}[]();_=<>#$\\|`"
_FEWSHOT_RE = re.compile(
    r"^[ \t]*(?:q|a|question|answer|label|input|output|text|sentence|clause|response|example)[ \t]*\d*[ \t]*:",
    re.MULTILINE,
)
# Code-looking lines: a statement keyword or comment marker at the start, or a
# line ending in ; { } - one MULTILINE scan instead of a regex call per line.
_CODE_START_RE = re.compile(
    r"^[ \t]*(?:(?:def|class|import|from|return|if|for|while|elif|else|try|except|function|const|"
    r"let|var|public|private|static|void|int|#include|select|print|console\.log)\b|#|//|/\*)",
    re.MULTILINE,
)
_CODE_END_RE = re.compile(r"[;{}][ \t]*$", re.MULTILINE)
# Vocabulary whose density separates legal prompts from other long texts even for
# legal sub-domains the training set never saw (the n-gram features learn the rest).
_LEGAL_WORDS = frozenset(
    {
        "agreement", "agreements", "appeal", "appellant", "appellee", "arbitration", "attorney",
        "breach", "clause", "clauses", "claimant", "complaint", "confidential", "contract",
        "contracts", "counsel", "court", "courts", "damages", "defendant", "defendants", "enforceable",
        "governing", "hearsay", "hereby", "herein", "hereof", "hereunder", "indemnify",
        "indemnification", "infringement", "judge", "judgment", "jurisdiction", "jury", "lawful",
        "lawsuit", "legal", "liability", "liable", "licensee", "licensor", "litigation",
        "notwithstanding", "obligations", "party", "parties", "plaintiff", "plaintiffs", "pursuant",
        "regulation", "regulations", "statute", "statutes", "statutory", "termination", "testimony",
        "thereof", "tort", "warranty", "witness",
    }
)
# Structural features.  Deliberately *no* plain length feature: short everyday
# questions and longer chat requests must not be told apart by length alone (a
# linear length term made every mid-length prompt "not chat").  Length only counts
# once a prompt is long (see _dense_features).
DENSE_NAMES: tuple[str, ...] = (
    "excess_length",
    "long_2k_tokens",
    "long_8k_tokens",
    "code_line_share",
    "code_punct_ratio",
    "fewshot_lines",
    "legal_density",
)


def _window(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


_ZERO_RUN_RE = re.compile(r"0{2,}")


def _fold_digits(text: str) -> str:
    """Every run of digits becomes a single "0": "15% of 80" and "3% of 2024" are the
    same evidence of arithmetic, and the vocabulary is not flooded with numbers."""
    folded = text.encode("utf-8", "surrogatepass").translate(_DIGIT_FOLD).decode("utf-8", "surrogatepass")
    return _ZERO_RUN_RE.sub("0", folded)


def _word_terms(folded: str) -> tuple[list[str], list[str]]:
    """Word tokens and their 1-2-gram terms from the lower-cased, digit-folded window."""
    tokens = _WORD_RE.findall(folded)
    terms = tokens + [a + " " + b for a, b in pairwise(tokens)]
    return tokens, terms


def _char_terms(token: str) -> list[str]:
    """char_wb-style n-grams of one whitespace token, padded with spaces."""
    padded = " " + token[:MAX_TOKEN_CHARS] + " "
    size = len(padded)
    return [
        padded[i : i + n]
        for n in range(CHAR_NGRAM_MIN, min(CHAR_NGRAM_MAX, size) + 1)
        for i in range(size - n + 1)
    ]


def _ratio(count: int, total: int) -> float:
    return count / total if total else 0.0


def _dense_features(text: str, window: str, lowered: str, tokens: list[str]) -> list[float]:
    """Structural features; the whole-text one (length) is free, the rest use the window."""
    approx_tokens = len(text) / 4.0
    raw = window.encode("utf-8", "surrogatepass")
    n_bytes = len(raw) or 1
    n_lines = window.count("\n") + 1
    code_lines = min(n_lines, len(_CODE_START_RE.findall(window)) + len(_CODE_END_RE.findall(window)))
    n_words = sum(map(str.isalpha, tokens))
    legal = sum(map(_LEGAL_WORDS.__contains__, tokens))
    return [
        # 0 up to ~500 tokens, then grows logarithmically: pasted documents.
        math.log1p(max(0.0, approx_tokens - 500.0) / 250.0),
        1.0 if approx_tokens > 2000 else 0.0,
        1.0 if approx_tokens > 8000 else 0.0,
        code_lines / n_lines,
        _ratio(n_bytes - len(raw.translate(None, _CODE_PUNCT_BYTES)), n_bytes),
        # Few-shot demonstrations ("Label: ...", "Q: ... A: ...") mark task prompts.
        math.log1p(len(_FEWSHOT_RE.findall(lowered))),
        _ratio(legal, n_words),
    ]


def _analyse(text: str) -> tuple[list[str], list[str], list[float]]:
    """Raw analysis shared by vocabulary fitting and featurisation."""
    window = _window(text)
    lowered = window.lower()
    folded = _fold_digits(lowered)
    tokens, word_terms = _word_terms(folded)
    ws_tokens = folded.split()
    dense = _dense_features(text, window, lowered, tokens)
    return word_terms, ws_tokens, dense


@dataclass
class _Features:
    """Sparse (indices, values) over the vocabulary plus a dense vector."""

    indices: np.ndarray
    values: np.ndarray
    dense: np.ndarray


class _Featurizer:
    """Maps text to TF-IDF + structural features using a fitted vocabulary."""

    def __init__(
        self,
        word_vocab: Sequence[str],
        char_vocab: Sequence[str],
        idf: np.ndarray,
        dense_mean: np.ndarray,
        dense_scale: np.ndarray,
        block_weights: Sequence[float],
    ) -> None:
        self.word_vocab_list = list(word_vocab)
        self.char_vocab_list = list(char_vocab)
        self.n_word = len(self.word_vocab_list)
        self.n_char = len(self.char_vocab_list)
        self.word_index = {t: i for i, t in enumerate(self.word_vocab_list)}
        self.char_index = {t: i + self.n_word for i, t in enumerate(self.char_vocab_list)}
        # float32 is the stored precision (see IntentClassifier.to_bytes).
        self.idf = np.asarray(idf, dtype=np.float32).astype(np.float64)
        self.dense_mean = np.asarray(dense_mean, dtype=np.float64)
        self.dense_scale = np.asarray(dense_scale, dtype=np.float64)
        self.block_weights = tuple(float(w) for w in block_weights)
        self._token_cache: dict[str, np.ndarray] = {}

    @property
    def n_sparse(self) -> int:
        return self.n_word + self.n_char

    # ---- fitting -------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        analysed: Sequence[tuple[list[str], list[str], list[float]]],
        *,
        min_df: int = 2,
        max_word_features: int = 60_000,
        max_char_features: int = 80_000,
        block_weights: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> _Featurizer:
        """Build vocabularies (by document frequency) and dense statistics from
        `_analyse` outputs (analysed once, reused for the training matrix)."""
        word_df: Counter[str] = Counter()
        char_df: Counter[str] = Counter()
        gram_cache: dict[str, list[str]] = {}
        for word_terms, ws_tokens, _ in analysed:
            word_df.update(set(word_terms))
            grams: set[str] = set()
            for tok in set(ws_tokens):
                cached = gram_cache.get(tok)
                if cached is None:
                    cached = gram_cache[tok] = _char_terms(tok)
                grams.update(cached)
            char_df.update(grams)
        n_docs = len(analysed)
        word_vocab = _top_terms(word_df, min_df, max_word_features)
        char_vocab = _top_terms(char_df, min_df, max_char_features)
        df = np.array([word_df[t] for t in word_vocab] + [char_df[t] for t in char_vocab], dtype=np.float64)
        idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0  # sklearn's smoothed idf
        dense = np.array([d for _, _, d in analysed], dtype=np.float64).reshape(n_docs, len(DENSE_NAMES))
        mean = dense.mean(axis=0)
        scale = dense.std(axis=0)
        scale[scale < 1e-9] = 1.0
        return cls(word_vocab, char_vocab, idf, mean, scale, block_weights)

    # ---- transform -----------------------------------------------------------
    def _char_ids(self, token: str) -> np.ndarray:
        """Char n-gram feature ids of one token (cached: tokens repeat a lot)."""
        ids = self._token_cache.get(token)
        if ids is None:
            index = self.char_index
            found = [i for i in map(index.get, _char_terms(token)) if i is not None]
            ids = np.array(found, dtype=np.int64)
            if len(self._token_cache) >= TOKEN_CACHE_LIMIT:
                self._token_cache.clear()
            self._token_cache[token] = ids
        return ids

    def _tfidf(self, idx: np.ndarray, counts: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
        """Sublinear TF-IDF, L2-normalised, scaled by the block weight."""
        if not idx.size:
            return idx, np.empty(0, dtype=np.float64)
        vals = (1.0 + np.log(counts)) * self.idf[idx]
        return idx, vals * (weight / math.sqrt(float(vals @ vals)))

    def _word_block(self, word_terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
        # Counter counts in C; each distinct in-vocabulary term is one feature.
        get = self.word_index.get
        counts = Counter(word_terms)
        pairs = [(i, c) for i, c in zip(map(get, counts), counts.values()) if i is not None]
        idx = np.array([i for i, _ in pairs], dtype=np.int64)
        tf = np.array([c for _, c in pairs], dtype=np.float64)
        return self._tfidf(idx, tf, self.block_weights[0])

    def _char_block(self, ws_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        # Per distinct token: its cached n-gram ids, repeated by the token's count;
        # n-grams shared between tokens are then summed with one unique/bincount.
        counts = Counter(ws_tokens)
        arrays = [self._char_ids(tok) for tok in counts]
        if not arrays:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        sizes = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
        reps = np.fromiter(counts.values(), dtype=np.float64, count=len(arrays))
        ids = np.concatenate(arrays)
        idx, inverse = np.unique(ids, return_inverse=True)
        tf = np.bincount(inverse, weights=np.repeat(reps, sizes), minlength=idx.size)
        return self._tfidf(idx, tf, self.block_weights[1])

    def transform_analysed(self, word_terms: list[str], ws_tokens: list[str], dense: list[float]) -> _Features:
        w_idx, w_val = self._word_block(word_terms)
        c_idx, c_val = self._char_block(ws_tokens)
        dense_vec = (np.asarray(dense, dtype=np.float64) - self.dense_mean) / self.dense_scale
        dense_vec *= self.block_weights[2]
        return _Features(np.concatenate((w_idx, c_idx)), np.concatenate((w_val, c_val)), dense_vec)

    def transform(self, text: str) -> _Features:
        return self.transform_analysed(*_analyse(text))

    def matrix(self, analysed: Iterable[tuple[list[str], list[str], list[float]]]) -> Any:
        """scipy CSR matrix [sparse | dense] for training (scipy imported lazily)."""
        from scipy import sparse

        data: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        indptr = [0]
        n_sparse = self.n_sparse
        dense_cols = np.arange(n_sparse, n_sparse + len(DENSE_NAMES), dtype=np.int64)
        for item in analysed:
            feats = self.transform_analysed(*item)
            cols.extend((feats.indices, dense_cols))
            data.extend((feats.values, feats.dense))
            indptr.append(indptr[-1] + len(feats.indices) + len(dense_cols))
        shape = (len(indptr) - 1, n_sparse + len(DENSE_NAMES))
        return sparse.csr_matrix(
            (np.concatenate(data), np.concatenate(cols), np.asarray(indptr, dtype=np.int64)), shape=shape
        )


def _top_terms(df: Counter[str], min_df: int, max_features: int) -> list[str]:
    """Terms with df >= min_df, the most frequent first (ties broken by term)."""
    kept = [(count, term) for term, count in df.items() if count >= min_df]
    kept.sort(key=lambda ct: (-ct[0], ct[1]))
    return sorted(term for _, term in kept[:max_features])


# --- the classifier ----------------------------------------------------------------


class IntentClassifier:
    """Linear softmax classifier over `_Featurizer` features (numpy-only inference)."""

    def __init__(
        self,
        labels: Sequence[str],
        featurizer: _Featurizer,
        sparse_weights: np.ndarray,
        dense_weights: np.ndarray,
        bias: np.ndarray,
    ) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        self._featurizer = featurizer
        # Rows are features, columns labels: a prediction gathers only the rows of
        # the features present in the prompt.  Weights are rounded to float16 - the
        # precision they are stored with - so a freshly trained classifier and one
        # loaded from its bytes predict exactly the same.
        self._w_sparse = np.asarray(sparse_weights, dtype=np.float16).astype(np.float32)
        self._w_dense = np.ascontiguousarray(dense_weights, dtype=np.float64)
        self._bias = np.asarray(bias, dtype=np.float64)
        expected = (featurizer.n_sparse, len(self.labels))
        if self._w_sparse.shape != expected or self._w_dense.shape != (len(DENSE_NAMES), len(self.labels)):
            raise ValueError("weight shapes do not match the vocabulary / labels")

    def decision_function(self, text: str) -> np.ndarray:
        feats = self._featurizer.transform(text)
        scores = self._bias + feats.dense @ self._w_dense
        if feats.indices.size:
            scores = scores + feats.values @ self._w_sparse[feats.indices]
        return scores

    def predict_proba(self, text: str) -> np.ndarray:
        scores = self.decision_function(text)
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()

    def predict(self, text: str) -> list[tuple[str, float]]:
        """All labels with probabilities (summing to 1), most probable first."""
        probs = self.predict_proba(text)
        order = np.argsort(-probs, kind="stable")
        return [(self.labels[i], float(probs[i])) for i in order]

    # ---- serialisation ---------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Compact, pickle-free artefact: magic + version + zlib(JSON header + arrays)."""
        f = self._featurizer
        arrays = {
            "idf": f.idf.astype(np.float32),
            "dense_mean": f.dense_mean,
            "dense_scale": f.dense_scale,
            "w_sparse": self._w_sparse.astype(np.float16),
            "w_dense": self._w_dense,
            "bias": self._bias,
        }
        header: dict[str, Any] = {
            "labels": list(self.labels),
            "word_vocab": "\n".join(f.word_vocab_list),
            "char_vocab": "\n".join(f.char_vocab_list),
            "block_weights": list(f.block_weights),
            "dense_names": list(DENSE_NAMES),
            "config": _config(),
            "arrays": {},
        }
        blob = io.BytesIO()
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            header["arrays"][name] = {
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "offset": blob.tell(),
            }
            blob.write(arr.tobytes())
        head = orjson.dumps(header)
        payload = struct.pack("<I", len(head)) + head + blob.getvalue()
        return ARTEFACT_MAGIC + struct.pack("<H", ARTEFACT_VERSION) + zlib.compress(payload, 9)

    @classmethod
    def from_bytes(cls, data: bytes) -> IntentClassifier:
        if data[:4] != ARTEFACT_MAGIC:
            raise ValueError("not an intent classifier artefact")
        (version,) = struct.unpack("<H", data[4:6])
        if version != ARTEFACT_VERSION:
            raise ValueError(f"unsupported classifier artefact version {version}")
        payload = zlib.decompress(data[6:])
        (head_len,) = struct.unpack("<I", payload[:4])
        header = orjson.loads(payload[4 : 4 + head_len])
        if header.get("config") != _config() or header.get("dense_names") != list(DENSE_NAMES):
            # Features are computed by this module's code: an artefact trained with
            # other settings would silently mis-predict, so refuse it.
            raise ValueError("classifier artefact was trained with a different featurizer; retrain")
        body = memoryview(payload)[4 + head_len :]
        arrays = {}
        for name, spec in header["arrays"].items():
            dtype = np.dtype(spec["dtype"])
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            arr = np.frombuffer(body, dtype=dtype, count=count, offset=spec["offset"])
            arrays[name] = arr.reshape(spec["shape"])
        word_vocab = header["word_vocab"].split("\n") if header["word_vocab"] else []
        char_vocab = header["char_vocab"].split("\n") if header["char_vocab"] else []
        featurizer = _Featurizer(
            word_vocab,
            char_vocab,
            arrays["idf"],
            arrays["dense_mean"],
            arrays["dense_scale"],
            header["block_weights"],
        )
        return cls(header["labels"], featurizer, arrays["w_sparse"], arrays["w_dense"], arrays["bias"])


def _config() -> dict[str, Any]:
    return {
        "head": HEAD_CHARS,
        "tail": TAIL_CHARS,
        "char_ngrams": [CHAR_NGRAM_MIN, CHAR_NGRAM_MAX],
        "max_token_chars": MAX_TOKEN_CHARS,
    }


# --- routing helpers ----------------------------------------------------------------


def label_route(label: str) -> str | None:
    """Model key a label stands for by default (a model key stands for itself)."""
    if label in MODEL_KEYS:
        return label
    return INTENT_ROUTES.get(label)


def route_scores(predictions: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Sum label probabilities per default model key (evaluation / docs helper).

    The real router maps intents through each model's capability list; this uses
    INTENT_ROUTES so the classifier can be evaluated on its own.
    """
    totals = dict.fromkeys(MODEL_KEYS, 0.0)
    for label, prob in predictions:
        key = label_route(label)
        if key is not None:
            totals[key] = totals.get(key, 0.0) + prob
    return totals


def best_route(predictions: Iterable[tuple[str, float]]) -> str:
    totals = route_scores(predictions)
    return max(totals, key=lambda k: totals[k])


# --- training -----------------------------------------------------------------------


@dataclass
class TrainingReport:
    """Outcome of `train`.

    `cv_accuracy` is stratified k-fold (k <= 5) accuracy of the top label; NaN when
    there is too little data to cross-validate (or `cross_validate=False`).
    `cv_route_accuracy` scores the routing decision instead: argmax over models of
    the summed probabilities (INTENT_ROUTES), against the label's model.
    `per_label[label]` = {"n", "accuracy", "route_accuracy"}.
    """

    n_examples: int
    labels: list[str]
    cv_accuracy: float
    per_label: dict = field(default_factory=dict)
    cv_route_accuracy: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (NaN -> None, as JSON has no NaN)."""
        return {
            "n_examples": self.n_examples,
            "labels": list(self.labels),
            "cv_accuracy": _finite_or_none(self.cv_accuracy),
            "cv_route_accuracy": _finite_or_none(self.cv_route_accuracy),
            "per_label": self.per_label,
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# Hyper-parameters, chosen with bench/classifier_dev.py.  C=10 (weak regularisation)
# because the n-gram vocabulary is large and examples are few per intent; results
# were flat between C=3 and C=30.  Terms seen in a single example are dropped
# (min_df=2) once there are enough examples, which halves the artefact.
LR_C = 10.0
MIN_DF = 2


def _ordered_labels(labels: Iterable[str]) -> list[str]:
    """Intents in INTENTS order, then model keys, then any other label sorted."""
    present = set(labels)
    ordered = [i for i in INTENTS if i in present] + [k for k in MODEL_KEYS if k in present]
    return ordered + sorted(present - set(ordered))


def _fit(texts: Sequence[str], labels: Sequence[str], label_order: Sequence[str], seed: int) -> IntentClassifier:
    from sklearn.linear_model import LogisticRegression

    min_df = MIN_DF if len(texts) >= 200 else 1
    analysed = [_analyse(t) for t in texts]
    featurizer = _Featurizer.fit(analysed, min_df=min_df)
    x = featurizer.matrix(analysed)
    label_ids = {label: i for i, label in enumerate(label_order)}
    y = np.array([label_ids[label] for label in labels])
    present = np.unique(y)
    # newton-cg converges in ~10 iterations here (lbfgs needs 100+, ~6x slower).
    model = LogisticRegression(
        C=LR_C, class_weight="balanced", solver="newton-cg", max_iter=1000, tol=1e-4, random_state=seed
    )
    if present.size == 1:
        # A single label: nothing to learn; a constant classifier.
        coef = np.zeros((len(label_order), x.shape[1]))
        bias = np.full(len(label_order), -30.0)
        bias[present[0]] = 0.0
    else:
        model.fit(x, y)
        coef = np.zeros((len(label_order), x.shape[1]))
        bias = np.full(len(label_order), -30.0)  # labels absent from this fold
        classes = model.classes_
        if len(classes) == 2:
            # Binary LR exposes one weight vector for classes_[1]; split it
            # symmetrically so softmax over both rows gives the same probabilities.
            coef[classes[1]] = model.coef_[0] / 2
            coef[classes[0]] = -model.coef_[0] / 2
            bias[classes[1]] = model.intercept_[0] / 2
            bias[classes[0]] = -model.intercept_[0] / 2
        else:
            coef[classes] = model.coef_
            bias[classes] = model.intercept_
    n_sparse = featurizer.n_sparse
    return IntentClassifier(label_order, featurizer, coef[:, :n_sparse].T, coef[:, n_sparse:].T, bias)


def _cross_validate(
    texts: Sequence[str], labels: Sequence[str], label_order: Sequence[str], seed: int
) -> tuple[float, float, dict]:
    """Stratified k-fold CV refitting vocabulary and model inside every fold."""
    import warnings

    from sklearn.model_selection import StratifiedKFold

    counts = Counter(labels)
    n_splits = min(5, max(counts.values()))
    if n_splits < 2 or len(counts) < 2:
        return float("nan"), float("nan"), {}
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    predicted: list[str] = [""] * len(texts)
    routed: list[str] = [""] * len(texts)
    with warnings.catch_warnings():
        # Labels with fewer examples than folds are fine (they just miss some folds).
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(folds.split(np.zeros(len(labels)), labels))
    for train_idx, test_idx in splits:
        clf = _fit([texts[i] for i in train_idx], [labels[i] for i in train_idx], label_order, seed)
        for i in test_idx:
            preds = clf.predict(texts[i])
            predicted[i] = preds[0][0]
            routed[i] = best_route(preds)
    per_label: dict[str, dict[str, float]] = {}
    for label in label_order:
        idx = [i for i, y in enumerate(labels) if y == label]
        per_label[label] = {
            "n": len(idx),
            "accuracy": sum(predicted[i] == label for i in idx) / len(idx) if idx else 0.0,
            "route_accuracy": sum(routed[i] == label_route(label) for i in idx) / len(idx) if idx else 0.0,
        }
    accuracy = sum(p == y for p, y in zip(predicted, labels)) / len(labels)
    route_accuracy = sum(r == label_route(y) for r, y in zip(routed, labels)) / len(labels)
    return accuracy, route_accuracy, per_label


def train(
    examples: list[tuple[str, str]], *, cross_validate: bool = True, seed: int = 0
) -> tuple[IntentClassifier, TrainingReport]:
    """Train on (text, label) pairs; labels are intent names and/or model keys.

    Cross-validation (stratified, up to 5 folds) refits the vocabulary inside every
    fold, so `cv_accuracy` is an honest estimate of label accuracy.
    """
    pairs = [(t, lab) for t, lab in examples if isinstance(t, str) and t.strip() and lab]
    if not pairs:
        raise ValueError("no training examples")
    texts = [t for t, _ in pairs]
    labels = [lab for _, lab in pairs]
    label_order = _ordered_labels(labels)
    cv_accuracy, cv_route_accuracy, per_label = float("nan"), float("nan"), {}
    if cross_validate:
        cv_accuracy, cv_route_accuracy, per_label = _cross_validate(texts, labels, label_order, seed)
    classifier = _fit(texts, labels, label_order, seed)
    report = TrainingReport(len(pairs), list(label_order), cv_accuracy, per_label, cv_route_accuracy)
    return classifier, report


def load_default_examples(directory: str | Path | None = None) -> list[tuple[str, str]]:
    """Read `(text, intent)` pairs from routing/default_examples/*.jsonl (sorted by file)."""
    folder = Path(directory) if directory is not None else DEFAULT_EXAMPLES_DIR
    examples: list[tuple[str, str]] = []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    item = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path.name}:{line_no}: invalid JSON: {exc}") from exc
                text, intent = item.get("text"), item.get("intent")
                if isinstance(text, str) and text.strip() and isinstance(intent, str) and intent:
                    examples.append((text, intent))
    return examples
