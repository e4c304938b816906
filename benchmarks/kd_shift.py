"""Distillation under distribution shift, judged against the baselines: cells at 1%, 5% and 20% labelled.

The lab: synthetic B-vs-T cells (the generator's default domain, seed 0), LAB_N training-pool images and
N_TEST test images. The teacher is trained elsewhere, on POOL_N labelled cells (B/T4/T8, merged to B vs T)
of ANOTHER domain (edgekd.data.synthetic_cells.CellDomain), one per kind of shift:

- acquisition: another microscope: brighter, steeper illumination gradient, more defocus blur, more noise,
  weaker staining contrast;
- population: another population and magnification: B-rich class priors (60/20/20) and cells 12% larger.

Every label used comes out of the budget: `data.labelled` f of the lab's pool, and VAL_SHARE of those labels
are the validation images every arm chooses its epoch on (edgekd.data.cells; "labels used" in the JSON).
Arms (edgekd.distill.baselines): labels_only, pseudo_labels, pool_direct (the teacher's pool + the lab's labels,
no teacher), kd, function_matching (FM_SCHEDULE x the steps), kd_finetune. All arms of one (teacher seed,
student seed) share the labelled subset, validation images, initial weights, batch seed and steps.

Settings are chosen on validation, never on test, by a small search the benchmark runs first and records:
the teacher's lr and epochs on its own pool's validation split (teacher seed 0 of each shift); KD's temperature
and alpha, and labels-only's lr, on the lab's budgeted validation images (teacher seed 0, student seed 0, per
shift and budget); every arm's epoch by its best validation epoch. The search's picks are used by all seeds.

Reduced for a 2-core machine shared by 6 workers (stated in the JSON): float students (no QAT phase), 32 px
student input, STEPS = EPOCHS x STEPS_PER_EPOCH optimizer steps of batch 64 per arm. Statistics: per arm mean
and sd over all (teacher seed, student seed) pairs; paired differences with a paired t-test (p, 95% CI; scipy),
and an exact McNemar test per pair on the per-image test predictions.

    nice -n 15 .venv/bin/python benchmarks/kd_shift.py                     # the full grid, 2 workers
    nice -n 15 .venv/bin/python benchmarks/kd_shift.py --budgets 0.05 --student-seeds 5 --teacher-seeds 2
    .venv/bin/python benchmarks/kd_shift.py --summarise                   # JSON + plot from the saved runs

Each finished (shift, budget, seeds) job appends its arms to OUT/runs.jsonl; a restarted run skips them.
Writes benchmarks/results/kd_shift.json (arms and seeds as rows) and benchmarks/results/kd_shift.png.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAB_N, N_TEST, POOL_N = 3000, 2000, 3000
VAL_SHARE = 0.2
STUDENT = {"name": "cell_cnn", "input_size": 32, "input_block": 2, "channels": [16, 16], "kernel_sizes": [3, 3]}
TEACHER = {"arch": "resnet", "width": 16, "input_size": 32, "batch_size": 64}
EPOCHS, STEPS_PER_EPOCH, BATCH, LR = 16, 16, 64, 1e-2
FM_SCHEDULE, FINETUNE_EPOCHS = 2, 3
SHIFTS = {
    "acquisition": {"brightness": 1.08, "gradient": 0.2, "blur": (0.5, 1.3), "noise": 1.3, "contrast": 0.85},
    "population": {"class_priors": (0.6, 0.2, 0.2), "scale": 1.12},
}
SEARCH = {"teacher": {"lr": [2e-3, 4e-3], "epochs": [4, 8]},
          "kd": {"temperature": [1.0, 2.0, 4.0], "alpha": [0.5, 0.9]}, "labels_only": {"lr": [3e-3, 1e-2, 2e-2]}}
ARMS = ("labels_only", "pseudo_labels", "pool_direct", "kd", "function_matching", "kd_finetune")


def _quiet() -> None:
    import functools
    import logging

    os.environ["EDGEKD_THREADS"] = "1"
    import torch

    from edgekd.data import cells

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    if not hasattr(cells.generate_cells, "cache_info"):  # a worker renders the lab's cells once, not per job
        cells.generate_cells = functools.lru_cache(maxsize=4)(cells.generate_cells)


# --- data and teachers --------------------------------------------------------------------------------------

def _lab_cfg(budget: float, split_seed: int):
    from edgekd.config import DataConfig

    return DataConfig(synthetic={"n_train": LAB_N, "n_test": N_TEST, "seed": 0}, num_classes=2,
                      labelled=budget, val_fraction=VAL_SHARE, split_seed=split_seed)


def _pool_cfg(shift: str, teacher_seed: int):
    from edgekd.config import DataConfig

    return DataConfig(synthetic={"n_train": POOL_N, "n_test": 8, "seed": 100 + teacher_seed,
                                 "domain": SHIFTS[shift]}, num_classes=2, val_fraction=0.1, split_seed=teacher_seed)


def _train_teacher(shift: str, teacher_seed: int, lr: float, epochs: int):
    """The teacher of one shift and seed on its pool (fine B/T4/T8 labels); (model, its pool val accuracy)."""
    import torch

    from edgekd.config import TeacherConfig
    from edgekd.data.cells import load_cell_splits
    from edgekd.registry import TEACHERS
    from edgekd.teachers.train import train_teacher

    pool = load_cell_splits(_pool_cfg(shift, teacher_seed))
    cfg = TeacherConfig(**TEACHER, lr=lr, epochs=epochs)
    torch.manual_seed(teacher_seed)
    model = TEACHERS.get("resnet")(3, cfg)
    hist = train_teacher(model, pool.x_train, pool.y_train_fine, pool.x_val, pool.y_val_fine, cfg, seed=teacher_seed,
                         show_progress=False)
    return model, cfg, pool, hist["val_accuracy"][-1]


def _teacher_job(args: tuple) -> dict:
    """Train one teacher, annotate the lab's whole pool (8 views) and test set; cache them in OUT."""
    shift, ts, lr, epochs, out, search_only = args
    _quiet()
    import torch

    from edgekd.data.cells import SYNTHETIC_TEST_SEED_OFFSET, merge_t_cells
    from edgekd.data.synthetic_cells import generate_cells
    from edgekd.data.views import N_VIEWS, view_images
    from edgekd.teachers.runner import MergedClassesRunner, TorchTeacherRunner

    t0 = time.perf_counter()
    model, cfg, pool, val = _train_teacher(shift, ts, lr, epochs)
    row = {"shift": shift, "teacher_seed": ts, "lr": lr, "epochs": epochs, "pool_val_accuracy_3class": val,
           "seconds": round(time.perf_counter() - t0, 1)}
    if search_only:
        return row
    runner = MergedClassesRunner(TorchTeacherRunner(model, cfg.input_size, 3), [[0], [1, 2]])
    x_lab, _ = generate_cells(LAB_N, 0)
    x_test, y_test = generate_cells(N_TEST, SYNTHETIC_TEST_SEED_OFFSET)
    views = np.stack([runner.logits(view_images(x_lab, v)) for v in range(N_VIEWS)]).astype(np.float32)
    test = runner.logits(x_test)
    y2 = merge_t_cells(y_test)
    row["lab_test_accuracy"] = float((test.argmax(1) == y2).mean())
    row["lab_test_majority_rate"] = float(max(np.bincount(y2)) / len(y2))
    row["lab_test_predicted_share_T"] = float((test.argmax(1) == 1).mean())
    dest = Path(out) / f"teacher-{shift}-{ts}"
    dest.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), dest / "teacher.pt")
    np.save(dest / "lab_views.npy", views)
    y_pool2 = merge_t_cells(pool.y_train_fine)
    np.savez(dest / "pool.npz", x=pool.x_train, y=y_pool2)
    (dest / "teacher.json").write_text(json.dumps(row, indent=1))
    return row


