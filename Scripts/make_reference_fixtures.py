#!/usr/bin/env python3
"""Writes Fixtures/reference: small inputs and what DIPY and nilearn compute from them, so that
the normal test suite (Tests/PipelinesTests/ReferenceFixtureTests.swift) checks nimetrics
against its peers and not only against its own phantoms. Scripts/crosscheck does the same on
larger inputs, with the peers installed, outside the test suite.

Run with (the versions the committed outputs were made with):
    dipy 1.12.1, nilearn 0.14.1, nibabel 5.4.2, numpy 2.4.6 (scipy 1.17.1, scikit-learn 1.9.1,
    pandas 3.1.1 as pip resolved them), Python 3.11
To rerun:
    pip install dipy==1.12.1 nilearn==0.14.1 nibabel==5.4.2 numpy==2.4.6
    python3 Scripts/make_reference_fixtures.py
Nothing is downloaded: the DIPY inputs are the small real datasets shipped inside DIPY's
wheel (dipy/data/files/). Every output is deterministic (the synthetic BOLD run is drawn from
a fixed seed), and each case's options and the versions are written to a JSON beside it.

Outputs (Fixtures/reference/):
  dipy_<case>/dwi.nii.gz, dwi.bval, dwi.bvec   the DIPY dataset (voxels, affine, files as shipped)
  dipy_<case>/mask.nii.gz                      the voxels fitted (rule in reference.json)
  dipy_<case>/<method>_{fa,md,ad,rd}.nii.gz    TensorModel(fit_method=WLS|OLS) maps, float32
  dipy_<case>/<method>_v1.nii.gz               principal eigenvector (frame of the bvec file), float32
  dipy_<case>/<method>_valid.nii.gz            1 where DIPY's eigenvalues are all > 0 (DIPY clips
                                               negative eigenvalues to 0, nimetrics keeps them)
  dipy_<case>/reference.json                   versions, options, counts
  nilearn_rest/bold.nii.gz, atlas.nii.gz, atlas.tsv, confounds.tsv   the synthetic run
  nilearn_rest/<variant>_timeseries.tsv        nilearn.signal.clean of the NiftiLabelsMasker means
  nilearn_rest/<variant>_correlation.tsv       ConnectivityMeasure(kind="correlation",
                                               cov_estimator=EmpiricalCovariance()) of those
  nilearn_rest/reference.json                  versions, options, the signal model
"""
import json
import os
import platform
import shutil
import warnings

import dipy
import dipy.data
import nibabel as nib
import nilearn
import numpy as np
import pandas as pd
import scipy
import sklearn
from dipy.core.gradients import gradient_table
from dipy.io.gradients import read_bvals_bvecs
from dipy.reconst.dti import TensorModel
from nilearn import signal
from nilearn.connectome import ConnectivityMeasure
from nilearn.maskers import NiftiLabelsMasker
from sklearn.covariance import EmpiricalCovariance

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "reference"))
DIPY_FILES = os.path.join(os.path.dirname(dipy.data.__file__), "files")
VERSIONS = {"dipy": dipy.__version__, "nilearn": nilearn.__version__, "nibabel": nib.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__, "python": platform.python_version()}


def save_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


