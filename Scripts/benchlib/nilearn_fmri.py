"""nilearn peer for the fmri case: region means with NiftiLabelsMasker (detrend, 6 motion
confounds, optional band-pass, t_r), then ConnectivityMeasure(kind="correlation").

usage: nilearn_fmri.py BOLD ATLAS CONFOUNDS|- OUT.tsv [--high-pass HZ] [--low-pass HZ]
       [--tr S] [--empirical] [--timeseries TS.tsv] [--mask MASK]

--empirical uses sklearn's EmpiricalCovariance (plain Pearson correlation) instead of
nilearn's default Ledoit-Wolf estimator, for the cross-check.
"""
import argparse
import warnings

import numpy as np
import pandas as pd
from nilearn.connectome import ConnectivityMeasure
from nilearn.maskers import NiftiLabelsMasker

p = argparse.ArgumentParser()
p.add_argument("bold")
p.add_argument("atlas")
p.add_argument("confounds")
p.add_argument("out")
p.add_argument("--high-pass", type=float)
p.add_argument("--low-pass", type=float)
p.add_argument("--tr", type=float, default=2.0)
p.add_argument("--empirical", action="store_true")
p.add_argument("--timeseries")
p.add_argument("--mask", help="mask_img for the masker")
a = p.parse_args()
warnings.simplefilter("ignore")
columns = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
confounds = None if a.confounds == "-" else pd.read_csv(a.confounds, sep="\t", na_values="n/a")[columns].to_numpy()
masker = NiftiLabelsMasker(labels_img=a.atlas, detrend=True, standardize=False, mask_img=a.mask,
                           high_pass=a.high_pass, low_pass=a.low_pass, t_r=a.tr)
ts = masker.fit_transform(a.bold, confounds=confounds)
kwargs = {}
if a.empirical:
    from sklearn.covariance import EmpiricalCovariance
    kwargs["cov_estimator"] = EmpiricalCovariance()
corr = ConnectivityMeasure(kind="correlation", **kwargs).fit_transform([ts])[0]
np.savetxt(a.out, corr, delimiter="\t", fmt="%.9g")
if a.timeseries:
    np.savetxt(a.timeseries, ts, delimiter="\t", fmt="%.9g")