# --- students -----------------------------------------------------------------------------------------------

def _arm_data(shift: str, budget: float, ts: int, ss: int, out: str):
    import torch

    from edgekd.config import TeacherConfig
    from edgekd.data import cells
    from edgekd.data.cells import load_cell_splits
    from edgekd.data.transforms import to_model_input
    from edgekd.distill.baselines import ArmData
    from edgekd.registry import TEACHERS
    from edgekd.teachers.online import OnlineTeacher
    from edgekd.teachers.runner import MergedClassesRunner, TorchTeacherRunner

    tdir = Path(out) / f"teacher-{shift}-{ts}"
    tinfo = json.loads((tdir / "teacher.json").read_text())
    splits = load_cell_splits(_lab_cfg(budget, ss))
    x_lab, _ = cells.generate_cells(LAB_N, 0)  # the worker's cached copy (_quiet)
    where = {bytes(x): i for i, x in enumerate(x_lab)}
    idx = np.array([where[bytes(x)] for x in splits.x_train])
    views = torch.as_tensor(np.load(tdir / "lab_views.npy")[:, idx])
    pool = np.load(tdir / "pool.npz")
    s = STUDENT["input_size"]
    cfg = TeacherConfig(**TEACHER, lr=tinfo["lr"], epochs=tinfo["epochs"])
    model = TEACHERS.get("resnet")(3, cfg)
    model.load_state_dict(torch.load(tdir / "teacher.pt", weights_only=True))
    runner = MergedClassesRunner(TorchTeacherRunner(model, cfg.input_size, 3), [[0], [1, 2]])
    data = ArmData(
        x_train=to_model_input(splits.x_train, s), y_train=torch.as_tensor(splits.y_train), teacher_logits=views,
        x_val=to_model_input(splits.x_val, s), y_val=torch.as_tensor(splits.y_val),
        x_test=to_model_input(splits.x_test, s), y_test=splits.y_test, num_classes=2,
        x_pool=to_model_input(pool["x"], s), y_pool=torch.as_tensor(pool["y"]),
        online_teacher=OnlineTeacher(runner, splits.x_train),
    )
    return data, splits


