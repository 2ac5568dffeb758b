"""Runs nimetrics and its peers in alternation on the benchmark inputs and reports medians.

Called by Scripts/bench (which installs the peers, builds nimetrics and makes the inputs).
Each case: one warm-up run of every command, then N pairs A B A B ...; wall time and peak
RSS of every run from GNU time (`/usr/bin/time -f '%e %M'`, which reports the largest RSS
of the process and of the children it waited for). Ratios are nimetrics/peer per pair,
then the median over pairs.
"""

import argparse
import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def timed(cmd, cwd=ROOT, prepare=None):
    """(wall seconds, peak RSS in MiB, CPU seconds user + system) of one run of `cmd`."""
    if prepare:
        prepare()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", tf.name, "bash", "-c", cmd]
        r = subprocess.run(full, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SystemExit(f"bench: command failed (exit {r.returncode}): {cmd}\n{r.stderr[-3000:]}")
        line = tf.read().strip().splitlines()[-1]
    wall, kb, user, system = line.split()
    return float(wall), int(kb) / 1024.0, float(user) + float(system)


def fresh(path):
    def prep():
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
    return prep


class Case:
    def __init__(self, name, a_label, a_cmd, b_label, b_cmd, target=None, a_prep=None, b_prep=None, pairs=None, judge=None):
        self.name, self.a_label, self.a_cmd, self.b_label, self.b_cmd = name, a_label, a_cmd, b_label, b_cmd
        self.judge = judge
        self.target, self.a_prep, self.b_prep, self.pairs = target, a_prep, b_prep, pairs
        self.a, self.b = [], []

    def run(self, pairs):
        pairs = self.pairs or pairs
        log(f"{self.name}: warm-up")
        timed(self.a_cmd, prepare=self.a_prep)
        if self.b_cmd:
            timed(self.b_cmd, prepare=self.b_prep)
        for i in range(pairs):
            self.a.append(timed(self.a_cmd, prepare=self.a_prep))
            if self.b_cmd:
                self.b.append(timed(self.b_cmd, prepare=self.b_prep))
                log(f"{self.name}: pair {i + 1}/{pairs}: {self.a[-1][0]:.2f} s vs {self.b[-1][0]:.2f} s")
            else:
                log(f"{self.name}: run {i + 1}/{pairs}: {self.a[-1][0]:.2f} s")
        return self

    def row(self):
        med = lambda xs: statistics.median(xs) if xs else float("nan")
        aw, ar, ac = med([x[0] for x in self.a]), med([x[1] for x in self.a]), med([x[2] for x in self.a])
        if self.b:
            bw, br, bc = med([x[0] for x in self.b]), med([x[1] for x in self.b]), med([x[2] for x in self.b])
            ratio = med([x[0] / y[0] for x, y in zip(self.a, self.b)])
            rss_ratio = med([x[1] / y[1] for x, y in zip(self.a, self.b)])
        else:
            bw = br = bc = ratio = rss_ratio = float("nan")
        row = dict(case=self.name, a=self.a_label, b=self.b_label or "-", aw=aw, ar=ar, ac=ac, bw=bw, br=br, bc=bc,
                   ratio=ratio, rss_ratio=rss_ratio, n=len(self.a), target=self.target or "")
        row["met"] = self.judge(row) if self.judge else ""
        return row


def ratio_judge(target):
    return lambda r: "yes" if r["ratio"] <= target else f"no: {r['ratio']:.3f} = {r['ratio'] / target:.1f}x the target"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def fmt(x, digits=2):
    return "-" if x != x else f"{x:.{digits}f}"


def table(rows):
    out = ["| case | A | B | runs | A wall (s) | A CPU (s) | A peak RSS (MiB) | B wall (s) | B CPU (s) | B peak RSS (MiB) "
           "| wall A/B (median of pairs) | RSS A/B | target | met |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['case']} | {r['a']} | {r['b']} | {r['n']} | {fmt(r['aw'])} | {fmt(r['ac'])} | {fmt(r['ar'], 0)} | "
                   f"{fmt(r['bw'])} | {fmt(r['bc'])} | {fmt(r['br'], 0)} | {fmt(r['ratio'], 3)} | {fmt(r['rss_ratio'], 2)} | {r['target']} | {r['met']} |")
    return "\n".join(out)


def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    blas = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS")) or "none set"
    return dict(nproc=os.cpu_count(), cpu=model, mem=mem, kernel=platform.release(), blas=blas)


def versions(py):
    def out(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[0]
        except Exception:
            return "unknown"
    return dict(
        nimetrics=out(f"{shlex.quote(BIN)} --version"),
        mrtrix=out("dwi2tensor -version 2>&1 | head -1"),
        python=out(f"{py} --version"),
        dipy=out(f"{py} -c 'import dipy; print(dipy.__version__)'"),
        nilearn=out(f"{py} -c 'import nilearn; print(nilearn.__version__)'"),
        nibabel=out(f"{py} -c 'import nibabel; print(nibabel.__version__)'"),
        numpy=out(f"{py} -c 'import numpy; print(numpy.__version__)'"),
        libdeflate=out("dpkg-query -W -f='${Version}' libdeflate-tools 2>/dev/null"),
    )


def main():
    global BIN
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("--data", default=os.path.join(ROOT, ".cache/bench/data"))
    p.add_argument("--work", default=os.path.join(ROOT, ".cache/bench/work"))
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--dipy-pairs", type=int, default=None, help="pairs for the DIPY case (default: --pairs)")
    p.add_argument("--cases", default="read,dti,fmri,visit,reports,batch,warp")
    p.add_argument("--large", action="store_true")
    p.add_argument("--write-docs", action="store_true")
    p.add_argument("--profile-file", help="markdown with the profile section, appended to the docs")
    a = p.parse_args()
    BIN = a.bin
    q = shlex.quote
    d, w, py, nim = a.data, a.work, q(a.python), q(a.bin)
    os.makedirs(w, exist_ok=True)
    dwi = f"{d}/dwi/sub-bench_dwi"
    bold_dir = f"{d}/func"
    bold = f"{bold_dir}/sub-bench_task-rest_bold.nii.gz"
    atlas = f"{bold_dir}/atlas-bench_dseg.nii.gz"
    conf = f"{bold_dir}/sub-bench_task-rest_desc-confounds_timeseries.tsv"
    cases = a.cases.split(",")
    load_before = loadavg()
    commands = {}
    rows = []

    nim_dti = (f"{nim} dti --dwi {dwi}.nii.gz --bval {dwi}.bval --bvec {dwi}.bvec --mask {d}/dwi/sub-bench_mask.nii.gz "
               f"--threads 2 --out {w}/nim-dti --prefix sub-bench")
    mrtrix = (f"dwi2tensor -quiet -force -nthreads 2 -fslgrad {dwi}.bvec {dwi}.bval -mask {d}/dwi/sub-bench_mask.nii.gz "
              f"{dwi}.nii.gz {w}/mrtrix/dt.mif && tensor2metric -quiet -force -nthreads 2 -fa {w}/mrtrix/fa.nii.gz "
              f"-adc {w}/mrtrix/md.nii.gz {w}/mrtrix/dt.mif")
    dipy = f"{py} {q(HERE)}/dipy_dti.py {dwi}.nii.gz {dwi}.bval {dwi}.bvec {d}/dwi/sub-bench_mask.nii.gz {w}/dipy"
    nim_fmri = (f"{nim} fmri --bold {bold} --atlas {atlas} --confounds {conf} --threads 2 --strategy 6P "
                f"--high-pass 0.01 --low-pass 0.08 --out {w}/nim-fmri --prefix sub-bench")
    nilearn = f"{py} {q(HERE)}/nilearn_fmri.py {bold} {atlas} {conf} {w}/nilearn_corr.tsv --high-pass 0.01 --low-pass 0.08 --tr 2"

    if "read" in cases:
        have_ld = shutil.which("libdeflate-gunzip") is not None
        for label, path in [("dwi", f"{dwi}.nii.gz"), ("bold", bold)]:
            g = f"gzip -dc {path} > /dev/null"
            ld = f"libdeflate-gunzip -c {path} > /dev/null" if have_ld else None
            c = Case(f"read {label}", "gzip -dc", g, "libdeflate-gunzip" if ld else None, ld).run(a.pairs)
            commands[f"read {label}"] = [g] + ([ld] if ld else [])
            rows.append(c.row())
            if shutil.which("igzip"):  # ISA-L (Debian isal), when present: a streaming inflater
                ig = f"igzip -dc {path} > /dev/null"
                rows.append(Case(f"read {label}", "igzip -dc (ISA-L)", ig, None, None).run(a.pairs).row())
                commands[f"read {label}"].append(ig)
    if "dti" in cases:
        os.makedirs(f"{w}/mrtrix", exist_ok=True)
        def judge_mrtrix(r):
            bad = [f"wall {r['ratio']:.2f} = {r['ratio'] / 0.35:.1f}x the target"] if r["ratio"] > 0.35 else []
            bad += [f"RSS {r['rss_ratio']:.2f}x MRtrix3's"] if r["rss_ratio"] > 1.0 else []
            return "yes" if not bad else "no: " + "; ".join(bad)
        c = Case("dti", "nimetrics", nim_dti, "MRtrix3", mrtrix, "<= 0.35, RSS <= 1.0", judge=judge_mrtrix,
                 a_prep=fresh(f"{w}/nim-dti"), b_prep=fresh(f"{w}/mrtrix")).run(a.pairs)
        rows.append(c.row())
        c = Case("dti", "nimetrics", nim_dti, "DIPY WLS", dipy, "<= 0.05", judge=ratio_judge(0.05),
                 a_prep=fresh(f"{w}/nim-dti"), b_prep=fresh(f"{w}/dipy"), pairs=a.dipy_pairs).run(a.pairs)
        rows.append(c.row())
        commands["dti"] = [nim_dti, mrtrix, dipy]
    if "fmri" in cases:
        import nibabel
        bold_img = nibabel.load(bold)
        half = bold_img.header.get_data_dtype().itemsize * int(np.prod(bold_img.shape)) / 2 / 2**20
        def judge_fmri(r):
            bad = [f"wall {r['ratio']:.3f} = {r['ratio'] / 0.15:.2f}x the target"] if r["ratio"] > 0.15 else []
            bad += [f"RSS {r['ar']:.0f} MiB over {half:.0f} MiB"] if r["ar"] >= half else []
            return "yes" if not bad else "no: " + "; ".join(bad)
        c = Case("fmri", "nimetrics", nim_fmri, "nilearn", nilearn, f"<= 0.15; RSS < {half:.0f} MiB (half the uncompressed run)",
                 judge=judge_fmri,
                 a_prep=fresh(f"{w}/nim-fmri")).run(a.pairs)
        rows.append(c.row())
        commands["fmri"] = [nim_fmri, nilearn]
    if "visit" in cases:
        # One visit through `run` (BIDS discovery, SHA-256 of every input, record) against the
        # same dti and fmri calls on their own: the batch layer's overhead on a real-sized visit.
        visit = f"{w}/visit-bids"
        if not os.path.exists(f"{visit}/dataset_description.json"):
            files = {f"{dwi}.nii.gz": "dwi/sub-bench_dwi.nii.gz", f"{dwi}.bval": "dwi/sub-bench_dwi.bval",
                     f"{dwi}.bvec": "dwi/sub-bench_dwi.bvec", bold: "func/sub-bench_task-rest_bold.nii.gz",
                     bold.replace(".nii.gz", ".json"): "func/sub-bench_task-rest_bold.json",
                     conf: "func/sub-bench_task-rest_desc-confounds_timeseries.tsv"}
            for source, target in files.items():
                os.makedirs(os.path.dirname(f"{visit}/sub-bench/{target}"), exist_ok=True)
                shutil.copyfile(source, f"{visit}/sub-bench/{target}")
            with open(f"{visit}/dataset_description.json", "w") as f:
                f.write('{"Name": "bench visit", "BIDSVersion": "1.9.0"}\n')
        run_visit = (f"{nim} run {visit} {w}/visit-run participant --jobs 1 --threads 2 "
                     f"--dwi-mask {d}/dwi/sub-bench_mask.nii.gz --func-atlas {atlas} --strategy 6P "
                     f"--high-pass 0.01 --low-pass 0.08")
        both = f"{nim_dti} && {nim_fmri}"
        def prep_both():
            fresh(f"{w}/nim-dti")()
            fresh(f"{w}/nim-fmri")()
        c = Case("visit (run vs dti + fmri)", "run, 1 visit", run_visit, "dti + fmri", both, "<= 1.15",
                 judge=ratio_judge(1.15), a_prep=lambda: shutil.rmtree(f"{w}/visit-run", ignore_errors=True),
                 b_prep=prep_both).run(a.pairs)
        rows.append(c.row())
        commands["visit"] = [run_visit, both]
    if "reports" in cases and "visit" in cases:
        # The same visit with its HTML report against --no-reports: what writing the report adds.
        plain = run_visit.replace("visit-run", "visit-plain") + " --no-reports"
        c = Case("visit report (run vs --no-reports)", "run", run_visit, "run --no-reports", plain, "<= 1.10",
                 judge=ratio_judge(1.10), a_prep=lambda: shutil.rmtree(f"{w}/visit-run", ignore_errors=True),
                 b_prep=lambda: shutil.rmtree(f"{w}/visit-plain", ignore_errors=True)).run(a.pairs)
        rows.append(c.row())
        commands["reports"] = [run_visit, plain]
    if "batch" in cases:
        demo = f"{w}/../demo"
        if not os.path.exists(f"{demo}/dataset_description.json"):
            log("batch: generating the demo trial")
            shutil.rmtree(demo, ignore_errors=True)
            subprocess.run([a.bin, "demo", "--out", demo], check=True, stdout=subprocess.DEVNULL)
        run = lambda jobs: (f"{nim} run {demo} {w}/batch-j{jobs} participant --group "
                            f"--atlas {demo}/atlas/atlas-demo_dseg.nii.gz --jobs {jobs}")
        c = Case("batch (demo trial)", "--jobs 2", run(2), "--jobs 1", run(1), "<= 0.6", judge=ratio_judge(0.6),
                 a_prep=lambda: shutil.rmtree(f"{w}/batch-j2", ignore_errors=True),
                 b_prep=lambda: shutil.rmtree(f"{w}/batch-j1", ignore_errors=True)).run(a.pairs)
        rows.append(c.row())
        commands["batch"] = [f"{nim} demo --out {demo}", run(2), run(1)]
    if "warp" in cases:
        # An MNI-sized atlas (182x218x182, 1 mm) onto a 1.25 mm oblique reference through a
        # composite ITK transform (affine + 1 mm displacement field), against SimpleITK.
        wd = f"{d}/warp"
        subprocess.run([a.python, f"{HERE}/sitk_warp.py", "make", wd], check=True)
        nim_warp = (f"{nim} warp --atlas {wd}/atlas.nii.gz --reference {wd}/reference.nii.gz "
                    f"--transform {wd}/xfm.h5 --out {w}/nim-warp/warped.nii.gz --threads 2")
        sitk_warp = f"{py} {q(HERE)}/sitk_warp.py warp {wd}/atlas.nii.gz {wd}/reference.nii.gz {wd}/xfm.h5 {w}/sitk-warped.nii.gz"
        c = Case("warp atlas (182x218x182 -> 1.25 mm, affine + field)", "nimetrics", nim_warp, "SimpleITK", sitk_warp,
                 "A wall < 1 s", judge=lambda r: "yes" if r["aw"] < 1.0 else f"no: {r['aw']:.2f} s",
                 a_prep=fresh(f"{w}/nim-warp")).run(a.pairs)
        rows.append(c.row())
        commands["warp"] = [f"{a.python} Scripts/benchlib/sitk_warp.py make {wd}", nim_warp, sitk_warp]
    if a.large:
        big = f"{d}/func-large"
        cmd = (f"{nim} fmri --bold {big}/sub-bench_task-rest_bold.nii.gz --atlas {big}/atlas-bench_dseg.nii.gz "
               f"--confounds {big}/sub-bench_task-rest_desc-confounds_timeseries.tsv --threads 2 --strategy 6P "
               f"--high-pass 0.01 --low-pass 0.08 --out {w}/nim-fmri-large --prefix sub-bench")
        c = Case("fmri large (91x109x91x1200)", "nimetrics", cmd, None, None, "RSS < 1024 MiB",
                 judge=lambda r: "yes" if r["ar"] < 1024 else f"no: {r['ar']:.0f} MiB",
                 a_prep=fresh(f"{w}/nim-fmri-large"), pairs=min(a.pairs, 2)).run(a.pairs)
        rows.append(c.row())
        commands["fmri large"] = [cmd]

    t = table(rows)
    print(t)
    load = f"{load_before} before, {loadavg()} after"
    log(f"load average (1, 5, 15 min): {load}")
    if a.write_docs:
        write_docs(a, rows, t, commands, load)


def write_docs(a, rows, t, commands, load):
    m = machine()
    v = versions(shlex.quote(a.python))
    path = os.path.join(ROOT, "docs/benchmarks.md")
    preserved = ""
    if os.path.exists(path):
        text = open(path).read()
        marker = "<!-- analysis: kept by Scripts/bench -->"
        if marker in text:
            preserved = text[text.index(marker):]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `Scripts/bench --write-docs` (the part above the analysis marker is rewritten on every run).",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {m['nproc']} cores ({m['cpu']}), {m['mem']} memory, Linux {m['kernel']}",
        f"- load average (1, 5, 15 min) of the machine: {load} (other work on the machine shows here; "
        "alternating A and B spreads it over both)",
        f"- OpenBLAS environment (left as found, for the Python peers): {m['blas']}",
        f"- versions: nimetrics `{v['nimetrics']}`; MRtrix3 `{v['mrtrix']}`; {v['python']}, DIPY {v['dipy']}, "
        f"nilearn {v['nilearn']}, nibabel {v['nibabel']}, numpy {v['numpy']}; libdeflate-tools {v['libdeflate']}",
        f"- method: one warm-up run of each command, then {a.pairs} alternating pairs (A B A B ...) unless the "
        "`runs` column says otherwise; wall time, peak RSS and CPU time (user + system) from `/usr/bin/time -f '%e %M %U %S'` "
        "(peak RSS of the largest process in the tree; medians); `wall A/B` is the median of the per-pair ratios.",
        "",
        t,
        "",
        "## Commands",
        "",
        "Inputs are made by `Scripts/benchlib/make_inputs.py` into `.cache/bench/data` (fixed seeds).",
        "",
    ]
    for case, cmds in commands.items():
        lines.append(f"**{case}**")
        lines.append("")
        lines.append("```sh")
        lines.extend(c.replace(ROOT + "/", "") for c in cmds)
        lines.append("```")
        lines.append("")
    body = "\n".join(lines) + "\n"
    if preserved:
        body += preserved
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(body)
    os.replace(path + ".tmp", path)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
