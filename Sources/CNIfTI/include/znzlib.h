#include <nifti/znzlib.h>