def _distill_cfg(seed: int, kd: dict, lr: float = LR):
    from edgekd.config import DistillConfig

    return DistillConfig(loss="kd", temperature=kd["temperature"], alpha=kd["alpha"], epochs=EPOCHS, qat_epochs=0,
                         batch_size=BATCH, lr=lr, seed=seed, augment=True)


def _student_job(args: tuple) -> list[dict]:
    """All requested arms of one (shift, budget, teacher seed, student seed) with the given settings."""
    shift, budget, ts, ss, arms, settings, out, tag = args
    _quiet()
    from edgekd.config import StudentConfig
    from edgekd.distill.baselines import train_arm

    data, splits = _arm_data(shift, budget, ts, ss, out)
    summary = splits.summary()
    rows, kd = [], None
    for arm in sorted(arms, key=lambda a: a == "kd_finetune"):  # kd before kd_finetune, which starts from it
        t0 = time.perf_counter()
        cfg = _distill_cfg(ss, settings["kd"])
        r = train_arm(arm, StudentConfig(**STUDENT), cfg, data, steps_per_epoch=STEPS_PER_EPOCH,
                      fm_schedule=FM_SCHEDULE, finetune_epochs=FINETUNE_EPOCHS,
                      lr_labels_only=settings["labels_only_lr"], kd_result=kd)
        if arm == "kd":
            kd = r
        rows.append({
            "tag": tag, "shift": shift, "budget": budget, "teacher_seed": ts, "student_seed": ss, "arm": arm,
            "settings": settings, "test_accuracy": r.test_accuracy, "val_accuracy": r.val_accuracy,
            "best_epoch": r.best_epoch, "train_accuracy_labelled": r.train_accuracy_labelled,
            "labels_used": summary["labels_used"], "train_labelled": summary["train"]["labelled"],
            "val": summary["val"]["n"], "correct": np.packbits(r.test_pred == data.y_test).tobytes().hex(),
            "seconds": round(time.perf_counter() - t0, 1),
        })
    return rows


# --- orchestration ------------------------------------------------------------------------------------------

def _load_runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _append(path: Path, rows: list[dict]) -> None:
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def _run(pool, jobs, fn, runs_path: Path | None = None) -> list:
    out = []
    for fut in as_completed([pool.submit(fn, j) for j in jobs]):
        res = fut.result()
        out.append(res)
        if runs_path is not None:
            _append(runs_path, res)
    return out


def search_teacher(pool, shifts, out: Path, state: dict) -> None:
    """Teacher lr x epochs on its own pool's validation split (teacher seed 0 of each shift)."""
    for shift in shifts:
        key = f"teacher/{shift}"
        if key in state:
            continue
        jobs = [(shift, 0, lr, ep, str(out), True) for lr in SEARCH["teacher"]["lr"] for ep in SEARCH["teacher"]["epochs"]]
        rows = _run(pool, jobs, _teacher_job)
        best = max(rows, key=lambda r: (r["pool_val_accuracy_3class"], -r["epochs"]))
        state[key] = {"candidates": rows, "chosen": {"lr": best["lr"], "epochs": best["epochs"]}}
        _save_state(out, state)


