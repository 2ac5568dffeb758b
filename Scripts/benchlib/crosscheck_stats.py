"""The statistics of change (group/stats.tsv, group/trend.tsv) recomputed with SciPy and statsmodels.

Used by crosscheck.py. Reads only the group tables nimetrics wrote (change_from_baseline.tsv,
metrics_long.tsv, visits.tsv) and compares, row by row:

- stats.tsv: n and the mean change (numpy), its 95 % interval (scipy.stats.ttest_1samp's
  confidence_interval), the sign-flip p-value (scipy.stats.permutation_test on (d,) with
  np.mean, permutation_type='samples', every pattern: n_resamples=inf), Spearman's rho
  (scipy.stats.spearmanr) and its p-value (permutation_test on (x,) with
  spearmanr(x, y).statistic, permutation_type='pairings', every ordering), and the
  Benjamini-Hochberg q-values (statsmodels multipletests(method='fdr_bh')) per modality x atlas
  x metric x session. Exact p-values must agree exactly; estimates within 1e-6 of the
  reference, relative to max(|reference|, its standard error) (the mean change's scale is
  the standard error of the mean, rho's is 1). Monte Carlo p-values (n > 16 sign flips, n > 8
  pairings) come from different random streams and are not compared.
- trend.tsv: statsmodels MixedLM value ~ visit_month, groups=participant, REML. statsmodels'
  default optimisers stop early on these problems (variances of 1e-12 for MD), leaving the SE
  up to 3 % off; so y is standardised and the fit uses Powell with xtol 1e-13 (Nelder-Mead
  when Powell fails), then slope and SE are rescaled. The SE is statsmodels' bse_fe where every
  participant has the same visit months (its Hessian then has no fixed/variance cross terms
  and bse_fe is the model-based SE nimetrics reports); elsewhere it is the model-based SE
  sqrt[(X'V^-1 X)^-1] computed from statsmodels' variance estimates. Slope and SE within 1e-6
  of statsmodels relative to the SE. statsmodels reports z (normal) p-values and no degrees of
  freedom; nimetrics uses Satterthwaite's t, so p is compared only through the t statistic
  (slope/SE, the same within 1e-6) and its df is reported, not compared.
"""

import math
import os
import time
import warnings

import numpy as np


def read(path):
    import pandas as pd
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"atlas": str})


def _atlas(value):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _rel(a, b, scale):
    """|a - b| / max(|b|, scale); 0 when both are missing, infinite when one is."""
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    return abs(a - b) / max(abs(b), scale, 1e-300)


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def outcome_changes(visits, outcome):
    """outcome(visit) - outcome(baseline); the baseline is each participant's visit at month 0
    (the demo's sessions.tsv says so; nimetrics chooses it by acq_time, the same visit)."""
    out = {}
    if outcome not in visits.columns:
        return out
    for pid, rows in visits.groupby("participant_id"):
        base = rows.sort_values("visit_month").iloc[0]
        for _, r in rows.iterrows():
            if np.isfinite(r[outcome]) and np.isfinite(base[outcome]):
                out[(pid, r["session_id"])] = float(r[outcome]) - float(base[outcome])
    return out


def reference_stats(changes, visits, stats):
    from scipy import stats as st
    from statsmodels.stats.multitest import multipletests
    outcome = stats["clinical_outcome"].dropna().iloc[0] if stats["clinical_outcome"].notna().any() else None
    dy = outcome_changes(visits, outcome) if outcome else {}
    groups = {}
    for r in changes.itertuples(index=False):
        groups.setdefault((r.modality, _atlas(r.atlas), r.region, r.metric, r.session_id), []).append((r.participant_id, r.delta))
    ref = []
    for r in stats.itertuples(index=False):
        rows = [(p, d) for p, d in groups.get((r.modality, _atlas(r.atlas), r.region, r.metric, r.session_id), []) if np.isfinite(d)]
        d = np.array([x for _, x in rows], dtype=float)
        e = dict(n=len(d), mean=float(np.mean(d)) if len(d) else None, ci=(None, None), p=None, exact_p=False,
                 rho=None, p_rho=None, exact_rho=False, n_outcome=0, se=None)
        if len(d) >= 2:
            sd = float(np.std(d, ddof=1))
            e["se"] = sd / math.sqrt(len(d))
            if sd > 0:
                ci = st.ttest_1samp(d, 0).confidence_interval(0.95)
                e["ci"] = (float(ci.low), float(ci.high))
            if len(d) <= 16:
                res = st.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                                          n_resamples=np.inf, alternative="two-sided", vectorized=True)
                e["p"], e["exact_p"] = float(res.pvalue), True
        pairs = [(x, dy[(p, r.session_id)]) for p, x in rows if (p, r.session_id) in dy]
        e["n_outcome"] = len(pairs)
        if len(pairs) >= 2:
            x = np.array([a for a, _ in pairs]); y = np.array([b for _, b in pairs])
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                e["rho"] = float(st.spearmanr(x, y).statistic)
                if len(pairs) <= 8:
                    res = st.permutation_test((x,), lambda xs: st.spearmanr(xs, y).statistic,
                                              permutation_type="pairings", n_resamples=np.inf, alternative="two-sided")
                    e["p_rho"], e["exact_rho"] = float(res.pvalue), True
        ref.append(e)
    # Benjamini-Hochberg per modality x atlas x metric x session, over the rows with a p-value.
    for field, qfield in (("p_sign_flip", "q_sign"), ("p_spearman", "q_rho")):
        fam = {}
        for i, r in enumerate(stats.itertuples(index=False)):
            fam.setdefault((r.modality, _atlas(r.atlas), r.metric, r.session_id), []).append(i)
        for members in fam.values():
            idx = [i for i in members if np.isfinite(stats[field].iloc[i])]
            for i in members:
                ref[i][qfield] = None
            if idx:
                q = multipletests(stats[field].iloc[idx].to_numpy(dtype=float), method="fdr_bh")[1]
                for i, qi in zip(idx, q):
                    ref[i][qfield] = float(qi)
    return ref


