"""Cross-checks nimetrics against DIPY, MRtrix3, nilearn, nibabel, numpy, SimpleITK, SciPy and statsmodels.

Called by Scripts/crosscheck. Prints every number, writes docs/validation.md with
--write-docs, and exits 1 when a comparison is outside its tolerance (TOLERANCES below).
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Tolerances, with why. FA is unitless; MD differences are relative to the mean MD in the mask.
TOLERANCES = {
    # Same estimator (one WLS pass with weights from the OLS prediction) as DIPY: only
    # floating-point and eigen-solver differences remain.
    "fa_mad_dipy": 1e-4,
    "md_relmad_dipy": 1e-4,
    # Worst voxel, voxels where either tool has a non-positive eigenvalue left out (DIPY clips
    # eigenvalues at 0, nimetrics keeps them, by design).
    "fa_max_dipy": 5e-3,
    "md_relmax_dipy": 5e-3,
    # MRtrix3 dwi2tensor default (-iter 2) compared with nimetrics --iterations 2. The
    # estimators are not identical: MRtrix's first step is WLS weighted by the observed
    # signal, nimetrics's (and DIPY's) is OLS, so on noisy real data the two differ at the
    # level of the estimator's noise; on the synthetic inputs they agree to ~1e-5. Set
    # after the first run on DIPY's real files (worst: small_64D, FA 0.045; small_101D, MD
    # 0.041 of the mean), with margin.
    "fa_mad_mrtrix": 5e-3,
    "md_relmad_mrtrix": 5e-3,
    "fa_max_mrtrix": 0.1,
    "md_relmax_mrtrix": 0.1,
    # Principal eigenvector, voxels with FA > 0.3: median |cos| of the angle.
    "v1_median_cos": 0.999,
    # Correlation matrices vs nilearn, same denoising, no filter (issue target).
    "corr_maxabs": 1e-3,
    # ALFF/fALFF vs numpy on nimetrics's own region series (relative, per region).
    "alff_relmax": 1e-6,
    "falff_maxabs": 1e-6,
    # Header: affine entries (mm) and TR (s) vs nibabel.
    "affine_maxabs": 1e-4,
}

failures = []
report = []  # markdown lines
stats_report = []  # markdown lines of the statistics section
STATS_BEGIN = "<!-- statistics of change: written by Scripts/crosscheck -->"
STATS_END = "<!-- end of statistics of change -->"


def log(msg):
    print(msg, flush=True)


def check(name, value, tol, fmt="{:.3g}", higher_is_better=False, informational=False):
    ok = (value >= tol) if higher_is_better else (value <= tol)
    ok = ok and np.isfinite(value)
    sign = ">=" if higher_is_better else "<="
    status = "info" if informational else ("ok" if ok else "FAIL")
    log(f"  {name}: {fmt.format(value)} (tolerance {sign} {tol:g}) {status}")
    if not ok and not informational:
        failures.append(f"{CURRENT}: {name} = {fmt.format(value)}, tolerance {sign} {tol:g}")
    report.append(f"| {CURRENT} | {name.replace('|', chr(92) + '|')} | {fmt.format(value)} | {'' if informational else sign + ' ' + format(tol, 'g')} | {status} |")


CURRENT = ""


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"command failed (exit {r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-2000:]}")
    return r


def load(path):
    return np.asanyarray(nib.load(path).dataobj).astype(np.float64)


def nim_dti(bin, dwi, bval, bvec, mask, out, extra=()):
    """nimetrics dti with its default choice of volumes (no --max-b): every input here is
    single-shell, or already reduced to b <= 1500 for every tool."""
    shutil.rmtree(out, ignore_errors=True)
    r = run([bin, "dti", "--dwi", dwi, "--bval", bval, "--bvec", bvec, "--mask", mask, "--threads", "2",
             "--out", out, "--prefix", "x", *extra])
    for line in r.stderr.splitlines():
        log(f"  nimetrics: {line}")
    m = lambda p: load(os.path.join(out, f"x_model-tensor_param-{p}_dwimap.nii.gz"))
    tensor = m("tensor")
    with open(os.path.join(out, "x_model-tensor_dwimap.json")) as f:
        sidecar = json.load(f)
    return dict(fa=m("fa"), md=m("md"), v1=m("v1"), tensor=tensor, sidecar=sidecar)


def min_eig(tensor6):
    """Smallest eigenvalue per voxel of a (..., 6) tensor D11 D12 D13 D22 D23 D33."""
    t = tensor6
    D = np.stack([np.stack([t[..., 0], t[..., 1], t[..., 2]], -1),
                  np.stack([t[..., 1], t[..., 3], t[..., 4]], -1),
                  np.stack([t[..., 2], t[..., 4], t[..., 5]], -1)], -2)
    return np.linalg.eigvalsh(D)[..., 0]


def compare_maps(tag, nim, peer, mask, tol_prefix, valid, fa_within=None):
    sel = mask & valid & np.isfinite(peer["fa"]) & np.isfinite(nim["fa"])
    dfa = np.abs(nim["fa"][sel] - peer["fa"][sel])
    mdm = np.mean(np.abs(nim["md"][sel]))
    dmd = np.abs(nim["md"][sel] - peer["md"][sel]) / mdm
    log(f"  {tag}: {sel.sum()} voxels compared")
    if sel.sum() == 0:
        check(f"voxels compared with {tag}", 0.0, 1, higher_is_better=True)
        return
    check(f"FA mean |diff| vs {tag}", dfa.mean(), TOLERANCES[f"fa_mad_{tol_prefix}"])
    check(f"FA worst voxel vs {tag}", dfa.max(), TOLERANCES[f"fa_max_{tol_prefix}"])
    if fa_within is not None:
        check(f"FA within {fa_within:g} of {tag} in every voxel (worst |diff|)", dfa.max(), fa_within)
    check(f"MD mean |diff| / mean MD vs {tag}", dmd.mean(), TOLERANCES[f"md_relmad_{tol_prefix}"])
    check(f"MD worst voxel / mean MD vs {tag}", dmd.max(), TOLERANCES[f"md_relmax_{tol_prefix}"])


def v1_cos(a, b, sel):
    a, b = a[sel], b[sel]
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    ok = (na > 0) & (nb > 0)
    return np.abs((a[ok] * b[ok]).sum(-1) / (na[ok] * nb[ok]))


def dti_case(a, name, dwi, bval, bvec, mask, work, fa_v1_min=0.3, fa_within=None, all_volumes=None):
    """fa_within: also check every voxel's FA against both peers with this tolerance.
    all_volumes: the b-values nimetrics's default must fit (none left out), from its sidecar."""
    global CURRENT
    CURRENT = name
    log(f"== dti: {name}")
    w = os.path.join(work, name)
    os.makedirs(w, exist_ok=True)
    m = load(mask) > 0
    # nimetrics: one WLS pass (as DIPY), world frame; two passes (as MRtrix's default).
    n1 = nim_dti(a.bin, dwi, bval, bvec, mask, f"{w}/nim1", ["--vector-frame", "world"])
    n2 = nim_dti(a.bin, dwi, bval, bvec, mask, f"{w}/nim2", ["--vector-frame", "world", "--iterations", "2"])
    nf = nim_dti(a.bin, dwi, bval, bvec, mask, f"{w}/nimf", ["--vector-frame", "fsl"])
    # DIPY WLS.
    run([a.python, f"{HERE}/dipy_dti.py", dwi, bval, bvec, mask, f"{w}/dipy", "--evecs"])
    dipy = dict(fa=load(f"{w}/dipy/fa.nii.gz"), md=load(f"{w}/dipy/md.nii.gz"), v1=load(f"{w}/dipy/v1.nii.gz"))
    # MRtrix3. It turns a 'nan' b-vector (DIPY's small_64D writes one for its b=0) into NaN
    # tensors everywhere, so it gets a copy with nan replaced by 0.
    mr_bvec = bvec
    if "nan" in open(bvec).read().lower():
        mr_bvec = f"{w}/mrtrix_sanitized.bvec"
        v = np.nan_to_num(np.loadtxt(bvec))
        np.savetxt(mr_bvec, v, fmt="%.10g")
        log("  MRtrix3 gets a copy of the bvec file with nan replaced by 0")
    run(["dwi2tensor", "-quiet", "-force", "-nthreads", "2", "-fslgrad", mr_bvec, bval, "-mask", mask, dwi, f"{w}/dt.mif"])
    run(["tensor2metric", "-quiet", "-force", "-nthreads", "2", "-fa", f"{w}/mr_fa.nii", "-adc", f"{w}/mr_md.nii",
         "-vector", f"{w}/mr_v1.nii", "-modulate", "none", f"{w}/dt.mif"])
    mr = dict(fa=load(f"{w}/mr_fa.nii"), md=load(f"{w}/mr_md.nii"), v1=load(f"{w}/mr_v1.nii"))
    valid1 = min_eig(n1["tensor"]) > 0
    valid2 = min_eig(n2["tensor"]) > 0
    log(f"  mask {m.sum()} voxels; nimetrics non-positive eigenvalue in {int((m & ~valid1).sum())}")
    if all_volumes is not None:
        car = n1["sidecar"]
        log(f"  nimetrics sidecar: ShellSelection '{car['ShellSelection']}', BValuesUsed {car['BValuesUsed']}, "
            f"VolumesUsed {car['VolumesUsed']}, VolumesLeftOut {car['VolumesLeftOut']}")
        fitted = car["VolumesLeftOut"] == 0 and car["BValuesUsed"] == all_volumes
        check(f"nimetrics's default (no --max-b) fits every volume, b-values {all_volumes} (0 = yes)",
              0.0 if fitted else 1.0, 0, fmt="{:g}")
    compare_maps("DIPY WLS", n1, dipy, m, "dipy", valid1 & (dipy["md"] > 0), fa_within)
    compare_maps("MRtrix3 (-iter 2, nimetrics --iterations 2)", n2, mr, m, "mrtrix", valid2 & (mr["md"] > 0), fa_within)
    sel = m & valid2 & (n2["fa"] > fa_v1_min)
    cos = v1_cos(n2["v1"], mr["v1"], sel)
    if cos.size:
        check(f"V1 world frame vs MRtrix3 tensor2metric -vector, median |cos| (FA > {fa_v1_min}, {cos.size} voxels)",
              float(np.median(cos)), TOLERANCES["v1_median_cos"], fmt="{:.6f}", higher_is_better=True)
        check("V1 world vs MRtrix3, 5th percentile |cos|", float(np.percentile(cos, 5)), 0, fmt="{:.6f}",
              higher_is_better=True, informational=True)
    sel = m & valid1 & (nf["fa"] > fa_v1_min)
    cos = v1_cos(nf["v1"], dipy["v1"], sel)
    if cos.size:
        check(f"V1 FSL frame vs DIPY evecs (bvec frame), median |cos| ({cos.size} voxels)",
              float(np.median(cos)), TOLERANCES["v1_median_cos"], fmt="{:.6f}", higher_is_better=True)
    return n1


