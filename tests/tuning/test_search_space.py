"""Search spaces load, reject every kind of invalid file naming file and key, and suggest."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from benchmark.errors import SearchSpaceError
from benchmark.tuning.search_space import SearchSpace, load_search_space

VALID = """\
# a test family
family: {name}
fixed: false
defaults: {{C: 1.0, degree: 3, penalty: l2, gamma: scale}}
params:
  C: {{type: float, low: 1.0e-3, high: 1.0e3, log: true}}
  degree: {{type: int, low: 2, high: 5}}
  step_param: {{type: float, low: 0.1, high: 1.0, step: 0.1}}
  penalty: {{type: categorical, choices: [l2, l1, elasticnet]}}
  l1_ratio: {{type: float, low: 0, high: 1, when: {{penalty: elasticnet}}}}
  gamma: {{type: categorical, choices: [scale, auto]}}
  shrink: {{type: float, low: 0.0, high: 1.0, when: {{penalty: [l1, elasticnet]}}}}
"""


#: a valid reduction range, as a flow-style YAML mapping entry
PCA = "pca_components: {type: int, low: 4, high: 64, log: true}"


def write(tmp_path: Path, text: str, name: str = "fam") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def space(tmp_path: Path) -> SearchSpace:
    text = VALID.format(name="fam").replace("defaults: {", "defaults: {step_param: 0.5, ")
    return SearchSpace.from_yaml(write(tmp_path, text))


def test_valid_file_loads_into_optuna_distributions(space: SearchSpace) -> None:
    d = space.distributions
    assert list(d) == ["C", "degree", "step_param", "penalty", "l1_ratio", "gamma", "shrink"]
    assert d["C"] == FloatDistribution(1e-3, 1e3, log=True)
    assert d["degree"] == IntDistribution(2, 5)
    assert d["step_param"] == FloatDistribution(0.1, 1.0, step=0.1)
    assert d["penalty"] == CategoricalDistribution(["l2", "l1", "elasticnet"])
    assert d["l1_ratio"] == FloatDistribution(0.0, 1.0)
    assert space.family == "fam" and space.fixed is False


def test_to_dict_is_json_and_round_trips(space: SearchSpace) -> None:
    data = json.loads(json.dumps(space.to_dict()))
    again = SearchSpace.from_dict(data)
    assert again.distributions == space.distributions
    assert again.defaults == space.defaults
    assert [p.when for p in again.params] == [p.when for p in space.params]


def test_every_project_search_space_loads() -> None:
    from benchmark.models import all_families

    families = all_families()
    assert families, "discovery found no model family"
    for name in families:
        assert load_search_space(name).family == name


def test_unknown_family_lists_known_spaces() -> None:
    with pytest.raises(SearchSpaceError, match=r"nope.*svm_rbf"):
        load_search_space("nope")


def test_yaml_float_without_dot_is_a_number(tmp_path: Path) -> None:
    text = (
        "# x\nfamily: f\ndefaults: {C: 1.0}\n"
        "params:\n  C: {type: float, low: 1e-3, high: 1e2, log: true}\n"
    )
    assert SearchSpace.from_yaml(write(tmp_path, text, "f")).distributions["C"].high == 100.0


# (fragment replacing a line of VALID, key the error must name, words the message must hold)
INVALID = [
    ("  C: {type: float, low: 10, high: 1}", "params.C", "low must be < high, got low=10, high=1"),
    ("  C: {type: float, low: 0, high: 1, log: true}", "params.C", "log: true needs low > 0"),
    ("  C: {type: float, low: a, high: 1}", "params.C.low", "must be a number"),
    ("  C: {type: float, low: 1, high: 2, lgo: true}", "params.C.lgo", "unknown key"),
    ("  C: {type: floatt, low: 1, high: 2}", "params.C.type", "must be one of"),
    ("  C: {type: float, high: 2}", "params.C.low", "missing"),
    ("  C: {type: float, low: 0.1, high: 1.0, step: 0.4}", "params.C", "multiple of step"),
    ("  C: {type: float, low: 0.1, high: 1.0, step: 0.1, log: true}", "params.C", "log and step"),
    ("  degree: {type: int, low: 2.5, high: 5}", "params.degree.low", "must be an integer"),
    ("  degree: {type: int, low: 5, high: 5}", "params.degree", "low must be < high"),
    ("  gamma: {type: categorical, choices: []}", "params.gamma.choices", "non-empty list"),
    ("  gamma: {type: categorical, choices: [a, a]}", "params.gamma.choices", "repeat"),
    ("  gamma: {type: categorical, choices: [[1, 2]]}", "params.gamma.choices", "null, bool"),
    (
        "  l1_ratio: {type: float, low: 0, high: 1, when: {penalty: ridge}}",
        "params.l1_ratio.when.penalty",
        "not one of its choices",
    ),
    (
        "  l1_ratio: {type: float, low: 0, high: 1, when: {gamma: scale}}",
        "params.l1_ratio.when.gamma",
        "earlier param",
    ),
    (
        "  l1_ratio: {type: float, low: 0, high: 1, when: {degree: 3}}",
        "params.l1_ratio.when.degree",
        "categorical",
    ),
    (
        "defaults: {C: 1.0e6, degree: 3, penalty: l2, gamma: scale, step_param: 0.5}",
        "defaults.C",
        "outside the space",
    ),
    ("defaults: {C: 1.0, degree: 3, penalty: l2, gamma: scale}", "defaults.step_param", "missing"),
    (
        "defaults: {C: 1.0, degree: 3, penalty: l2, gamma: scale, step_param: 0.5, nu: 1}",
        "defaults.nu",
        "not a param",
    ),
    (
        "defaults: {C: 1.0, degree: 3, penalty: l2, gamma: scale, step_param: 0.55}",
        "defaults.step_param",
        "outside the space",
    ),
    ("family: other", "family", "must equal the file stem 'fam'"),
    ("fixed: yes please", "fixed", "true or false"),
    ("fixed: true", "params", "params must be empty"),
    ("famly: fam", "famly", "unknown key"),
    ("of: 3", "of", "must be a family name"),
    ("reduction: {pca: 8}", "reduction.pca", "unknown key"),
    (
        "reduction: {params: {pca_components: {type: int, low: 4, high: 64}}}",
        "reduction.defaults.pca_components",
        "missing",
    ),
    (
        f"reduction: {{defaults: {{pca_components: 2}}, params: {{{PCA}}}}}",
        "reduction.defaults.pca_components",
        "outside the space",
    ),
    (
        "reduction: {defaults: {whiten: 1}, params: {whiten: {type: int, low: 0, high: 1}}}",
        "reduction.params.whiten",
        "unknown key",
    ),
    (
        "reduction: {defaults: {pca_components: 8}, "
        "params: {pca_components: {type: int, low: 64, high: 4}}}",
        "reduction.params.pca_components",
        "low must be < high",
    ),
    (
        "reduction: {defaults: {pca_components: 8}, params: {pca_components: "
        "{type: int, low: 4, high: 64, when: {penalty: l2}}}}",
        "reduction.params.pca_components.when",
        "unconditional",
    ),
]


@pytest.mark.parametrize(("line", "key", "words"), INVALID, ids=[f"{k}:{w}" for _, k, w in INVALID])
def test_invalid_file_names_file_and_key(tmp_path: Path, line: str, key: str, words: str) -> None:
    text = VALID.format(name="fam").replace("defaults: {", "defaults: {step_param: 0.5, ")
    field = line.split(":")[0]
    lines = text.splitlines()
    matches = [i for i, old in enumerate(lines) if old.split(":")[0] == field]
    if matches:
        lines[matches[0]] = line
    else:  # a new top-level key
        lines.append(line)
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace.from_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert words in message, message


def test_a_declared_reduction_is_validated_but_never_sampled(tmp_path: Path) -> None:
    text = VALID.format(name="fam").replace("defaults: {", "defaults: {step_param: 0.5, ")
    plain = SearchSpace.from_yaml(write(tmp_path, text))
    text += f"reduction: {{defaults: {{pca_components: 8}}, params: {{{PCA}}}}}\n"
    space = SearchSpace.from_yaml(write(tmp_path, text))
    assert [p.name for p in space.reduction] == ["pca_components"]
    assert space.reduction[0].distribution == IntDistribution(4, 64, log=True)
    assert space.reduction_defaults == {"pca_components": 8}
    assert space.distributions == plain.distributions
    assert space.to_dict() == plain.to_dict()  # what a study samples and stores: unchanged
    assert space.defaults_for_trial() == plain.defaults_for_trial()


def test_duplicate_key_and_bad_yaml_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.format(name="fam") + "family: fam\n")
    with pytest.raises(SearchSpaceError, match=r"fam\.yaml.*duplicate key 'family'"):
        SearchSpace.from_yaml(path)
    path = write(tmp_path, "family: [unclosed\n")
    with pytest.raises(SearchSpaceError, match=r"fam\.yaml: not valid YAML"):
        SearchSpace.from_yaml(path)


def test_tuned_family_without_params_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "family: fam\nparams: {}\n")
    with pytest.raises(SearchSpaceError, match=r"fam\.yaml: params: .*fixed: true"):
        SearchSpace.from_yaml(path)


def test_fixed_family_loads_with_empty_params(tmp_path: Path) -> None:
    space = SearchSpace.from_yaml(write(tmp_path, "family: fam\nfixed: true\nparams: {}\n"))
    assert space.fixed and space.distributions == {} and space.defaults_for_trial() == {}


def test_conditional_params_appear_only_when_their_condition_holds(space: SearchSpace) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        values = space.suggest(trial)
        assert set(values) == set(trial.params)
        assert ("l1_ratio" in values) == (values["penalty"] == "elasticnet")
        assert ("shrink" in values) == (values["penalty"] in ("l1", "elasticnet"))
        seen.add(values["penalty"])
        study.tell(trial, 0.0)
    assert seen == {"l2", "l1", "elasticnet"}


def test_defaults_for_trial_drops_inactive_params_and_is_enqueued(tmp_path: Path) -> None:
    extra = "defaults: {step_param: 0.5, l1_ratio: 0.3, "
    text = VALID.format(name="fam").replace("defaults: {", extra)
    space = SearchSpace.from_yaml(write(tmp_path, text))
    assert "l1_ratio" in space.defaults
    enqueued = space.defaults_for_trial()
    assert enqueued == {"C": 1.0, "degree": 3, "step_param": 0.5, "penalty": "l2", "gamma": "scale"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(enqueued)
    study.optimize(lambda t: len(space.suggest(t)), n_trials=2)
    assert study.trials[0].params == enqueued
    assert study.trials[1].params != enqueued


def test_defaults_take_the_form_optuna_reports(tmp_path: Path) -> None:
    text = (
        "family: fam\ndefaults: {C: 1, flag: true, ratio: 1}\nparams:\n"
        "  C: {type: float, low: 0.5, high: 2}\n"
        "  flag: {type: categorical, choices: [true, false]}\n"
        "  ratio: {type: categorical, choices: [0.5, 1.0]}\n"
    )
    space = SearchSpace.from_yaml(write(tmp_path, text))
    assert space.defaults == {"C": 1.0, "flag": True, "ratio": 1.0}
    assert type(space.defaults["C"]) is float and type(space.defaults["ratio"]) is float
    with pytest.raises(SearchSpaceError, match=r"defaults\.flag: 1 lies outside"):
        SearchSpace.from_yaml(write(tmp_path, text.replace("flag: true", "flag: 1")))


def test_suggest_with_a_fixed_trial_rebuilds_finished_params() -> None:
    space = load_search_space("logreg")
    params = {"penalty": "elasticnet", "C": 0.5, "l1_ratio": 0.2}
    assert space.suggest(optuna.trial.FixedTrial(params)) == params