def compare_stats(stats, ref, check, log):
    worst = dict(mean=0.0, ci=0.0, rho=0.0, q=0.0)
    exact_p = exact_rho = p_mismatch = 0
    counts_bad = 0
    for r, e in zip(stats.itertuples(index=False), ref):
        if r.n != e["n"] or r.n_outcome != e["n_outcome"]:
            counts_bad += 1
        se = e["se"] or 0.0
        worst["mean"] = max(worst["mean"], _rel(_num(r.mean_change), e["mean"], se))
        worst["ci"] = max(worst["ci"], _rel(_num(r.ci_low), e["ci"][0], se), _rel(_num(r.ci_high), e["ci"][1], se))
        worst["rho"] = max(worst["rho"], _rel(_num(r.spearman_rho), e["rho"], 1.0))
        if e["exact_p"]:
            exact_p += 1
            if _num(r.p_sign_flip) != e["p"]:
                p_mismatch += 1
                log(f"    sign-flip p differs: {r.modality} {r.region} {r.metric} {r.session_id}: {r.p_sign_flip} vs {e['p']!r}")
        if e["exact_rho"]:
            exact_rho += 1
            if _num(r.p_spearman) != e["p_rho"]:
                p_mismatch += 1
                log(f"    Spearman p differs: {r.modality} {r.region} {r.metric} {r.session_id}: {r.p_spearman} vs {e['p_rho']!r}")
        worst["q"] = max(worst["q"], _rel(_num(r.q_sign_flip), e["q_sign"], 1.0), _rel(_num(r.q_spearman), e["q_rho"], 1.0))
    check(f"stats.tsv rows whose n or n_outcome differs from the reference ({len(stats)} rows)", counts_bad, 0, fmt="{:d}")
    check("mean change, max |diff| / max(|ref|, SE of the mean) vs numpy", worst["mean"], 1e-6, fmt="{:.2e}")
    check("95 % CI of the mean change vs scipy ttest_1samp, max |diff| / max(|ref|, SE)", worst["ci"], 1e-6, fmt="{:.2e}")
    check(f"exact p-values that differ from scipy permutation_test ({exact_p} sign-flip, {exact_rho} Spearman)",
          p_mismatch, 0, fmt="{:d}")
    check("Spearman rho vs scipy spearmanr, max |diff|", worst["rho"], 1e-6, fmt="{:.2e}")
    check("BH q-values vs statsmodels multipletests fdr_bh, max |diff|", worst["q"], 1e-6, fmt="{:.2e}")


