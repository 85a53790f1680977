#!/usr/bin/env python3
"""The collect step of tools/scaling-study, shared by the local (mpirun) and Slurm (job array) paths.

  scaling-study-collect.py SWEEP_TSV CSV IRIS_PLAN

SWEEP_TSV has one line per run, "ranks tp pp dp run_dir" ('#' lines are comments). Each run_dir holds
what iris-train wrote: config.ini (the resolved configuration: model, seq_len, micro_batch, grad_accum,
steps are read from it, so a run is described by what it really ran with) and metrics.jsonl.
Runs without metrics (a failed or unfinished array task) are reported and left out; none at all is an
error (exit 1). Scaling efficiency and ideal tokens/s are relative to the run with the fewest ranks.
"""
import configparser, csv, json, os, re, subprocess, sys

COLUMNS = ["ranks", "tp", "pp", "dp", "micro_batch", "grad_accum", "seq", "steps", "tokens_per_s",
           "peak_memory_mib", "mfu", "predicted_memory_mib", "scaling_efficiency", "ideal_tokens_per_s",
           "rank0_peak_memory_mib"]


def read_run(ranks, tp, pp, dp, run_dir, iris_plan):
    ini = configparser.ConfigParser()
    if not ini.read(os.path.join(run_dir, "config.ini")):
        return None, "no config.ini"
    path = os.path.join(run_dir, "metrics.jsonl")
    rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
    if not rows:
        return None, "no metrics.jsonl rows"
    train = ini["train"]
    steps = int(train["steps"])
    if len(rows) < steps:
        print(f"scaling-study: warning: {run_dir} has {len(rows)} of {steps} steps; using them", file=sys.stderr)
    steady = rows[1:] or rows  # the first step includes warm-up (allocation, first touch)
    mfu = rows[-1].get("mfu")
    plan = subprocess.run([iris_plan, "--backend", "cpu", "--model", ini["model"]["config"], "--ranks", str(ranks),
                           "--layout", f"{tp},{pp}", "--micro-batch", train["micro_batch"], "--grad-accum",
                           train["grad_accum"], "--seq", train["seq_len"]], capture_output=True, text=True)
    found = re.search(r"^predicted rank 0 peak RSS: ([0-9.]+) MiB$", plan.stdout, re.M)
    return {
        "ranks": ranks, "tp": tp, "pp": pp, "dp": dp, "micro_batch": int(train["micro_batch"]),
        "grad_accum": int(train["grad_accum"]), "seq": int(train["seq_len"]), "steps": steps,
        "tokens_per_s": f'{sum(r["tokens_per_s"] for r in steady) / len(steady):.2f}',
        "peak_memory_mib": f'{max(r["peak_memory_mib"] for r in rows):.2f}',
        # peak_memory_mib is the maximum over ranks; the planner predicts rank 0's, measured separately.
        "rank0_peak_memory_mib": f'{max(r.get("rank0_peak_memory_mib", 0) for r in rows):.2f}',
        "mfu": "" if mfu is None else mfu,
        "predicted_memory_mib": found.group(1) if found else "",
    }, None


def main():
    sweep_tsv, out_csv, iris_plan = sys.argv[1:4]
    rows = []
    for line in open(sweep_tsv):
        if not line.strip() or line.startswith("#"):
            continue
        ranks, tp, pp, dp, run_dir = line.split(maxsplit=4)
        row, why = read_run(int(ranks), int(tp), int(pp), int(dp), run_dir.strip(), iris_plan)
        if row is None:
            print(f"scaling-study: {run_dir.strip()}: {why}; left out of the CSV", file=sys.stderr)
        else:
            rows.append(row)
    if not rows:
        sys.exit(f"scaling-study: no run in {sweep_tsv} has metrics yet")
    base = min(rows, key=lambda r: r["ranks"])  # the first run with the fewest ranks
    per_rank = float(base["tokens_per_s"]) / base["ranks"]
    for r in rows:
        r["ideal_tokens_per_s"] = f'{per_rank * r["ranks"]:.2f}'
        r["scaling_efficiency"] = f'{float(r["tokens_per_s"]) / (per_rank * r["ranks"]):.4f}'
    with open(out_csv + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(out_csv + ".tmp", out_csv)
    print(f"scaling-study: {len(rows)} run(s) in {out_csv}")


if __name__ == "__main__":
    main()
