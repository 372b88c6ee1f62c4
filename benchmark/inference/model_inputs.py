"""What a saved model needs of an audio file: the feature set, params and input kind of each input.

A single model has one input; an ensemble has one per member. Each input names a registered
feature set computable from audio (a model trained on Kaggle's CSVs, ``csv_30s``/``csv_3s``,
gets the same 57 features computed by ``librosa_30s``/``librosa_3s``). All of it is read from
``model.json`` when it lists the members, so extraction can start before the estimator is
unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmark.errors import ConfigError
from benchmark.features.audio_base import AudioFeatureSet
from benchmark.inference.saved_model import ModelError, SavedModel, input_kind_of
from benchmark.results import MODEL_FILE, MODEL_META_FILE

__all__ = ["Input", "ModelInput", "model_extractors", "model_inputs"]


@dataclass(frozen=True)
class ModelInput:
    """How one estimator of a saved model gets its rows from a decoded clip."""

    fset: AudioFeatureSet
    input_kind: str
    estimator: Any


def _extractor(
    feature_set: str, feature_params: dict[str, Any], input_kind: str, feature_of: str | None = None
) -> AudioFeatureSet:
    """The audio feature set computing ``feature_set``'s values (its own params only if it is
    itself computed from audio: Kaggle's CSV params mean nothing to librosa). ``feature_of``:
    the registered set a config's feature variant ``feature_set`` is made of."""
    from benchmark.features import all_feature_sets, get_feature_set

    known = all_feature_sets()
    if feature_of is not None:
        return _extractor(feature_of, feature_params, input_kind).named(feature_set)
    own = known.get(feature_set)
    name = own.audio_counterpart() if own is not None else None
    if name is None or name not in known:
        computable = sorted(n for n, c in known.items() if c.audio_counterpart())
        raise ModelError(
            f"the model uses feature set {feature_set!r}, which is read from the dataset's "
            "files, not computed from audio; predict needs a model trained on one of "
            f"{', '.join(computable)}"
        )
    params = dict(feature_params or {}) if name == feature_set else {}
    params.pop("n_jobs", None)
    try:
        fset = get_feature_set(name, **params)
    except ConfigError as exc:
        raise ModelError(f"the model's feature parameters are not usable: {exc}") from None
    if input_kind not in fset.input_kinds or not hasattr(fset, "clip_rows"):
        raise ModelError(f"feature set {name!r} cannot give a clip's {input_kind!r} input")
    return fset  # type: ignore[return-value]


#: ``(feature set, feature params, input kind, the registered set a feature variant is made of)``
Input = tuple[str, dict[str, Any], str, str | None]


def _member_inputs(members: Sequence[Any]) -> list[Input]:
    """``(feature set, feature params, input kind, feature_of)`` of ensemble members given as
    objects (the estimator's) or as ``model.json`` records (old ones say ``view``)."""
    out = []
    for m in members:
        get = m.get if isinstance(m, dict) else lambda k, m=m: getattr(m, k, None)
        of = get("feature_of")
        kind = input_kind_of(m) if isinstance(m, dict) else str(m.input_kind)
        out.append(
            (
                str(get("feature_set")),
                dict(get("feature_params") or {}),
                kind,
                None if of is None else str(of),
            )
        )
    return out


def _inputs_of(model: SavedModel) -> list[Input]:
    """``(feature set, feature params, input kind, feature_of)`` of each of the model's inputs, from
    ``model.json`` alone when it lists an ensemble's members (never waiting for a background
    load); an ensemble saved without that list is asked."""
    if not model.is_ensemble:
        of = model.meta.get("feature_of")
        params = dict(model.meta.get("feature_params") or {})
        return [(model.feature_set, params, model.input_kind, None if of is None else str(of))]
    listed = model.meta.get("members")
    if (
        isinstance(listed, list)
        and listed
        and all(isinstance(m, dict) and "feature_set" in m for m in listed)
    ):
        return _member_inputs(listed)
    return _member_inputs(model.estimator.members)


def model_extractors(model: SavedModel) -> list[tuple[AudioFeatureSet, str]]:
    """``(audio feature set, input kind)`` of each of the model's inputs: what extraction computes,
    known before the estimator is loaded."""
    return [
        (_extractor(name, params, input_kind, of), input_kind)
        for name, params, input_kind, of in _inputs_of(model)
    ]


def model_inputs(model: SavedModel) -> list[ModelInput]:
    """One input per estimator: the model's own, or each ensemble member's, in the order of
    :func:`model_extractors` (``model.json``'s list of members must be the estimator's)."""
    extractors = model_extractors(model)
    if not model.is_ensemble:
        return [ModelInput(fset, input_kind, model.estimator) for fset, input_kind in extractors]
    members = list(model.estimator.members)
    listed, found = _inputs_of(model), _member_inputs(members)
    if json.dumps(listed, sort_keys=True, default=str) != json.dumps(
        found, sort_keys=True, default=str
    ):
        raise ModelError(
            f"{model.path}: the members listed in {MODEL_META_FILE} are not those of {MODEL_FILE}; "
            "the folder is damaged: export the model again"
        )
    return [
        ModelInput(fset, input_kind, m.estimator)
        for (fset, input_kind), m in zip(extractors, members, strict=True)
    ]
