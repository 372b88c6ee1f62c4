"""The plan of a benchmark (:mod:`benchmark.execution.plan`) on the generated folder: one job
per pair, protocol and outer fold, the baseline pair always in, skips with their reason, the
same jobs however often it is built, and what every run stores about itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_gtzan import make_fake_gtzan

import benchmark
from benchmark.data import Dataset
from benchmark.execution.plan import (
    RunOptions,
    feature_set_of,
    make_plan,
    provenance,
    tracker_tags,
)
from benchmark.results import PairKey


def _plan(cfg, data: Path, tmp_path: Path, **kw):
    opts = RunOptions(data_dir=str(data), results_root=tmp_path / "results")
    return make_plan(cfg, Dataset.open(data), opts, f"sqlite:///{tmp_path / 'o.db'}", **kw)


def test_one_job_per_pair_and_fold_on_shared_disjoint_splits(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    cfg = make_config()  # logreg and lda on csv_30s, 3 artist folds
    plan = _plan(cfg, fake_gtzan, tmp_path)
    keys = [(j.pair, j.fold) for j in plan.jobs]
    pairs = [PairKey("csv_30s", fam, "artist_kfold") for fam in ("logreg", "lda")]
    assert keys == [(p, f) for p in pairs for f in range(3)] and plan.skipped == []
    assert len({j.study_name for j in plan.jobs}) == 6
    assert all(j.study_name.endswith(cfg.digest()) for j in plan.jobs)
    assert [j.n_trials for j in plan.jobs] == [
        cfg.trials_for(p.family) for p in pairs for _ in "abc"
    ]
    tracks = Dataset.open(fake_gtzan).tracks["track_id"].to_numpy(dtype=str)
    for job in plan.jobs:
        assert not np.intersect1d(job.train_tracks, job.test_tracks).size
        assert sorted([*job.train_tracks, *job.test_tracks]) == sorted(tracks)
        assert len(job.inner_splits) == cfg.inner_folds
        assert all(
            np.isin(np.concatenate(part), job.train_tracks).all() for part in job.inner_splits
        )
    logreg, lda = plan.jobs[0], plan.jobs[3]  # every pair is scored on the same folds
    assert np.array_equal(logreg.test_tracks, lda.test_tracks)
    tests = plan.splits[plan.splits["part"] == "test"]
    assert sorted(tests["track_id"]) == sorted(tracks)  # each track tested in one fold
    assert set(plan.protocols) == {"artist_kfold"}


def test_the_same_config_plans_the_same_jobs(fake_gtzan: Path, tmp_path: Path, make_config) -> None:
    """``run`` and every worker build their work here: they must agree job for job."""
    cfg = make_config()
    a, b = _plan(cfg, fake_gtzan, tmp_path), _plan(cfg, fake_gtzan, tmp_path)
    assert [j.study_name for j in a.jobs] == [j.study_name for j in b.jobs]
    assert all(
        np.array_equal(x.test_tracks, y.test_tracks) for x, y in zip(a.jobs, b.jobs, strict=True)
    )
    other = _plan(make_config(seed=2), fake_gtzan, tmp_path)
    assert any(
        not np.array_equal(x.test_tracks, y.test_tracks)
        for x, y in zip(a.jobs, other.jobs, strict=True)
    )


def test_the_baseline_pair_is_planned_even_when_its_family_is_not_listed(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    plan = _plan(make_config(families=["logreg"]), fake_gtzan, tmp_path)
    assert list(dict.fromkeys(j.pair.family for j in plan.jobs)) == ["lda", "logreg"]
    only = _plan(make_config(), fake_gtzan, tmp_path, only_pairs=[("csv_30s", "logreg")])
    assert {j.pair.family for j in only.jobs} == {"logreg"}


def test_missing_inputs_skip_their_pairs_with_the_reason(tmp_path: Path, make_config) -> None:
    """A protocol the folder cannot split (no fault-filtered lists) and a feature set it cannot
    build (no audio) become one skip outcome per pair, never a job."""
    data = make_fake_gtzan(
        tmp_path / "g", n_per_genre=4, with_fault_filtered=False, with_images=False
    )
    cfg = make_config(
        feature_sets=["csv_30s", "librosa_30s"],
        protocols={"artist_kfold": {"n_folds": 2}, "fault_filtered": {}},
    )
    plan = _plan(cfg, data, tmp_path)
    assert {(j.pair.feature_set, j.pair.protocol) for j in plan.jobs} == {
        ("csv_30s", "artist_kfold")
    }
    skips = {(o.pair.feature_set, o.pair.family, o.pair.protocol): o for o in plan.skipped}
    assert all(o.status == "skip" and o.fold == -1 for o in plan.skipped)
    for fs in ("csv_30s", "librosa_30s"):
        for fam in ("logreg", "lda"):
            assert "fault-filtered split lists" in skips[(fs, fam, "fault_filtered")].message
    assert skips[("librosa_30s", "lda", "artist_kfold")].message
    assert len(plan.skipped) == 4 + 2
    assert set(plan.protocols) == {"artist_kfold"}


def test_provenance_and_tags_describe_the_run(fake_gtzan: Path, make_config) -> None:
    cfg = make_config()
    dataset = Dataset.open(fake_gtzan)
    prov = provenance(cfg, dataset)
    assert prov["benchmark"] == "t" and prov["config_digest"] == cfg.digest()
    assert prov["n_tracks"] == 80 and prov["data_checksum"] == dataset.checksum()
    assert prov["versions"]["genrebench"] == benchmark.__version__
    assert set(prov["versions"]) >= {"python", "numpy", "optuna", "scikit-learn"}
    tags = tracker_tags(cfg, prov)
    assert tags["seed"] == "1" and tags["config_digest"] == cfg.digest()
    assert "search_seed" not in tags
    assert tracker_tags(make_config(search_seed=4), prov)["search_seed"] == "4"


@pytest.mark.parametrize(("params", "n_jobs"), [({}, 3), ({"n_jobs": 1}, 1)])
def test_audio_feature_sets_extract_on_the_run_s_processes_unless_configured(
    make_config, params: dict, n_jobs: int
) -> None:
    cfg = make_config(n_jobs=3, feature_params={"librosa_30s": params} if params else None)
    assert feature_set_of(cfg, "librosa_30s").n_jobs == n_jobs  # type: ignore[attr-defined]
    assert not hasattr(feature_set_of(cfg, "csv_30s"), "n_jobs")
