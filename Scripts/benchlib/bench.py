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
    def __init__(self, name, a_label, a_cmd, b_label, b_cmd, target=None, a_prep=None, b_prep=None, pairs=None, judge=None,
                 warm_up=True):
        self.name, self.a_label, self.a_cmd, self.b_label, self.b_cmd = name, a_label, a_cmd, b_label, b_cmd
        self.judge, self.warm_up = judge, warm_up
        self.target, self.a_prep, self.b_prep, self.pairs = target, a_prep, b_prep, pairs
        self.a, self.b = [], []

    def run(self, pairs):
        pairs = self.pairs or pairs
        if self.warm_up:
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
    p.add_argument("--visits", type=int, default=20, help="visits in the `visits` case (run over N visits)")
    p.add_argument("--visit-pairs", type=int, default=1, help="pairs for the `visits` case")
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
    phases = {}
    extra_cases(a, cases, d, w, nim, py, q, rows, commands, phases, nim_dti, nim_fmri, mrtrix)
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
        write_docs(a, rows, t, commands, load, phases)


def write_docs(a, rows, t, commands, load, phases=None):
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
    if phases:
        lines += ["## Phases", "",
                  "One run of each command with `NIMETRICS_PROFILE=1` (wall time of each phase as the pipeline "
                  "reports it, and the peak RSS after it), in the same session as the table above.", ""]
        for case, text in phases.items():
            lines += [f"**{case}**", "", "```", text.rstrip(), "```", ""]
    body = "\n".join(lines) + "\n"
    if preserved:
        body += preserved
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(body)
    os.replace(path + ".tmp", path)
    log(f"wrote {path}")


