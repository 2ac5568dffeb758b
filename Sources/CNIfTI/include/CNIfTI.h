#ifndef CNIFTI_H
#define CNIFTI_H
// niftilib, compiled against zlib so .nii.gz reads and writes work.
#ifndef HAVE_ZLIB
#define HAVE_ZLIB 1
#endif
#include <nifti/nifti2_io.h>
#endif