def search_students(pool, keys: list[tuple[str, float]], out: Path, state: dict) -> dict:
    """KD temperature x alpha and labels-only lr on the lab's budgeted validation images (teacher seed 0,
    student seed 0), for every (shift, budget) in `keys` at once; returns {(shift, budget): chosen settings}."""
    default_kd = {"temperature": 2.0, "alpha": 0.9}
    todo = [(sh, b) for sh, b in keys if f"student/{sh}/{b:g}" not in state]
    jobs = []
    for shift, budget in todo:
        jobs += [(shift, budget, 0, 0, ["kd"], {"kd": {"temperature": t, "alpha": a}, "labels_only_lr": None}, str(out),
                  "search") for t in SEARCH["kd"]["temperature"] for a in SEARCH["kd"]["alpha"]]
        jobs += [(shift, budget, 0, 0, ["labels_only"], {"kd": default_kd, "labels_only_lr": lr}, str(out), "search")
                 for lr in SEARCH["labels_only"]["lr"]]
    rows = [r for res in _run(pool, jobs, _student_job) for r in res]
    for shift, budget in todo:
        mine = [r for r in rows if r["shift"] == shift and r["budget"] == budget]
        kd = max((r for r in mine if r["arm"] == "kd"),
                 key=lambda r: (r["val_accuracy"], -r["settings"]["kd"]["temperature"], -r["settings"]["kd"]["alpha"]))
        lo = max((r for r in mine if r["arm"] == "labels_only"),
                 key=lambda r: (r["val_accuracy"], -r["settings"]["labels_only_lr"]))
        state[f"student/{shift}/{budget:g}"] = {
            "candidates": [{k: r[k] for k in ("arm", "settings", "val_accuracy", "test_accuracy")} for r in mine],
            "chosen": {"kd": kd["settings"]["kd"], "labels_only_lr": lo["settings"]["labels_only_lr"]},
            "note": "chosen on val_accuracy (ties: the lower temperature, alpha, lr); test_accuracy recorded only "
                    "to show what tuning on test would have picked, never used"}
    _save_state(out, state)
    return {(sh, b): state[f"student/{sh}/{b:g}"]["chosen"] for sh, b in keys}


def _save_state(out: Path, state: dict) -> None:
    (out / "search.json").write_text(json.dumps(state, indent=1))