def make_mask(dwi, bval, out):
    img = nib.load(dwi)
    data = np.asanyarray(img.dataobj).astype(np.float64)
    b = np.loadtxt(bval).ravel()
    b0 = data[..., b <= 50].mean(-1)
    mask = (b0 > 0.2 * np.percentile(b0[b0 > 0], 98)) & np.all(data > 0, axis=-1)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine), out)
    return out


def select_volumes(dwi, bval, bvec, keep_max_b, out_prefix, transpose=False):
    """A copy of a DWI with only the volumes b <= keep_max_b (same layout of the bvec file)."""
    img = nib.load(dwi)
    data = np.asanyarray(img.dataobj)
    b = np.loadtxt(bval).ravel()
    v = np.loadtxt(bvec)
    rows = v.shape[0] == 3 and v.shape[1] != 3
    keep = b <= keep_max_b
    if rows:
        v = v[:, keep]
    else:
        v = v[keep]
    nib.save(nib.Nifti1Image(data[..., keep], img.affine, img.header), out_prefix + ".nii.gz")
    np.savetxt(out_prefix + ".bval", b[keep][None], fmt="%g")
    np.savetxt(out_prefix + ".bvec", v.T if transpose else v, fmt="%.8f")
    return out_prefix + ".nii.gz", out_prefix + ".bval", out_prefix + ".bvec"