def save_map(values, affine, path, dtype=np.float32):
    img = nib.Nifti1Image(np.asarray(values).astype(dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)


# ---------------------------------------------------------------- DIPY: tensor fits on real data

def dipy_case(name, source, description):
    """One DIPY dataset, copied as .nii.gz with its .bval/.bvec as shipped, fitted by
    TensorModel with WLS and OLS inside a mask of the brain voxels."""
    out = os.path.join(OUT, f"dipy_{name}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src = os.path.join(DIPY_FILES, source)
    img = nib.load(src + (".nii.gz" if os.path.exists(src + ".nii.gz") else ".nii"))
    data = np.asanyarray(img.dataobj)
    # Same voxels, datatype and affine (qform and sform), gzip-compressed.
    copy = nib.Nifti1Image(data, img.affine, img.header)
    nib.save(copy, os.path.join(out, "dwi.nii.gz"))
    shutil.copy(src + ".bval", os.path.join(out, "dwi.bval"))
    shutil.copy(src + ".bvec", os.path.join(out, "dwi.bvec"))

    bvals, bvecs = read_bvals_bvecs(src + ".bval", src + ".bvec")
    bvecs = np.nan_to_num(bvecs)  # small_64D writes 'nan nan nan' for its b=0; nimetrics reads it as shipped
    gtab = gradient_table(bvals, bvecs=bvecs, b0_threshold=50)

    # The mask of Scripts/benchlib/crosscheck.py: mean b=0 above 20 % of its 98th percentile,
    # and every volume positive (the log of the signal is defined everywhere it is fitted).
    f = data.astype(np.float64)
    b0 = f[..., bvals <= 50].mean(-1)
    mask = (b0 > 0.2 * np.percentile(b0[b0 > 0], 98)) & np.all(f > 0, axis=-1)
    save_map(mask, img.affine, os.path.join(out, "mask.nii.gz"), np.uint8)

    record = {
        "description": description,
        "source": f"dipy/data/files/{os.path.basename(img.get_filename())} (+ .bval, .bvec), from the DIPY wheel",
        "shape": list(img.shape),
        "axcodes": "".join(nib.aff2axcodes(img.affine)),
        "b_values": sorted({int(round(b)) for b in bvals}),
        "mask": "mean b<=50 signal > 0.2 * its 98th percentile over voxels with b0 > 0, and every volume > 0",
        "mask_voxels": int(mask.sum()),
        "gradient_table": "dipy.core.gradients.gradient_table(bvals, bvecs=nan_to_num(bvecs), b0_threshold=50)",
        "v1_frame": "the frame of the bvec file as given (FSL's frame; nimetrics --vector-frame fsl)",
        "versions": VERSIONS,
        "fits": {},
    }
    for method in ("WLS", "OLS"):
        model = TensorModel(gtab, fit_method=method)  # DIPY defaults otherwise (min_signal, return_S0_hat=False)
        fit = model.fit(data, mask=mask)
        tag = method.lower()
        valid = mask & np.all(fit.evals > 0, axis=-1)
        for metric, values in (("fa", fit.fa), ("md", fit.md), ("ad", fit.ad), ("rd", fit.rd)):
            save_map(np.where(mask, values, 0), img.affine, os.path.join(out, f"{tag}_{metric}.nii.gz"))
        save_map(np.where(mask[..., None], fit.evecs[..., 0], 0), img.affine, os.path.join(out, f"{tag}_v1.nii.gz"))
        save_map(valid, img.affine, os.path.join(out, f"{tag}_valid.nii.gz"), np.uint8)
        fa = fit.fa[valid]
        record["fits"][tag] = {
            "call": f"TensorModel(gtab, fit_method='{method}').fit(data, mask=mask)",
            "valid_voxels": int(valid.sum()),
            "fa_range": [float(fa.min()), float(fa.max())],
            "fa_above_0.2": int((fa > 0.2).sum()),
            "md_mean": float(fit.md[valid].mean()),
        }
    save_json(os.path.join(out, "reference.json"), record)
    print(f"dipy_{name}: {img.shape}, {int(mask.sum())} voxels in the mask, "
          f"FA {record['fits']['wls']['fa_range'][0]:.3f}..{record['fits']['wls']['fa_range'][1]:.3f}")


# ---------------------------------------------------------------- nilearn: a synthetic BOLD run

def nilearn_case():
    """A 12x12x8 run of 120 volumes (TR 2 s) with six 4x6x4 regions. Each region's voxels
    share a region signal, a sum of sinusoids on exact FFT bins in the middle of 0.01-0.08 Hz
    (with 120 volumes at TR 2 the bins are k/240 Hz: the band is bins 3-19, the signal is on
    bins 6-12), mixed so that the regions correlate; on top, outside the band and as strong: a
    linear drift, a 0.006 Hz wave and a 0.15 Hz wave with signs and gains per region (so the
    band-pass changes the correlations a lot), the six motion confounds with a gain per
    region, and white noise per voxel. Stored as int16 so the file is small; both tools read
    the same integers."""
    out = os.path.join(OUT, "nilearn_rest")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    rng = np.random.default_rng(20261204)
    shape, n, tr = (12, 12, 8), 120, 2.0
    t = np.arange(n)

    # Atlas: six boxes on a 3x2x2 layout; the rest is background (label 0, voxels zero).
    atlas = np.zeros(shape, dtype=np.int16)
    names = ["visual", "motor", "parietal", "frontal", "temporal", "cingulate"]
    for r in range(6):
        x0, y0, z0 = (r % 3) * 4, (r // 3 % 2) * 6, 0 if r < 3 else 4
        atlas[x0:x0 + 4, y0:y0 + 6, z0:z0 + 4] = r + 1
    # A few voxels of each region left as background so the regions are not plain boxes.
    atlas[0, 0, :] = 0
    atlas[11, 11, :] = 0

    # Region signals in the band: 4 shared components on bins 6..12, mixed per region.
    bins = np.array([6, 8, 10, 12])
    components = np.stack([np.sin(2 * np.pi * k * t / n + rng.uniform(0, 2 * np.pi)) for k in bins], 1)
    mixing = rng.normal(0, 1, size=(len(bins), 6))
    region_signal = components @ mixing * 4.0  # T x 6

    # Motion: smooth random walks (mm, rad), fMRIPrep's naming; framewise displacement by
    # Power et al. 2012 (50 mm head radius), n/a in the first row as fMRIPrep writes it.
    motion = np.cumsum(rng.normal(0, 1, size=(n, 6)), axis=0)
    motion -= motion.mean(0)
    motion *= np.array([0.02, 0.03, 0.05, 0.0005, 0.0004, 0.0003])
    columns = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    d = np.abs(np.diff(motion, axis=0))
    fd = np.concatenate([[np.nan], d[:, :3].sum(1) + 50 * d[:, 3:].sum(1)])
    motion_gain = rng.normal(0, 1, size=(6, 6)) * np.array([8, 8, 8, 400, 400, 400])[:, None]

    baseline = 1000 + 200 * rng.random(shape)
    drift = (t - t.mean()) / n * 30
    slow = 2 * np.sin(2 * np.pi * 1.5 * t / n)           # 0.00625 Hz: below the band
    fast = 10 * np.sin(2 * np.pi * 36 * t / n + 0.3)      # 0.15 Hz: above the band
    nuisance_gain = rng.choice([-1.0, 1.0], size=(2, 6)) * rng.uniform(0.5, 1.5, size=(2, 6))
    bold = np.zeros(shape + (n,))
    for r in range(6):
        inside = atlas == r + 1
        regional = (region_signal[:, r] + motion @ motion_gain[:, r] + drift * (r + 1)
                    + slow * nuisance_gain[0, r] + fast * nuisance_gain[1, r])
        noise = rng.normal(0, 6, size=(int(inside.sum()), n))
        bold[inside] = baseline[inside][:, None] + regional[None, :] + noise
    bold = np.round(bold).astype(np.int16)
    affine = np.diag([3.0, 3.0, 3.5, 1.0])
    affine[:3, 3] = [-18, -18, -14]
    img = nib.Nifti1Image(bold, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = tr
    nib.save(img, os.path.join(out, "bold.nii.gz"))
    nib.save(nib.Nifti1Image(atlas, affine), os.path.join(out, "atlas.nii.gz"))
    with open(os.path.join(out, "atlas.tsv"), "w") as f:
        f.write("index\tname\n" + "".join(f"{r + 1}\t{name}\n" for r, name in enumerate(names)))
    confounds = pd.DataFrame(motion, columns=columns)
    confounds["framewise_displacement"] = fd
    confounds.to_csv(os.path.join(out, "confounds.tsv"), sep="\t", index=False, na_rep="n/a", float_format="%.8g")

    # nilearn: raw region means (no cleaning in the masker), then signal.clean as nimetrics
    # cleans (Scripts/benchlib/nilearn_fmri.py): detrend, no standardisation, the 6 motion
    # columns (read back from the TSV, so both tools regress the same rounded numbers),
    # and Pearson's r (EmpiricalCovariance: nilearn's default Ledoit-Wolf shrinks r).
    warnings.simplefilter("ignore")
    masker = NiftiLabelsMasker(labels_img=os.path.join(out, "atlas.nii.gz"), standardize=False, detrend=False)
    means = masker.fit_transform(os.path.join(out, "bold.nii.gz"))
    conf = pd.read_csv(os.path.join(out, "confounds.tsv"), sep="\t", na_values="n/a")[columns].to_numpy(float)
    variants = {
        # nimetrics --high-pass 0 --low-pass 0 (FunctionalOptions highPass/lowPass nil):
        # the same estimator, so the series and r agree to rounding.
        "unfiltered": dict(low_pass=None, high_pass=None),
        # nimetrics's default band (0.01-0.08 Hz). nilearn filters with a Butterworth filter
        # (order 5, filtfilt), nimetrics with a zero-phase FFT mask: the same where the
        # signal has no power near the cut-offs, which is how this run is made.
        "bandpass": dict(low_pass=0.08, high_pass=0.01),
    }
    record = {
        "description": "synthetic resting-state run: 12x12x8 voxels, 120 volumes, TR 2 s, int16, 6 regions; "
                       "regional signals on FFT bins 6, 8, 10, 12 (0.025-0.05 Hz) mixed per region, "
                       "plus linear drift, 0.006 Hz and 0.15 Hz waves with per-region gains, motion x gain, "
                       "white noise (sd 6) per voxel",
        "seed": 20261204,
        "tr": tr,
        "regions": names,
        "masker": "NiftiLabelsMasker(labels_img=atlas, standardize=False, detrend=False).fit_transform(bold)",
        "confounds": columns,
        "versions": VERSIONS,
        "variants": {},
    }
    for variant, band in variants.items():
        clean = signal.clean(means, detrend=True, standardize=False, confounds=conf, standardize_confounds=True,
                             t_r=tr, filter="butterworth", **band)
        corr = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance()).fit_transform([clean])[0]
        pd.DataFrame(clean, columns=names).to_csv(os.path.join(out, f"{variant}_timeseries.tsv"), sep="\t",
                                                  index=False, float_format="%.9g")
        pd.DataFrame(corr, columns=names).to_csv(os.path.join(out, f"{variant}_correlation.tsv"), sep="\t",
                                                 index=False, float_format="%.9g")
        off = corr[~np.eye(6, dtype=bool)]
        record["variants"][variant] = {
            "clean": f"nilearn.signal.clean(means, detrend=True, standardize=False, confounds=6 motion columns, "
                     f"standardize_confounds=True, t_r={tr}, filter='butterworth', low_pass={band['low_pass']}, "
                     f"high_pass={band['high_pass']})",
            "correlation": "ConnectivityMeasure(kind='correlation', cov_estimator=EmpiricalCovariance())",
            "correlation_range": [float(off.min()), float(off.max())],
        }
    save_json(os.path.join(out, "reference.json"), record)
    print(f"nilearn_rest: {shape + (n,)}, r {record['variants']['unfiltered']['correlation_range']}")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    dipy_case("small64D", "small_64D", "DIPY small_64D: 10x10x10, 65 volumes (one b=0, 64 directions at b~1000), "
              "int16, PLS oblique affine, bvec 65 x 3 with 'nan nan nan' for the b=0")
    dipy_case("small25", "small_25", "DIPY small_25: 10x8x2, 26 volumes (one b=0, 25 directions at b=2000), "
              "uint8, RAS; a single shell above the multi-shell limit of 1500, fitted whole by default")
    nilearn_case()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {os.path.normpath(OUT)}: {total / 1024:.0f} KiB")