def fit_statsmodels(df):
    """MixedLM REML on standardised y, tight Powell (Nelder-Mead if it fails); slope, SE (as
    described in the module docstring), sd of the intercepts and of the residual."""
    import statsmodels.formula.api as smf
    mean, sd = df["value"].mean(), df["value"].std()
    if not sd > 0:
        return None
    d = df.assign(value=(df["value"] - mean) / sd)
    fit = None
    for kw in (dict(method=["powell"], xtol=1e-13, ftol=1e-15, maxiter=20000),
               dict(method=["nm"], xtol=1e-13, ftol=1e-15, maxiter=20000, maxfun=40000)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = smf.mixedlm("value ~ visit_month", d, groups=d["participant_id"]).fit(reml=True, **kw)
            break
        except Exception:
            fit = None
    if fit is None:
        return None
    months = df.groupby("participant_id")["visit_month"].apply(lambda s: tuple(sorted(s)))
    balanced = months.nunique() == 1
    scale, vb = float(fit.scale), float(fit.cov_re.iloc[0, 0])
    if balanced:
        se = float(fit.bse_fe.iloc[1])
    else:
        info = np.zeros((2, 2))
        for _, g in d.groupby("participant_id"):
            X = np.column_stack([np.ones(len(g)), g["visit_month"].to_numpy(float)])
            V = scale * np.eye(len(g)) + vb * np.ones((len(g), len(g)))
            info += X.T @ np.linalg.solve(V, X)
        se = float(math.sqrt(np.linalg.inv(info)[1, 1]))
    return dict(slope=float(fit.fe_params.iloc[1]) * sd, se=se * sd, sd_intercept=math.sqrt(max(vb, 0)) * sd,
                sd_residual=math.sqrt(scale) * sd, z_p=float(fit.pvalues.iloc[1]), balanced=balanced)


def compare_trend(metrics, visits, trend, check, log):
    data = metrics[metrics["run"].isna()].merge(visits[["participant_id", "session_id", "visit_month"]],
                                                 on=["participant_id", "session_id"])
    data = data[np.isfinite(data["value"]) & np.isfinite(data["visit_month"])]
    data = data.assign(atlas_key=data["atlas"].map(_atlas))
    groups = {k: g for k, g in data.groupby(["modality", "atlas_key", "region", "metric"])}
    worst = dict(slope=0.0, se=0.0, sd=0.0)
    fitted = unbalanced = missing = 0
    dfs = []
    for r in trend.itertuples(index=False):
        g = groups.get((r.modality, _atlas(r.atlas), r.region, r.metric))
        if g is None or not np.isfinite(r.slope):
            continue
        ref = fit_statsmodels(g)
        if ref is None:
            missing += 1
            continue
        fitted += 1
        unbalanced += 0 if ref["balanced"] else 1
        worst["slope"] = max(worst["slope"], abs(r.slope - ref["slope"]) / ref["se"])
        worst["se"] = max(worst["se"], abs(r.se - ref["se"]) / ref["se"])
        scale = ref["sd_residual"]
        worst["sd"] = max(worst["sd"], abs(r.sd_intercept - ref["sd_intercept"]) / scale,
                          abs(r.sd_residual - ref["sd_residual"]) / scale)
        dfs.append(r.df)
    check(f"trend.tsv rows statsmodels could not fit ({fitted} fitted, {unbalanced} with unequal visit months)",
          missing, 0, fmt="{:d}")
    check("LMM slope vs statsmodels MixedLM REML, max |diff| / SE", worst["slope"], 1e-6, fmt="{:.2e}")
    check("LMM SE of the slope vs statsmodels (model-based), max |diff| / SE", worst["se"], 1e-6, fmt="{:.2e}")
    check("LMM sd of intercepts and residual vs statsmodels, max |diff| / residual sd", worst["sd"], 1e-4, fmt="{:.2e}",
          informational=True)
    if dfs:
        check("Satterthwaite df of the slope, median (statsmodels has none: z test)", float(np.median(dfs)), 0,
              fmt="{:.3f}", informational=True)


def compare_group(g, label, check, log, set_current):
    stats, trend = read(f"{g}/stats.tsv"), read(f"{g}/trend.tsv")
    changes, metrics, visits = read(f"{g}/change_from_baseline.tsv"), read(f"{g}/metrics_long.tsv"), read(f"{g}/visits.tsv")
    set_current(f"{label} stats.tsv ({len(stats)} rows)")
    compare_stats(stats, reference_stats(changes, visits, stats), check, log)
    set_current(f"{label} trend.tsv ({len(trend)} rows)")
    compare_trend(metrics, visits, trend, check, log)


def stats_case(a, check, log, run, set_current):
    """Runs the demo trial with nimetrics (participant level skipped where done) and compares
    its stats.tsv and trend.tsv with the references; then again with one visit's outputs
    removed (n = 4 at that session, unequal visit months in the trend)."""
    import shutil
    demo = os.path.join(a.work, "demo-trial")
    data, out = os.path.join(demo, "data"), os.path.join(demo, "derivatives")
    if not os.path.exists(os.path.join(data, "dataset_description.json")):
        run([a.bin, "demo", "--out", data])
    run([a.bin, "run", data, out, "participant", "--atlas", os.path.join(data, "atlas/atlas-demo_dseg.nii.gz"),
         "--fd-threshold", "0.5"])
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run([a.bin, "run", data, out, "group"])
        times.append(time.perf_counter() - start)
    log(f"== statistics: demo trial, group stage {min(times):.2f} s (best of 3)")
    set_current("demo trial")
    check("group stage wall time, s, best of 3 (tables, statistics, database)", min(times), 0, fmt="{:.2f}",
          informational=True)
    compare_group(os.path.join(out, "group"), "demo trial", check, log, set_current)
    # One visit missing: sub-02's m03 outputs removed from a copy.
    partial = os.path.join(demo, "derivatives-missing-visit")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(out, partial, ignore=shutil.ignore_patterns("group"), symlinks=True)
    shutil.rmtree(os.path.join(partial, "sub-02", "ses-m03"))
    run([a.bin, "run", data, partial, "group"])
    log("== statistics: demo trial without sub-02 ses-m03")
    compare_group(os.path.join(partial, "group"), "demo trial, sub-02 m03 missing", check, log, set_current)