def oblique_variant(dwi, bval, bvec, mask, out):
    """The bench DWI cropped, with a RAS oblique affine, x of the bvecs negated (FSL's rule for
    a positive determinant, so the voxel data stay consistent) and the bvec file transposed."""
    img = nib.load(dwi)
    data = np.asanyarray(img.dataobj)[24:72, 24:72, 20:40]
    m = np.asanyarray(nib.load(mask).dataobj)[24:72, 24:72, 20:40]
    ax, az = np.deg2rad(15), np.deg2rad(10)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([2.0, 2.0, 2.0])
    aff[:3, 3] = [-40, -50, -20]
    os.makedirs(out, exist_ok=True)
    hdr = nib.Nifti1Header()
    hdr.set_qform(aff, 1)
    hdr.set_sform(aff, 1)
    nib.save(nib.Nifti1Image(data, aff, hdr), f"{out}/obl_dwi.nii.gz")
    nib.save(nib.Nifti1Image(m.astype(np.uint8), aff), f"{out}/obl_mask.nii.gz")
    v = np.loadtxt(bvec)
    v[0] *= -1
    np.savetxt(f"{out}/obl_dwi.bvec", v.T, fmt="%.8f")
    shutil.copy(bval, f"{out}/obl_dwi.bval")
    # The same crop with the original LAS affine, for a self-consistency check.
    laff = img.affine.copy()
    nib.save(nib.Nifti1Image(data, laff), f"{out}/las_dwi.nii.gz")
    nib.save(nib.Nifti1Image(m.astype(np.uint8), laff), f"{out}/las_mask.nii.gz")
    shutil.copy(bvec, f"{out}/las_dwi.bvec")
    shutil.copy(bval, f"{out}/las_dwi.bval")
    return out


def info_case(a, paths):
    global CURRENT
    log("== headers: nimetrics info vs nibabel")
    r = run([a.bin, "info", "--json", *paths])
    infos = json.loads(r.stdout)
    if isinstance(infos, dict):
        infos = [infos]
    for path, info in zip(paths, infos):
        CURRENT = "info " + os.path.basename(path)
        img = nib.load(path)
        codes = "".join(nib.aff2axcodes(img.affine))
        d = np.abs(np.array(info["affine"]) - img.affine).max()
        check(f"affine max |diff| (mm), {codes}", d, TOLERANCES["affine_maxabs"], fmt="{:.2e}")
        same = list(info["shape"]) == list(img.shape) and info["axcodes"] == codes
        check(f"shape {list(img.shape)} and axcodes {codes} equal (0 = yes)", 0.0 if same else 1.0, 0, fmt="{:g}")
        if len(img.shape) == 4:
            unit = img.header.get_xyzt_units()[1]
            scale = {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)
            tr = float(img.header.get_zooms()[3]) * scale
            check(f"TR (s) |diff| (header {img.header.get_zooms()[3]:g} {unit})",
                  abs((info["tr"] or float("nan")) - tr), 1e-6, fmt="{:.3g}")


def read_tsv_matrix(path):
    import pandas as pd
    t = pd.read_csv(path, sep="\t", na_values="n/a")
    return t