def main(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / "runs.jsonl"
    state = json.loads((out / "search.json").read_text()) if (out / "search.json").exists() else {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        search_teacher(pool, args.shifts, out, state)
        tjobs = [(sh, ts, state[f"teacher/{sh}"]["chosen"]["lr"], state[f"teacher/{sh}"]["chosen"]["epochs"],
                  str(out), False) for sh in args.shifts for ts in range(args.teacher_seeds)
                 if not (out / f"teacher-{sh}-{ts}" / "teacher.json").exists()]
        _run(pool, tjobs, _teacher_job)
        done = {(r["shift"], r["budget"], r["teacher_seed"], r["student_seed"], r["arm"])
                for r in _load_runs(runs_path) if r["tag"] == "grid"}
        settings = search_students(pool, [(sh, b) for b in args.budgets for sh in args.shifts], out, state)
        jobs = []
        for budget in args.budgets:
            for ss in range(args.student_seeds):
                for ts in range(args.teacher_seeds):
                    for sh in args.shifts:
                        arms = [a for a in args.arms if (sh, budget, ts, ss, a) not in done]
                        if arms:
                            jobs.append((sh, budget, ts, ss, arms, settings[sh, budget], str(out), "grid"))
        # the first budget (the most important) in full first, then the others seed by seed, so that a run
        # stopped early has every budget at its lowest seeds
        first = args.budgets[0]
        jobs.sort(key=lambda j: (j[1] != first, j[3], args.budgets.index(j[1]), j[2], j[0]))
        _run(pool, jobs, _student_job, runs_path)
        print(f"grid done after {time.perf_counter() - t0:.0f} s", flush=True)
    summarise(out)


def summarise(out: Path) -> dict:
    from edgekd.distill.arm_comparison import plot_budgets, summarise_runs

    runs = [r for r in _load_runs(out / "runs.jsonl") if r["tag"] == "grid"]
    state = json.loads((out / "search.json").read_text()) if (out / "search.json").exists() else {}
    teachers = [json.loads(p.read_text()) for p in sorted(out.glob("teacher-*/teacher.json"))]
    for t in teachers:  # a teacher no better than the majority class cannot teach: say so (edgekd warns in builds)
        t["at_majority_rate"] = t["lab_test_accuracy"] <= t["lab_test_majority_rate"] + 0.01
        if t["at_majority_rate"]:
            print(f"WARNING: teacher {t['shift']} seed {t['teacher_seed']} is at the majority-class rate", flush=True)
    import platform

    from edgekd.determinism import cpu_features

    result = {
        "benchmark": "kd_shift",
        "what": "float cell student (B vs T) test accuracy per arm, teacher trained on another domain; every label "
                "used (training and validation) counts in the budget; arms paired by (teacher seed, student seed)",
        "setup": {"lab_pool": LAB_N, "test": N_TEST, "teacher_pool": POOL_N, "val_share_of_budget": VAL_SHARE,
                  "student": STUDENT, "teacher": TEACHER, "shifts": SHIFTS,
                  "steps_per_arm": EPOCHS * STEPS_PER_EPOCH, "batch": BATCH,
                  "function_matching_steps": EPOCHS * STEPS_PER_EPOCH * FM_SCHEDULE,
                  "kd_finetune_extra_steps": FINETUNE_EPOCHS * STEPS_PER_EPOCH, "search_grid": SEARCH,
                  "reduced": "float students (no QAT), 32 px input read as 2x2 blocks, 256 steps per arm at peak lr 1e-2, "
                             "function matching 2x that: sized for a 2-core machine "
                             "shared by 6 workers"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu": cpu_features(),
                    "torch_threads_per_job": 1},
        "search": state,
        "teachers": teachers,
        **summarise_runs(runs, N_TEST),
    }
    dest = HERE / "results" / "kd_shift.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    plot_budgets(result, HERE / "results" / "kd_shift.png")
    print(json.dumps(result["comparisons_summary"], indent=1))
    return result


def markdown(result: dict) -> str:
    """The README's tables from kd_shift.json: per shift and budget, every arm's mean +- sd and its paired
    difference to labels-only and to kd (paired t-test p and 95% CI, McNemar pairs better / worse at p < 0.05)."""
    lines = ["| shift | labelled (labels used) | arm | test % mean ± sd (n) | minus labels_only: points, 95% CI, p "
             "| McNemar better / worse | minus kd: points, 95% CI, p | McNemar better / worse |",
             "|---|---|---|---|---|---|---|---|"]
    for g in result["groups"].values():
        used = ", ".join(str(u) for u in g["arms"].get("labels_only", next(iter(g["arms"].values())))["labels_used"])
        for arm, a in g["arms"].items():
            cells = []
            for ref in ("labels_only", "kd"):
                c = g["comparisons"].get(f"{arm} - {ref}")
                if c is None:
                    cells += ["", ""]
                    continue
                t = c["paired_t"]
                cells += [f"{100 * t['mean']:+.2f} [{100 * t['ci95'][0]:+.2f}, {100 * t['ci95'][1]:+.2f}], p = {t['p']:.2g}",
                          f"{c['mcnemar_pairs_a_better_p05']} / {c['mcnemar_pairs_b_better_p05']} of {t['n']}"]
            lines.append(f"| {g['shift']} | {100 * g['budget']:g}% ({used}) | {arm} | {100 * a['mean']:.2f} ± "
                         f"{100 * a['sd']:.2f} ({a['n']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.05, 0.01, 0.2])
    ap.add_argument("--shifts", nargs="+", default=list(SHIFTS), choices=list(SHIFTS))
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--student-seeds", type=int, default=5)
    ap.add_argument("--teacher-seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "build" / "bench-kd-shift"))
    ap.add_argument("--summarise", action="store_true", help="only write the JSON and plot from the saved runs")
    ap.add_argument("--markdown", action="store_true", help="print the README tables from results/kd_shift.json")
    a = ap.parse_args()
    if a.markdown:
        print(markdown(json.loads((HERE / "results" / "kd_shift.json").read_text())))
    elif a.summarise:
        summarise(Path(a.out))
    else:
        main(a)