def profile_phases(cmd):
    """The `profile:` lines of one run of `cmd` with NIMETRICS_PROFILE=1."""
    r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=dict(os.environ, NIMETRICS_PROFILE="1"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return "\n".join(l for l in r.stderr.splitlines() if l.startswith("profile:")) or f"(no profile lines; exit {r.returncode})"


def bids_visit(root, subject, files):
    """A raw-BIDS visit of hard links (copies across file systems) to the benchmark inputs."""
    for source, target in files.items():
        path = f"{root}/sub-{subject}/{target.replace('SUB', subject)}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            try:
                os.link(os.path.realpath(source), path)
            except OSError:
                shutil.copyfile(source, path)
    with open(f"{root}/dataset_description.json", "w") as f:
        f.write('{"Name": "bench visits", "BIDSVersion": "1.9.0"}\n')


def mrtrix_dti(q, dwi, mask, out, extract=None):
    """MRtrix3's tensor fit and FA/MD maps (dwi2tensor + tensor2metric), 2 threads; `extract`
    (e.g. "0,1000") first keeps those shells with dwiextract, piped."""
    grad = f"-fslgrad {dwi}.bvec {dwi}.bval"
    if extract:
        src = f"dwiextract -quiet -force -nthreads 2 {grad} -shells {extract} {dwi}.nii.gz - | dwi2tensor -quiet -force -nthreads 2 -mask {mask} -"
    else:
        src = f"dwi2tensor -quiet -force -nthreads 2 {grad} -mask {mask} {dwi}.nii.gz"
    return (f"mkdir -p {out} && {src} {out}/dt.mif && tensor2metric -quiet -force -nthreads 2 -fa {out}/fa.nii.gz "
            f"-adc {out}/md.nii.gz {out}/dt.mif")


def extra_cases(a, cases, d, w, nim, py, q, rows, commands, phases, nim_dti, nim_fmri, mrtrix):
    """The cases of large and multi-shell scans, uncompressed inputs, a session with two BOLD
    runs and `run` over many visits."""
    igzip = shutil.which("igzip")
    if "large" in cases:
        dwi, mask = f"{d}/dwi-large/sub-bench_dwi", f"{d}/dwi-large/sub-bench_mask.nii.gz"
        nim_large = (f"{nim} dti --dwi {dwi}.nii.gz --bval {dwi}.bval --bvec {dwi}.bvec --mask {mask} "
                     f"--threads 2 --out {w}/nim-dti-large --prefix sub-bench")
        peer = mrtrix_dti(q, dwi, mask, f"{w}/mrtrix-large")
        def judge(r):
            bad = [f"wall {r['ratio']:.3f} = {r['ratio'] / 0.22:.2f}x the target"] if r["ratio"] > 0.22 else []
            bad += [f"RSS {r['rss_ratio']:.2f} = {r['rss_ratio'] / 0.5:.2f}x the target"] if r["rss_ratio"] > 0.5 else []
            return "yes" if not bad else "no: " + "; ".join(bad)
        rows.append(Case("dti large (128x128x80x102)", "nimetrics", nim_large, "MRtrix3", peer, "<= 0.22, RSS <= 0.5",
                         judge=judge, a_prep=fresh(f"{w}/nim-dti-large"), b_prep=fresh(f"{w}/mrtrix-large")).run(a.pairs).row())
        commands["dti large"] = [nim_large, peer]
        if igzip:
            ig = f"igzip -dc {dwi}.nii.gz > /dev/null"
            rows.append(Case("dti large vs inflate alone", "nimetrics", nim_large, "igzip -dc", ig, "<= 1.5",
                             judge=ratio_judge(1.5), a_prep=fresh(f"{w}/nim-dti-large")).run(a.pairs).row())
            commands["dti large"].append(ig)
        phases["dti large"] = profile_phases(nim_large)
    if "multishell" in cases:
        dwi, mask = f"{d}/dwi-multishell/sub-bench_dwi", f"{d}/dwi-multishell/sub-bench_mask.nii.gz"
        base = (f"{nim} dti --dwi {dwi}.nii.gz --bval {dwi}.bval --bvec {dwi}.bvec --mask {mask} "
                f"--threads 2 --prefix sub-bench")
        low = f"{base} --max-b 1000 --out {w}/nim-ms-low"
        full = f"{base} --max-b 3000 --out {w}/nim-ms-all"
        peer_low = mrtrix_dti(q, dwi, mask, f"{w}/mrtrix-ms-low", extract="0,1000")
        peer_all = mrtrix_dti(q, dwi, mask, f"{w}/mrtrix-ms-all")
        rows.append(Case("dti multi-shell, b <= 1000 (112x112x72x207 -> 75 volumes)", "nimetrics --max-b 1000", low,
                         "MRtrix3 (dwiextract -shells 0,1000)", peer_low, "<= 0.22", judge=ratio_judge(0.22),
                         a_prep=fresh(f"{w}/nim-ms-low"), b_prep=fresh(f"{w}/mrtrix-ms-low")).run(a.pairs).row())
        rows.append(Case("dti multi-shell, all shells (207 volumes)", "nimetrics --max-b 3000", full, "MRtrix3", peer_all,
                         "<= 0.22", judge=ratio_judge(0.22),
                         a_prep=fresh(f"{w}/nim-ms-all"), b_prep=fresh(f"{w}/mrtrix-ms-all")).run(a.pairs).row())
        commands["dti multi-shell"] = [low, peer_low, full, peer_all]
        if igzip:
            ig = f"igzip -dc {dwi}.nii.gz > /dev/null"
            rows.append(Case("dti multi-shell b <= 1000 vs inflate alone", "nimetrics --max-b 1000", low, "igzip -dc", ig,
                             "", a_prep=fresh(f"{w}/nim-ms-low")).run(a.pairs).row())
            commands["dti multi-shell"].append(ig)
        phases["dti multi-shell --max-b 1000"] = profile_phases(low)
        phases["dti multi-shell, all shells"] = profile_phases(full)
    if "nii" in cases:
        nii = f"{d}/nii"
        dwi = f"{d}/dwi/sub-bench_dwi"
        bold_dir = f"{d}/func"
        fmri_args = (f"--atlas {bold_dir}/atlas-bench_dseg.nii.gz --confounds {bold_dir}/sub-bench_task-rest_desc-confounds_timeseries.tsv "
                     f"--threads 2 --strategy 6P --high-pass 0.01 --low-pass 0.08 --prefix sub-bench")
        dti_nii = nim_dti.replace(f"{dwi}.nii.gz", f"{nii}/sub-bench_dwi.nii").replace("/nim-dti ", "/nim-dti-nii ")
        fmri_nii = f"{nim} fmri --bold {nii}/sub-bench_task-rest_bold.nii {fmri_args} --out {w}/nim-fmri-nii"
        for label, path in [("dwi", f"{nii}/sub-bench_dwi.nii"), ("bold", f"{nii}/sub-bench_task-rest_bold.nii")]:
            cat = f"cat {path} > /dev/null"
            rows.append(Case(f"read {label} .nii ({os.path.getsize(path) / 2**20:.0f} MiB)", "cat (page cache)", cat,
                             None, None).run(a.pairs).row())
            commands.setdefault("uncompressed", []).append(cat)
        rows.append(Case("dti .nii vs .nii.gz", "nimetrics .nii", dti_nii, "nimetrics .nii.gz", nim_dti, "< 1",
                         judge=ratio_judge(1.0), a_prep=fresh(f"{w}/nim-dti-nii"), b_prep=fresh(f"{w}/nim-dti")).run(a.pairs).row())
        rows.append(Case("fmri .nii vs .nii.gz", "nimetrics .nii", fmri_nii, "nimetrics .nii.gz", nim_fmri, "< 1",
                         judge=ratio_judge(1.0), a_prep=fresh(f"{w}/nim-fmri-nii"), b_prep=fresh(f"{w}/nim-fmri")).run(a.pairs).row())
        commands["uncompressed"] += [dti_nii, fmri_nii]
        phases["dti .nii"] = profile_phases(dti_nii)
        phases["fmri .nii"] = profile_phases(fmri_nii)
    if "fmri" in cases and igzip:
        bold = f"{d}/func/sub-bench_task-rest_bold.nii.gz"
        ig = f"igzip -dc {bold} > /dev/null"
        rows.append(Case("fmri vs inflate alone", "nimetrics", nim_fmri, "igzip -dc", ig, "<= 1.25", judge=ratio_judge(1.25),
                         a_prep=fresh(f"{w}/nim-fmri")).run(a.pairs).row())
        commands["fmri"].append(ig)
        phases["fmri"] = profile_phases(nim_fmri)
        phases["dti"] = profile_phases(nim_dti)
    dwi = f"{d}/dwi/sub-bench_dwi"
    mask = f"{d}/dwi/sub-bench_mask.nii.gz"
    func = f"{d}/func"
    atlas = f"{func}/atlas-bench_dseg.nii.gz"
    conf = f"{func}/sub-bench_task-rest_desc-confounds_timeseries.tsv"
    nilearn = lambda bold, out: (f"{py} {q(HERE)}/nilearn_fmri.py {bold} {atlas} {conf} {out} "
                                 "--high-pass 0.01 --low-pass 0.08 --tr 2")
    dwi_files = {f"{dwi}.nii.gz": "dwi/sub-SUB_dwi.nii.gz", f"{dwi}.bval": "dwi/sub-SUB_dwi.bval",
                 f"{dwi}.bvec": "dwi/sub-SUB_dwi.bvec"}
    run_opts = f"--dwi-mask {mask} --func-atlas {atlas} --strategy 6P --high-pass 0.01 --low-pass 0.08 --no-reports"
    if "session" in cases:
        root = f"{w}/session-bids"
        runs = {}
        for k, folder in [(1, "func"), (2, "func-run2")]:
            runs[f"{d}/{folder}/sub-bench_task-rest_bold.nii.gz"] = f"func/sub-SUB_task-rest_run-{k}_bold.nii.gz"
            runs[f"{d}/{folder}/sub-bench_task-rest_bold.json"] = f"func/sub-SUB_task-rest_run-{k}_bold.json"
            runs[conf.replace("/func/", f"/{folder}/")] = f"func/sub-SUB_task-rest_run-{k}_desc-confounds_timeseries.tsv"
        bids_visit(root, "bench", {**dwi_files, **runs})
        nim_run = f"{nim} run {root} {w}/session-run participant --jobs 1 --threads 2 {run_opts}"
        peers = (mrtrix_dti(q, dwi, mask, f"{w}/session-mrtrix") + " && " + nilearn(f"{d}/func/sub-bench_task-rest_bold.nii.gz", f"{w}/session-nl1.tsv")
                 + " && " + nilearn(f"{d}/func-run2/sub-bench_task-rest_bold.nii.gz", f"{w}/session-nl2.tsv"))
        rows.append(Case("session: DWI + two BOLD runs", "run, 1 session", nim_run, "MRtrix3 + nilearn x2", peers, "<= 0.15",
                         judge=ratio_judge(0.15), a_prep=lambda: shutil.rmtree(f"{w}/session-run", ignore_errors=True),
                         b_prep=fresh(f"{w}/session-mrtrix")).run(a.pairs).row())
        commands["session"] = [nim_run, peers]
    if "visits" in cases:
        n = a.visits
        root = f"{w}/visits-{n}-bids"
        for i in range(n):
            bids_visit(root, f"v{i:02d}", {**dwi_files,
                                           f"{func}/sub-bench_task-rest_bold.nii.gz": "func/sub-SUB_task-rest_bold.nii.gz",
                                           f"{func}/sub-bench_task-rest_bold.json": "func/sub-SUB_task-rest_bold.json",
                                           conf: "func/sub-SUB_task-rest_desc-confounds_timeseries.tsv"})
        script = f"{w}/peer-loop-{n}.sh"
        with open(script, "w") as f:
            f.write("#!/usr/bin/env bash\n# MRtrix3 (dti) and nilearn (fmri) over every visit, one after another.\nset -e\n")
            f.write(f"for v in {root}/sub-*; do\n  s=$(basename $v)\n  o={w}/peer-loop/$s\n  mkdir -p $o\n")
            vd = "$v/dwi/${s}_dwi"
            f.write(f"  dwi2tensor -quiet -force -nthreads 2 -fslgrad {vd}.bvec {vd}.bval -mask {mask} {vd}.nii.gz $o/dt.mif\n")
            f.write(f"  tensor2metric -quiet -force -nthreads 2 -fa $o/fa.nii.gz -adc $o/md.nii.gz $o/dt.mif\n")
            f.write(f"  {py} {q(HERE)}/nilearn_fmri.py $v/func/${{s}}_task-rest_bold.nii.gz {atlas} "
                    f"$v/func/${{s}}_task-rest_desc-confounds_timeseries.tsv $o/corr.tsv --high-pass 0.01 --low-pass 0.08 --tr 2\n")
            f.write("done\n")
        nim_run = f"{nim} run {root} {w}/visits-run participant --jobs 1 --threads 2 {run_opts}"
        nim_run2 = nim_run.replace("--jobs 1 --threads 2", "--jobs 2 --threads 1").replace("visits-run ", "visits-run-j2 ")
        loop = f"bash {script}"
        rows.append(Case(f"run over {n} visits (--jobs 1 --threads 2)", "nimetrics run", nim_run, "MRtrix3 + nilearn loop", loop,
                         "<= 0.15", judge=ratio_judge(0.15), pairs=a.visit_pairs, warm_up=False,
                         a_prep=lambda: shutil.rmtree(f"{w}/visits-run", ignore_errors=True),
                         b_prep=fresh(f"{w}/peer-loop")).run(a.pairs).row())
        rows.append(Case(f"run over {n} visits: --jobs 2 --threads 1 vs --jobs 1 --threads 2", "--jobs 2 --threads 1", nim_run2,
                         "--jobs 1 --threads 2", nim_run, "", pairs=a.visit_pairs, warm_up=False,
                         a_prep=lambda: shutil.rmtree(f"{w}/visits-run-j2", ignore_errors=True),
                         b_prep=lambda: shutil.rmtree(f"{w}/visits-run", ignore_errors=True)).run(a.pairs).row())
        commands[f"run over {n} visits"] = [nim_run, nim_run2, loop, "# " + script.replace(ROOT + "/", "") + ":"] + \
            open(script).read().splitlines()[3:]
    if "threads" in cases:
        # --threads 1 against 2 on the large DWI and the standard BOLD run (Amdahl: the serial share).
        dwi_l, mask_l = f"{d}/dwi-large/sub-bench_dwi", f"{d}/dwi-large/sub-bench_mask.nii.gz"
        for label, cmd, out in [
            ("dti large", f"{nim} dti --dwi {dwi_l}.nii.gz --bval {dwi_l}.bval --bvec {dwi_l}.bvec --mask {mask_l} --prefix p", "thr-dti"),
            ("dti", f"{nim} dti --dwi {dwi}.nii.gz --bval {dwi}.bval --bvec {dwi}.bvec --mask {mask} --prefix p", "thr-dti-std"),
            ("fmri", nim_fmri.replace(" --threads 2", "").replace(f" --out {w}/nim-fmri", ""), "thr-fmri"),
        ]:
            one, two = f"{cmd} --threads 1 --out {w}/{out}-1", f"{cmd} --threads 2 --out {w}/{out}-2"
            def judge(r):
                # Amdahl: T2/T1 = s + (1 - s)/2, so the serial share s = 2 T2/T1 - 1.
                return f"serial share {max(0.0, 2 * r['ratio'] - 1):.2f}"
            rows.append(Case(f"--threads 2 vs 1: {label}", "--threads 2", two, "--threads 1", one, "", judge=judge,
                             a_prep=fresh(f"{w}/{out}-2"), b_prep=fresh(f"{w}/{out}-1")).run(a.pairs).row())
            commands.setdefault("threads", []).extend([two, one])


if __name__ == "__main__":
    main()