def fmri_case(a, name, bold, atlas, confounds, work, mask=None, tr=2.0):
    """Correlation vs nilearn (same denoising, no filter) and ALFF/fALFF vs numpy."""
    global CURRENT
    CURRENT = name
    log(f"== fmri: {name}")
    w = os.path.join(work, name)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    cmd = [a.bin, "fmri", "--bold", bold, "--atlas", atlas, "--threads", "2", "--high-pass", "0", "--low-pass", "0",
           "--out", w, "--prefix", "x", "--tr", str(tr)]
    if confounds:
        cmd += ["--confounds", confounds, "--strategy", "6P"]
    if mask:
        cmd += ["--mask", mask]
    run(cmd)
    corr = read_tsv_matrix(f"{w}/x_stat-pearsoncorrelation_relmat.tsv")
    names = list(corr.columns[1:]) if corr.columns[0] in ("", "region", "index", "name") else list(corr.columns)
    C = corr[names].to_numpy(dtype=float)
    ncmd = [a.python, f"{HERE}/nilearn_fmri.py", bold, atlas, confounds or "-", f"{w}/nilearn.tsv", "--tr", str(tr),
            "--empirical", "--timeseries", f"{w}/nilearn_ts.tsv"]
    if mask:
        ncmd += ["--mask", mask]
    run(ncmd)
    N = np.loadtxt(f"{w}/nilearn.tsv", delimiter="\t")
    if N.shape != C.shape:
        raise RuntimeError(f"{name}: nimetrics matrix {C.shape} vs nilearn {N.shape}")
    both = np.isfinite(C) & np.isfinite(N)
    np.fill_diagonal(both, False)
    check(f"correlation max |diff| vs nilearn ({C.shape[0]} regions, detrend + {'6 confounds' if confounds else 'no confounds'}, no filter)",
          np.abs(C - N)[both].max(), TOLERANCES["corr_maxabs"], fmt="{:.2e}")
    # ALFF / fALFF on nimetrics's own series (unfiltered, so the mean time series TSV is
    # the detrended, confound-regressed series the amplitude uses).
    ts = read_tsv_matrix(f"{w}/x_stat-mean_timeseries.tsv").to_numpy(dtype=float)
    regions = read_tsv_matrix(f"{w}/x_desc-regions_bold.tsv")
    alff, falff = amplitude(ts, tr)
    got_a = regions["alff"].to_numpy(dtype=float)
    got_f = regions["falff"].to_numpy(dtype=float)
    ok = np.isfinite(got_a) & np.isfinite(alff)
    check("ALFF max relative |diff| vs numpy on nimetrics's series", (np.abs(got_a - alff)[ok] / np.abs(alff[ok])).max(),
          TOLERANCES["alff_relmax"], fmt="{:.2e}")
    check("fALFF max |diff| vs numpy on nimetrics's series", np.abs(got_f - falff)[ok].max(),
          TOLERANCES["falff_maxabs"], fmt="{:.2e}")
    # The band-passed pipeline (the benchmark's settings) vs the documented steps in numpy,
    # from region means computed here; and, for information, vs nilearn's Butterworth filter.
    wf = w + "-bandpass"
    shutil.rmtree(wf, ignore_errors=True)
    fcmd = [x if x != w else wf for x in cmd]
    fcmd[fcmd.index("--high-pass") + 1] = "0.01"
    fcmd[fcmd.index("--low-pass") + 1] = "0.08"
    # A band of 0.01-0.08 Hz keeps 2 N (0.08 - 0.01) TR frequency dimensions: a run too short
    # for that must be refused (too few degrees of freedom), never give correlations.
    n_volumes = nib.load(bold).shape[3]
    kept = int(np.floor(0.08 * n_volumes * tr)) - int(np.ceil(0.01 * n_volumes * tr)) + 1
    if 2 * kept - 1 < 10:
        r = subprocess.run(fcmd, capture_output=True, text=True)
        refused = r.returncode == 1 and "too few degrees of freedom" in r.stderr
        check(f"band-passed run of {n_volumes} volumes refused for too few degrees of freedom (1 = yes)",
              1.0 if refused else 0.0, 1, fmt="{:.0f}", higher_is_better=True)
        return
    run(fcmd)
    Cf = read_tsv_matrix(f"{wf}/x_stat-pearsoncorrelation_relmat.tsv")[names].to_numpy(dtype=float)
    conf = None
    if confounds:
        import pandas as pd
        conf = pd.read_csv(confounds, sep="\t", na_values="n/a")[
            ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]].to_numpy(dtype=float)
    raw = region_means(bold, atlas, mask)
    ref = np.corrcoef(clean_numpy(raw, conf, tr, 0.01, 0.08), rowvar=False)
    both = np.isfinite(Cf) & np.isfinite(ref)
    np.fill_diagonal(both, False)
    check("band-passed 0.01-0.08 Hz correlation max |diff| vs numpy (documented FFT filter)",
          np.abs(Cf - ref)[both].max(), TOLERANCES["corr_maxabs"], fmt="{:.2e}")
    try:
        run([a.python, f"{HERE}/nilearn_fmri.py", bold, atlas, confounds or "-", f"{wf}/nilearn.tsv", "--tr", str(tr),
             "--empirical", "--high-pass", "0.01", "--low-pass", "0.08"] + (["--mask", mask] if mask else []))
        Nf = np.loadtxt(f"{wf}/nilearn.tsv", delimiter="\t")
        check("band-passed correlation max |diff| vs nilearn Butterworth (different filter; informational)",
              np.abs(Cf - Nf)[both].max(), 0, fmt="{:.2e}", informational=True)
        check("band-passed correlation mean |diff| vs nilearn Butterworth (informational)",
              np.abs(Cf - Nf)[both].mean(), 0, fmt="{:.2e}", informational=True)
    except RuntimeError as e:  # e.g. scipy's filtfilt needs more than 33 samples
        last = str(e).strip().splitlines()[-1]
        log(f"  nilearn band-pass not comparable here: {last}")
        report.append(f"| {CURRENT} | band-passed correlation vs nilearn | not run: {last} | | info |")
    # Informational: the series themselves vs nilearn's (nilearn's clean returns the same
    # detrended, regressed series when no filter is set).
    nts = np.loadtxt(f"{w}/nilearn_ts.tsv", delimiter="\t").reshape(ts.shape[0], -1)
    scale = np.nanstd(nts)
    check("region series max |diff| / sd vs nilearn (informational)", np.nanmax(np.abs(ts - nts)) / scale, 0,
          fmt="{:.2e}", informational=True)


