"""A learned token scorer (LLMLingua-2 style): a small encoder distilled from SmolLM2's self-information,
behind the same Scorer seam, so that scoring a prompt costs a fraction of a causal LM's prefill.

    from middleware.compress.classifier import ClassifierScorer
    scorer = ClassifierScorer()             # the packaged model (int8 ONNX), or PROMPTFOLD_CLASSIFIER

Modules: card (the shipped files and their checks), rows (requests as encoder rows), runtime
(onnxruntime on the CPU, torch on CUDA), scorer (the Scorer), student (the network, torch), training/
(`promptfold scorer train`: data, teacher, fitting, evaluation, export).

`DEFAULT_ON_CPU` says whether a service on the CPU scores with the classifier when a request names no
scorer (`scorer: "auto"`, the server default). It turns on only with a benchmark that shows the
classifier faster and as faithful as SmolLM2 (bench/results/small_scorer.md).
"""

from .card import ClassifierCard, ClassifierUnavailable, Geometry, classifier_dir, read_card
from .scorer import ClassifierScorer, shared_classifier

# bench/results/small_scorer.md: 14.6x faster scoring than SmolLM2, gold answers kept as often on holdout
DEFAULT_ON_CPU = True

__all__ = [
    "DEFAULT_ON_CPU",
    "ClassifierCard",
    "ClassifierScorer",
    "ClassifierUnavailable",
    "Geometry",
    "classifier_dir",
    "read_card",
    "shared_classifier",
]
