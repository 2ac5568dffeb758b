#!/usr/bin/env bash
# Samples `nimetrics dti` and `nimetrics fmri` on the standard inputs with perf and prints
# where the CPU time goes: by library, and the inclusive share of the pipeline's phases.
#   Scripts/benchlib/profile.sh NIMETRICS_BINARY CACHE_DIR
set -euo pipefail
bin="${1:?usage: profile.sh BIN CACHE}" cache="${2:?usage: profile.sh BIN CACHE}"
if ! command -v perf >/dev/null; then
  echo "profile: perf not installed (apt-get install linux-perf); skipped" >&2
  exit 0
fi
d="$cache/data" w="$cache/work/profile"
mkdir -p "$w"
dwi="$d/dwi/sub-bench_dwi" f="$d/func"
phases='TensorModelV3fit|gradientOrientationCheck|CoherenceScorer|principalEigenvectorField|convertVoxels|inflate|readAllData|VolumeReader|NIfTIFileO5write|storeVoxels|_arrayConditionalCast|regionalStatistics|cleanSignals|pearsonCorrelation|amplitudeOfLow|RegionalTimeSeriesExtractor|exc_page_fault'
report() {
  local data="$1"
  echo "CPU samples by library:"
  perf report -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -8
  echo "Inclusive share of the phases (children included; phases nest):"
  perf report -i "$data" --children --sort symbol --stdio -g none 2>/dev/null | grep '%' \
    | grep -E "$phases" | awk '{printf "  %7s  %s\n", $1, substr($0, index($0, "[.]") + 4, 110)}' | head -20
}
echo "== profile: nimetrics dti (perf record -g, 2 threads)"
perf record -q -g -o "$w/dti.data" "$bin" dti --dwi "$dwi.nii.gz" --bval "$dwi.bval" --bvec "$dwi.bvec" \
  --mask "$d/dwi/sub-bench_mask.nii.gz" --threads 2 --out "$w/dti" --prefix sub-bench >/dev/null 2>&1
report "$w/dti.data"
echo "== profile: nimetrics fmri (perf record -g, 2 threads)"
perf record -q -g -o "$w/fmri.data" "$bin" fmri --bold "$f/sub-bench_task-rest_bold.nii.gz" \
  --atlas "$f/atlas-bench_dseg.nii.gz" --confounds "$f/sub-bench_task-rest_desc-confounds_timeseries.tsv" \
  --threads 2 --strategy 6P --high-pass 0.01 --low-pass 0.08 --out "$w/fmri" --prefix sub-bench >/dev/null 2>&1
report "$w/fmri.data"
echo "== phase timings (wall, one run each)"
t() { /usr/bin/time -f "%e s, %M KiB" -o "$w/t" "$@" >/dev/null 2>&1; echo "  $(cat "$w/t")"; }
echo "dti default:";                 t "$bin" dti --dwi "$dwi.nii.gz" --bval "$dwi.bval" --bvec "$dwi.bvec" --mask "$d/dwi/sub-bench_mask.nii.gz" --threads 2 --out "$w/dti" --prefix p
echo "dti --no-orientation-check:";  t "$bin" dti --dwi "$dwi.nii.gz" --bval "$dwi.bval" --bvec "$dwi.bvec" --mask "$d/dwi/sub-bench_mask.nii.gz" --threads 2 --out "$w/dti" --prefix p --no-orientation-check
echo "dti --threads 1 --no-orientation-check:"; t "$bin" dti --dwi "$dwi.nii.gz" --bval "$dwi.bval" --bvec "$dwi.bvec" --mask "$d/dwi/sub-bench_mask.nii.gz" --threads 1 --out "$w/dti" --prefix p --no-orientation-check
echo "nimetrics info (header only):"; t "$bin" info "$dwi.nii.gz"
echo "libdeflate-gunzip dwi:";        t bash -c "libdeflate-gunzip -c '$dwi.nii.gz' > /dev/null"
echo "gzip -dc bold (zlib, streaming):"; t bash -c "gzip -dc '$f/sub-bench_task-rest_bold.nii.gz' > /dev/null"
if command -v igzip >/dev/null; then
  echo "igzip -dc bold (ISA-L, streaming):"; t bash -c "igzip -dc '$f/sub-bench_task-rest_bold.nii.gz' > /dev/null"
fi
rm -rf "$w/maps" && mkdir -p "$w/maps"
for m in "$w"/dti/p_*dwimap.nii.gz; do gzip -dc "$m" > "$w/maps/$(basename "$m" .gz)"; done
echo "recompress the dti maps, libdeflate level 6 ($(du -sh "$w/maps" | cut -f1) uncompressed):"
t bash -c "for m in '$w'/maps/*; do libdeflate-gzip -6 -c \"\$m\" > /dev/null; done"
echo "recompress the dti maps, libdeflate level 1:"
t bash -c "for m in '$w'/maps/*; do libdeflate-gzip -1 -c \"\$m\" > /dev/null; done"