def region_means(bold, atlas, mask=None):
    """T x R region means as nimetrics documents them: voxels of each label inside the brain
    mask (the given mask, else the voxels non-zero in the first volume)."""
    data = np.asanyarray(nib.load(bold).dataobj).astype(np.float64)
    lab = np.asanyarray(nib.load(atlas).dataobj).astype(int)
    brain = (np.asanyarray(nib.load(mask).dataobj) > 0) if mask else (data[..., 0] != 0)
    flat = data.reshape(-1, data.shape[-1])
    lab, brain = lab.ravel(), brain.ravel()
    ids = sorted(set(np.unique(lab)) - {0})
    return np.stack([flat[(lab == r) & brain].mean(0) for r in ids], axis=1)


def clean_numpy(x, confounds, tr, high, low):
    """The documented cleaning of Sources/Functional/Cleaning.swift in numpy: constant and
    linear detrend of signals and confounds, the same zero-phase FFT band mask on both
    (bins f < high and the DC bin, and f > low, set to zero), then the filtered confounds and
    a constant regressed out by least squares."""
    n = x.shape[0]
    t = np.arange(n)
    design = np.stack([np.ones(n), t - t.mean()], 1)

    def detrend(y):
        return y - design @ np.linalg.lstsq(design, y, rcond=None)[0]

    def band(y):
        X = np.fft.rfft(y, axis=0)
        f = np.arange(X.shape[0]) / (n * tr)
        drop = (f > low) | (f < high)
        drop[0] = True
        X[drop] = 0
        return np.fft.irfft(X, n=n, axis=0)

    y = band(detrend(x))
    if confounds is not None:
        c = band(detrend(confounds))
        reg = np.column_stack([np.ones(n), c])
        y = y - reg @ np.linalg.lstsq(reg, y, rcond=None)[0]
    return y


def amplitude(ts, tr, low=0.01, high=0.08):
    """ALFF/fALFF exactly as Sources/Functional/Amplitude.swift documents them."""
    n = ts.shape[0]
    X = np.fft.rfft(ts, axis=0)
    k = np.arange(X.shape[0])
    A = 2 * np.abs(X) / n
    P = A ** 2 / 2
    if n % 2 == 0:
        A[-1] = np.abs(X[-1]) / n
        P[-1] = A[-1] ** 2
    f = k / (n * tr)
    band = (f >= low) & (f <= high) & (k >= 1)
    alff = A[band].mean(0)
    total = P[1:].sum(0)
    falff = np.where(total > 0, P[band].sum(0) / np.where(total > 0, total, 1), np.nan)
    return alff, falff


def block_atlas(img_path, out, blocks=(2, 2, 1)):
    img = nib.load(img_path)
    shape = img.shape[:3]
    lab = np.zeros(shape, dtype=np.int16)
    idx = np.indices(shape)
    label = 1
    parts = [np.array_split(np.arange(s), b) for s, b in zip(shape, blocks)]
    for xi in parts[0]:
        for yi in parts[1]:
            for zi in parts[2]:
                lab[np.ix_(xi, yi, zi)] = label
                label += 1
    nib.save(nib.Nifti1Image(lab, img.affine), out)
    with open(out.replace(".nii.gz", ".tsv"), "w") as f:
        f.write("index\tname\n" + "".join(f"{i}\tblock{i}\n" for i in range(1, label)))
    ones = out.replace("_dseg.nii.gz", "_mask.nii.gz")
    nib.save(nib.Nifti1Image(np.ones(shape, dtype=np.uint8), img.affine), ones)
    return out, ones


DIPY_CASES = [("small_25", 100000), ("small_64D", 100000), ("small_101D", 1500)]


