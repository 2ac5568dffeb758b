"""DIPY peer for the dti case: WLS tensor fit inside a mask, FA and MD written as .nii.gz.

usage: dipy_dti.py DWI BVAL BVEC MASK OUTDIR
"""
import os
import sys

import nibabel as nib
import numpy as np
from dipy.core.gradients import gradient_table
from dipy.io.gradients import read_bvals_bvecs
from dipy.reconst.dti import TensorModel

dwi, bval, bvec, mask, out = sys.argv[1:6]
img = nib.load(dwi)
data = np.asanyarray(img.dataobj)
bvals, bvecs = read_bvals_bvecs(bval, bvec)
bvecs = np.nan_to_num(bvecs)  # dipy's small_64D has 'nan nan nan' for its b=0
try:
    gtab = gradient_table(bvals, bvecs=bvecs, b0_threshold=50)
except TypeError:  # older DIPY: positional bvecs
    gtab = gradient_table(bvals, bvecs, b0_threshold=50)
m = np.asanyarray(nib.load(mask).dataobj) > 0
fit = TensorModel(gtab, fit_method="WLS").fit(data, mask=m)
os.makedirs(out, exist_ok=True)
nib.save(nib.Nifti1Image(fit.fa.astype(np.float32), img.affine), os.path.join(out, "fa.nii.gz"))
nib.save(nib.Nifti1Image(fit.md.astype(np.float32), img.affine), os.path.join(out, "md.nii.gz"))
if len(sys.argv) > 6 and sys.argv[6] == "--evecs":
    nib.save(nib.Nifti1Image(fit.evecs[..., 0].astype(np.float32), img.affine), os.path.join(out, "v1.nii.gz"))