def dipy_cases(a, only=None):
    """The DTI cases on the real data in the DIPY wheel; returns the DWI paths read."""
    from dipy.data import get_fnames
    info_paths = []
    for name, maxb in DIPY_CASES:
        if only is not None and only not in name:
            continue
        try:
            fdwi, fbval, fbvec = [str(x) for x in get_fnames(name=name)]
        except TypeError:
            fdwi, fbval, fbvec = [str(x) for x in get_fnames(name)]
        except Exception as e:  # a download would be needed: say so, do not fail
            log(f"== dti: {name}: not available without network ({e}); skipped")
            report.append(f"| {name} | skipped: {e} | | | |")
            continue
        info_paths.append(fdwi)
        w = f"{a.work}/{name}-input"
        os.makedirs(w, exist_ok=True)
        if maxb < 100000:
            fdwi, fbval, fbvec = select_volumes(fdwi, fbval, fbvec, maxb, f"{w}/{name}")
        mask = make_mask(fdwi, fbval, f"{w}/{name}_mask.nii.gz")
        codes = "".join(nib.aff2axcodes(nib.load(fdwi).affine))
        label = f"dipy {name} ({codes}{', b<=' + str(maxb) if maxb < 100000 else ''})"
        # small_25 is a single shell at b=2000, above the multi-shell limit of 1500: the
        # default must fit it whole, within 0.01 of both peers in FA.
        extra = dict(fa_within=0.01, all_volumes=[0, 2000]) if name == "small_25" else {}
        dti_case(a, label, fdwi, fbval, fbvec, mask, a.work, fa_v1_min=0.2, **extra)
    return info_paths


# ---------------------------------------------------------------------------------------------
# Warping atlases through ITK/ANTs transforms, against SimpleITK (ITK's own Resample).

def rotation(ax, ay, az):
    """The rotation by az about z, then ay about y, then ax about x (degrees)."""
    ax, ay, az = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rx @ ry @ rz


def grid_affine(shape, zooms, angles, flip=(1, 1, 1)):
    """A voxel-to-RAS affine: rotated, with voxel axes signed by `flip` (-1, -1, 1: LPS storage),
    centred on the origin."""
    lin = rotation(*angles) @ np.diag(np.array(zooms) * np.array(flip))
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = -lin @ ((np.array(shape) - 1) / 2.0)
    return aff


def save_nifti(data, affine, path, dtype):
    img = nib.Nifti1Image(data.astype(dtype), affine)
    img.set_sform(affine, 1)
    img.set_qform(affine, 1)
    nib.save(img, path)


def warp_inputs(sitk, work, flip):
    """An atlas with one label per voxel, a reference grid, an affine and a smooth displacement
    field (both LPS, as ITK stores them), written as ITK .h5/.txt/.mat and a NIfTI field."""
    os.makedirs(work, exist_ok=True)
    ashape, rshape = (56, 66, 54), (44, 52, 42)
    atlas_aff = grid_affine(ashape, (2.0, 2.0, 2.0), (5, -3, 10), flip)
    ref_aff = grid_affine(rshape, (2.5, 2.5, 2.5), (-4, 7, -6), flip)
    labels = np.arange(1, np.prod(ashape) + 1, dtype=np.int32).reshape(ashape, order="F")
    save_nifti(labels, atlas_aff, f"{work}/atlas.nii.gz", np.int32)
    save_nifti(np.zeros(rshape), ref_aff, f"{work}/reference.nii.gz", np.float32)
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(tuple((rotation(3, -2, 4) @ np.diag([1.04, 0.97, 1.02])).ravel()))
    affine.SetTranslation((2.3, -1.7, 3.1))
    affine.SetCenter((4.0, -6.0, 2.0))
    # Smooth field on a 4 mm grid covering most (not all) of the reference, LPS, up to ~3 mm.
    fshape = (24, 28, 22)
    origin = np.array([-46.0, -54.0, -42.0])
    direction = rotation(2, 1, -3)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in fshape], indexing="ij"), axis=-1).astype(float)
    pts = origin + (idx * 4.0) @ direction.T
    d = np.stack([2.5 * np.sin(pts[..., 1] / 17.0), 3.0 * np.cos(pts[..., 2] / 13.0) * np.sin(pts[..., 0] / 23.0),
                  1.5 * np.sin((pts[..., 0] + pts[..., 2]) / 19.0)], axis=-1)
    field = sitk.GetImageFromArray(np.transpose(d, (2, 1, 0, 3)).copy(), isVector=True)
    field.SetOrigin(tuple(origin))
    field.SetSpacing((4.0, 4.0, 4.0))
    field.SetDirection(tuple(direction.ravel()))
    sitk.WriteImage(field, f"{work}/warp.nii.gz")
    displacement = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    composite = sitk.CompositeTransform([affine, displacement])
    sitk.WriteTransform(composite, f"{work}/xfm.h5")
    sitk.WriteTransform(affine, f"{work}/affine.txt")
    sitk.WriteTransform(affine, f"{work}/affine.mat")
    return affine, composite


def warp_case(a, sitk, name, flip):
    global CURRENT
    CURRENT = name
    log(f"\n== warp: {name}")
    work = f"{a.work}/warp-{'ras' if flip[0] > 0 else 'lps'}"
    affine, composite = warp_inputs(sitk, work, flip)
    atlas = sitk.ReadImage(f"{work}/atlas.nii.gz")
    ref = sitk.ReadImage(f"{work}/reference.nii.gz")
    cases = [
        ("composite .h5 (affine + displacement field)", composite, ["--transform", f"{work}/xfm.h5"]),
        (".mat affine then NIfTI Warp", composite, ["--transform", f"{work}/affine.mat", "--transform", f"{work}/warp.nii.gz"]),
        ("inverted .txt affine", affine.GetInverse(), ["--transform", f"[{work}/affine.txt,1]"]),
    ]
    for label, transform, args in cases:
        expected = sitk.Resample(atlas, ref, transform, sitk.sitkNearestNeighbor, 0, atlas.GetPixelID())
        peer = np.transpose(sitk.GetArrayFromImage(expected), (2, 1, 0))
        out = f"{work}/warped-{len(args)}-{'inv' if 'txt' in args[-1] else 'fwd'}.nii.gz"
        run([a.bin, "warp", "--atlas", f"{work}/atlas.nii.gz", "--reference", f"{work}/reference.nii.gz",
             *args, "--out", out, "--threads", "2"])
        ours = np.asanyarray(nib.load(out).dataobj)
        check(f"{label}: fraction of voxels identical to SimpleITK", float(np.mean(ours == peer)), 0.999,
              fmt="{:.6f}", higher_is_better=True)
        check(f"{label}: fraction labelled (SimpleITK)", float(np.mean(peer != 0)), 0.2, fmt="{:.3f}",
              higher_is_better=True)
    # Sensitivity: the same comparison with the displacement field left out of SimpleITK's side
    # must fail by far, so agreement above is not a property of the labels alone.
    affine_only = sitk.Resample(atlas, ref, affine, sitk.sitkNearestNeighbor, 0, atlas.GetPixelID())
    peer = np.transpose(sitk.GetArrayFromImage(affine_only), (2, 1, 0))
    ours = np.asanyarray(nib.load(f"{work}/warped-2-fwd.nii.gz").dataobj)
    check("sensitivity: composite .h5 vs SimpleITK without the field, fraction identical", float(np.mean(ours == peer)),
          0.5, fmt="{:.6f}")


def warp_cases(a):
    import SimpleITK as sitk
    warp_case(a, sitk, "atlas warp, oblique RAS grids", (1, 1, 1))
    warp_case(a, sitk, "atlas warp, oblique LPS-stored grids", (-1, -1, 1))


def report_failures(passed):
    """Logs the failures, or `passed` when there are none."""
    log("")
    if failures:
        log("crosscheck: FAILED:")
        for x in failures:
            log(f"  {x}")
    else:
        log(passed)


def only_dipy_cases(a, only):
    dipy_cases(a, only)
    report_failures(f"crosscheck: the cases matching '{only}' are within tolerance")
    sys.exit(1 if failures else 0)


def main():
    global CURRENT
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--data", default=os.path.join(ROOT, ".cache/bench/data"))
    p.add_argument("--work", default=os.path.join(ROOT, ".cache/bench/crosscheck"))
    p.add_argument("--write-docs", action="store_true")
    p.add_argument("--only", help="run only the diffusion cases whose name contains this text, or 'warp' for the atlas warps (no docs written)")
    p.add_argument("--stats-only", action="store_true",
                   help="run only the statistics of change on the demo trial (with --write-docs: rewrites that section only)")
    a = p.parse_args()
    if a.only and a.write_docs:
        p.error("--only runs part of the comparisons; docs/validation.md is written from a full run only")
    os.makedirs(a.work, exist_ok=True)
    d = a.data
    import dipy.data
    nib_data = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
    try:
        from dipy.data import get_fnames
    except ImportError:
        get_fnames = None

    if a.only == "warp":
        warp_cases(a)
        report_failures("crosscheck: the atlas warps are within tolerance")
        sys.exit(1 if failures else 0)
    if a.only:
        only_dipy_cases(a, a.only)
        return
    if a.stats_only:
        statistics_case(a)
        report_failures("crosscheck: the statistics of change are within tolerance")
        if a.write_docs:
            write_stats_section(a)
        sys.exit(1 if failures else 0)
    # Diffusion: the standard bench DWI (LAS, bvec rows) ...
    dwi = f"{d}/dwi/sub-bench_dwi"
    dti_case(a, "bench DWI 96x96x60x65 (LAS)", f"{dwi}.nii.gz", f"{dwi}.bval", f"{dwi}.bvec",
             f"{d}/dwi/sub-bench_mask.nii.gz", a.work)
    # ... a crop of it made RAS and oblique, with a transposed bvec file; FA must not change.
    v = oblique_variant(f"{dwi}.nii.gz", f"{dwi}.bval", f"{dwi}.bvec", f"{d}/dwi/sub-bench_mask.nii.gz",
                        f"{a.work}/oblique-input")
    obl = dti_case(a, "bench crop, RAS oblique, bvec columns", f"{v}/obl_dwi.nii.gz", f"{v}/obl_dwi.bval",
                   f"{v}/obl_dwi.bvec", f"{v}/obl_mask.nii.gz", a.work)
    las = nim_dti(a.bin, f"{v}/las_dwi.nii.gz", f"{v}/las_dwi.bval", f"{v}/las_dwi.bvec", f"{v}/las_mask.nii.gz",
                  f"{a.work}/las-crop")
    CURRENT = "bench crop, RAS oblique, bvec columns"
    check("FA max |diff| oblique RAS vs the same voxels LAS (nimetrics vs itself)",
          np.abs(obl["fa"] - las["fa"]).max(), 1e-6, fmt="{:.2e}")
    # ... and the real data shipped in the DIPY wheel.
    info_paths = dipy_cases(a) if get_fnames is not None else []

    # Headers: nibabel's and DIPY's files.
    for f in ["example4d.nii.gz", "functional.nii"]:
        if os.path.exists(os.path.join(nib_data, f)):
            info_paths.append(os.path.join(nib_data, f))
    info_case(a, info_paths + [f"{dwi}.nii.gz", f"{d}/func/sub-bench_task-rest_bold.nii.gz"])

    # Functional: the standard run (RAS), and nibabel's functional.nii (LAS, int16).
    f = f"{d}/func"
    fmri_case(a, "bench BOLD 64x64x36x240 (RAS)", f"{f}/sub-bench_task-rest_bold.nii.gz", f"{f}/atlas-bench_dseg.nii.gz",
              f"{f}/sub-bench_task-rest_desc-confounds_timeseries.tsv", a.work)
    func = os.path.join(nib_data, "functional.nii")
    if os.path.exists(func):
        os.makedirs(f"{a.work}/functional-input", exist_ok=True)
        atlas, ones = block_atlas(func, f"{a.work}/functional-input/atlas-blocks_dseg.nii.gz")
        fmri_case(a, "nibabel functional.nii 17x21x3x20 (LAS, int16)", func, atlas, None, a.work, mask=ones, tr=2.0)

    # Atlases warped through ITK transforms, against SimpleITK.
    warp_cases(a)

    statistics_case(a)
    report_failures("crosscheck: all comparisons within tolerance")
    if a.write_docs:
        write_docs(a)
    sys.exit(1 if failures else 0)


def statistics_case(a):
    """stats.tsv and trend.tsv of the demo trial vs SciPy and statsmodels (crosscheck_stats.py);
    its rows go to the statistics section of docs/validation.md."""
    import crosscheck_stats

    def set_current(name):
        global CURRENT
        CURRENT = name

    start = len(report)
    crosscheck_stats.stats_case(a, check, log, run, set_current)
    stats_report.extend(report[start:])
    del report[start:]


def stats_section():
    import scipy
    import statsmodels
    status = "all within tolerance" if not any(f.startswith("demo trial") for f in failures) else "outside tolerance"
    return "\n".join([
        STATS_BEGIN,
        "## Statistics of change (demo trial) vs SciPy and statsmodels",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; SciPy {scipy.__version__}, "
        f"statsmodels {statsmodels.__version__}; result: {status}",
        "- exact p-values (all sign patterns for n <= 16, all orderings for n <= 8) must be equal to the last bit;",
        "  estimates within 1e-6 of the reference relative to max(|reference|, its standard error).",
        "- statsmodels' MixedLM gives z (normal) p-values and no degrees of freedom; nimetrics reports",
        "  Satterthwaite's df and a t p-value, so the slope and its SE are compared, p and df are not.",
        "- statsmodels is fitted to standardised values with Powell's method (xtol 1e-13): its default",
        "  optimisers stop early on variances of 1e-12 (MD), leaving its SE up to 3 % off. Where visit",
        "  months differ between participants its bse_fe includes fixed/variance cross terms of the observed",
        "  Hessian, so the reference SE is then the model-based one from statsmodels' variance estimates.",
        "",
        "| input | comparison | measured | tolerance | status |",
        "|---|---|---|---|---|",
        *stats_report,
        "",
        STATS_END,
        "",
    ])


def write_stats_section(a):
    """Replaces the statistics section of docs/validation.md (or adds it before the analysis marker)."""
    path = os.path.join(ROOT, "docs/validation.md")
    text = open(path).read() if os.path.exists(path) else "# Validation against peers\n\n"
    section = stats_section()
    if STATS_BEGIN in text and STATS_END in text:
        head, rest = text.split(STATS_BEGIN, 1)
        tail = rest.split(STATS_END, 1)[1].lstrip("\n")
        text = head + section + tail
    elif "<!-- analysis: kept by Scripts/crosscheck -->" in text:
        head, tail = text.split("<!-- analysis: kept by Scripts/crosscheck -->", 1)
        text = head + section + "\n<!-- analysis: kept by Scripts/crosscheck -->" + tail
    else:
        text = text + "\n" + section
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    log(f"crosscheck: wrote the statistics section of {path}")


def write_docs(a):
    path = os.path.join(ROOT, "docs/validation.md")
    marker = "<!-- analysis: kept by Scripts/crosscheck -->"
    preserved = ""
    if os.path.exists(path):
        text = open(path).read()
        if marker in text:
            preserved = text[text.index(marker):]
    v = lambda mod: __import__(mod).__version__
    mr = subprocess.run("dwi2tensor -version | head -1", shell=True, capture_output=True, text=True).stdout.strip()
    nimv = subprocess.run([a.bin, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Validation against peers",
        "",
        "Generated by `Scripts/crosscheck --write-docs` (the part above the analysis marker is rewritten on every run).",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- nimetrics `{nimv}`; MRtrix3 `{mr}`; DIPY {v('dipy')}, nilearn {v('nilearn')}, nibabel {v('nibabel')}, numpy {v('numpy')}, SimpleITK {v('SimpleITK')}",
        f"- result: {'all comparisons within tolerance' if not failures else str(len(failures)) + ' comparison(s) outside tolerance'}",
        "",
        "| input | comparison | measured | tolerance | status |",
        "|---|---|---|---|---|",
        *report,
        "",
        stats_section(),
    ]
    body = "\n".join(lines) + "\n" + preserved
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(body)
    os.replace(path + ".tmp", path)
    log(f"crosscheck: wrote {path}")


if __name__ == "__main__":
    main()
